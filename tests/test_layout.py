"""The layout the architecture doc promises: who may import whom, no cycles, small modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import BUILD_AN_AGENT

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pantau", "edge_agent", "cloud", "dashboards", "simulators", "devtools", "bench")
MAX_MODULE_LINES = 400

# Layer -> the layers it may import (besides itself). The CLI sits on top of everything.
ALLOWED: dict[str, set[str]] = {
    "pantau.core": set(),
    "pantau.ops": {"pantau.core"},
    "devtools": {"pantau.core"},
    "edge_agent": {"pantau.core"},
    "cloud": {"pantau.core"},
    "dashboards": {"pantau.core", "cloud"},
    "simulators": {"pantau.core", "pantau.ops", "devtools", "edge_agent", "cloud", "dashboards"},
    "bench": {"pantau.core", "devtools", "edge_agent", "cloud", "dashboards", "simulators"},
    "pantau.cli": {
        "bench",
        "pantau.core",
        "pantau.ops",
        "devtools",
        "edge_agent",
        "cloud",
        "dashboards",
        "simulators",
    },
    "pantau": {"pantau.cli"},  # __main__
}


def layer(module: str) -> str:
    """The layer a dotted module name belongs to (longest prefix in ``ALLOWED``)."""
    for name in sorted(ALLOWED, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    raise AssertionError(f"{module} belongs to no layer")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> set[str]:
    """Project modules imported anywhere in ``path`` (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def test_every_import_follows_the_layers() -> None:
    """The core imports nothing of the project; each layer only the ones below it."""
    wrong = []
    for name, path in sorted(modules().items()):
        own = layer(name)
        for target in sorted(imports(path)):
            other = layer(target)
            if other != own and other not in ALLOWED[own]:
                wrong.append(f"{name} ({own}) imports {target} ({other})")
    assert not wrong, "\n".join(wrong)


def test_the_layers_have_no_cycle() -> None:
    """ALLOWED itself is acyclic, so the import graph between layers is too."""
    visiting: list[str] = []

    def visit(node: str) -> None:
        assert node not in visiting, f"cycle: {' -> '.join([*visiting, node])}"
        visiting.append(node)
        for below in ALLOWED[node]:
            visit(below)
        visiting.pop()

    for node in ALLOWED:
        visit(node)


def test_no_product_module_is_too_long() -> None:
    """A module a newcomer can read in one sitting."""
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_the_agent_runs_without_the_cloud_libraries() -> None:
    """What `pip install pantau[edge]` leaves out (FastAPI, uvicorn, SQLAlchemy, grafanalib,
    prometheus-client, orjson, cryptography, selenium) is never imported by `pantau agent`: the
    CLI's help and an agent built from a config work with those imports made to fail."""
    cloud_only = (
        "fastapi", "uvicorn", "sqlalchemy", "grafanalib", "prometheus_client", "orjson",
        "cryptography", "selenium", "starlette",
    )  # fmt: skip
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {cloud_only!r}:\n"
        "            raise ImportError(f'{name} is not installed on an edge box')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from typer.testing import CliRunner\n"
        "from pantau.cli import app\n"
        "result = CliRunner().invoke(app, ['agent', '--help'])\n"
        "assert result.exit_code == 0, result.output\n" + BUILD_AN_AGENT + "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
