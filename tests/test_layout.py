"""The layout is a rule: stage packages import only downwards, with no cycles.

Packages, lowest first. A package may import itself and any package listed before it, never one
after it. Imports are read from the source (every `import`, also inside functions), so a lazy
import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "router"
LAYERS = ("common", "request", "policy", "catalog", "live", "engine", "decide", "explain",
          "dispatch", "records", "config", "facade", "service", "cli")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """{module: modules and top-level packages it imports}, read from the source."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        mod = _module(path)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out[mod].add(node.module)
                out[mod].update(f"{node.module}.{a.name}" for a in node.names
                                if (ROOT.parent / node.module.replace(".", "/")
                                    / f"{a.name}.py").exists())
            elif isinstance(node, ast.Import):
                out[mod].update(a.name for a in node.names)
    return out


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "router" or len(parts) < 2:
        return None
    return parts[1]


def test_every_module_is_in_a_layer() -> None:
    stray = {m for m in _imports() if m != "router" and _package(m) not in LAYERS}
    assert stray == set(), f"modules outside the stage packages: {sorted(stray)}"


def test_packages_import_only_downwards() -> None:
    rank = {p: i for i, p in enumerate(LAYERS)}
    upward = []
    for mod, targets in _imports().items():
        src = _package(mod)
        if src is None:
            continue
        for t in targets:
            dst = _package(t)
            if dst is not None and dst != src and rank[dst] > rank[src]:
                upward.append(f"{mod} -> {t}")
    assert upward == [], "upward imports:\n" + "\n".join(sorted(upward))


def test_named_rules() -> None:
    imports = _imports()
    broken = []
    for mod, targets in imports.items():
        pkg = _package(mod)
        for t in targets:
            if pkg == "decide" and _package(t) == "dispatch":
                broken.append(f"decide imports dispatch: {mod} -> {t}")
            if pkg == "catalog" and _package(t) == "live":
                broken.append(f"catalog imports live: {mod} -> {t}")
            if t.split(".")[0] == "pyDatalog" and pkg != "engine":
                broken.append(f"only engine imports pyDatalog: {mod} -> {t}")
            if _package(t) == "cli" and pkg != "cli":
                broken.append(f"nothing imports cli: {mod} -> {t}")
    assert broken == []


def test_no_import_cycles_between_modules() -> None:
    graph = nx.DiGraph()
    imports = _imports()
    for mod, targets in imports.items():
        for t in targets:
            if t in imports and t != mod:
                graph.add_edge(mod, t)
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], f"import cycles: {cycles}"


def test_the_rules_see_a_violation() -> None:
    """The checks above read real edges: the facade imports the engine and the CLI the facade."""
    imports = _imports()
    assert any(_package(t) == "engine" for t in imports["router.facade"])
    assert "router.facade" in imports["router.cli.main"]


def test_importing_the_router_does_not_import_networkx() -> None:
    """networkx is loaded only where a proof is exported."""
    import subprocess
    import sys

    code = "import sys, router; router.Router; print('networkx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
