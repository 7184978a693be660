"""net-snmp ``pass`` program: serve UPS-MIB integers from a JSON state file.

Called by snmpd as ``ups_pass.py STATE -g OID`` (get) or ``-n OID`` (get next); prints the
OID, the type and the value on three lines, or nothing if there is no such object.
"""

from __future__ import annotations

import json
import sys


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.strip(".").split(".") if part)


def main(argv: list[str]) -> int:
    """Answer one request."""
    if len(argv) < 4 or argv[2] not in ("-g", "-n"):
        return 0
    with open(argv[1], encoding="utf-8") as handle:
        values = {_key(oid): value for oid, value in json.load(handle).items()}
    wanted = _key(argv[3])
    if argv[2] == "-g":
        found = wanted if wanted in values else None
    else:
        found = next((k for k in sorted(values) if k > wanted), None)
    if found is not None:
        sys.stdout.write(f".{'.'.join(map(str, found))}\ninteger\n{values[found]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
