"""The layout the architecture doc promises: who may import whom, no cycles, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

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
    "bench": {"pantau.core", "devtools", "edge_agent", "cloud", "simulators"},
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
