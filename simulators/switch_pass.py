"""net-snmp ``pass_persist`` program of the simulated PoE switch: IF-MIB ifTable and
POWER-ETHERNET-MIB pethPsePortTable served from a JSON state file, and SET of
pethPsePortAdminEnable written back to it (turning a port's power and link off or on).

Run by snmpd as ``switch_pass.py STATE``; speaks the pass_persist protocol on stdin/stdout
(PING/PONG, get, getnext, set), one request at a time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
PETH_ENTRY = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1)
POWER = (1, 3, 6, 1, 4, 1, 99999, 1)  # the simulator's per-port milliwatts (a vendor table)
ADMIN, DETECTION = 3, 6
OPER, IN_ERRORS, OUT_ERRORS = 8, 14, 20
GROUP = 1


def _oid(parts: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, parts))


def _key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip().strip(".").split(".") if p)


def values(state: dict[str, dict[str, int]]) -> dict[tuple[int, ...], int]:
    """Every object the switch serves, from its ports' state."""
    found: dict[tuple[int, ...], int] = {}
    for name, port in state.items():
        n = int(name)
        powered = port["admin"] == 1
        found[(*IF_ENTRY, OPER, n)] = 1 if powered and port["link"] else 2
        found[(*IF_ENTRY, IN_ERRORS, n)] = port.get("in_errors", 0)
        found[(*IF_ENTRY, OUT_ERRORS, n)] = port.get("out_errors", 0)
        found[(*PETH_ENTRY, ADMIN, GROUP, n)] = port["admin"]
        found[(*PETH_ENTRY, DETECTION, GROUP, n)] = (3 if port["load"] else 2) if powered else 1
        found[(*POWER, n)] = port.get("mw", 4200) if powered and port["load"] else 0
    return found


def main(path: Path) -> int:
    """Answer requests until stdin closes."""
    lines = iter(sys.stdin.readline, "")
    for line in lines:
        request = line.strip()
        if not request:  # snmpd ends a set's value with an empty line
            continue
        if request == "PING":
            print("PONG", flush=True)
            continue
        oid = _key(next(lines))
        state = json.loads(path.read_text())
        served = values(state)
        if request == "get":
            found = oid if oid in served else None
        elif request == "getnext":
            found = next((k for k in sorted(served) if k > oid), None)
        elif request == "set":
            _type, _, value = next(lines).strip().partition(" ")
            port = str(oid[-1])
            if oid[: len(PETH_ENTRY) + 1] != (*PETH_ENTRY, ADMIN) or port not in state:
                print("not-writable", flush=True)
                continue
            state[port]["admin"] = int(value)
            tmp = path.with_suffix(".set")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, path)
            print("DONE", flush=True)
            continue
        else:
            print("NONE", flush=True)
            continue
        if found is None:
            print("NONE", flush=True)
        else:
            kind = "gauge" if found[: len(POWER)] == POWER else "integer"
            print(f"{_oid(found)}\n{kind}\n{served[found]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
