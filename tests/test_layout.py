"""The package's shape: no import cycles (imports inside functions included), checkpoint reading
that reaches no model, families that never import each other, shared code that never imports a
family, and no module far over 400 lines."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mos_fairseq"
FAMILIES = ("mos_fairseq.translation", "mos_fairseq.bert")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (functions included). The
    package root ``mos_fairseq`` (whose import registers the plugin) is left out as a target."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                if target in modules and target != "mos_fairseq" and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_import_graph_has_no_cycles():
    graph = import_graph()
    cycles = sorted(m for m in graph if m in reachable(graph, m) and not graph[m] <= {m})
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "mos_fairseq.translation.static" in graph["mos_fairseq.translation.supernet"]  # extract_static's lazy import


def test_reading_a_checkpoint_imports_no_model():
    reached = reachable(import_graph(), "mos_fairseq.core.checkpoints")
    assert not [m for m in reached if m.startswith(FAMILIES) or m.startswith("mos_fairseq.modules")], reached


def test_core_is_family_neutral_and_families_are_siblings():
    graph = import_graph()
    for name, edges in graph.items():
        if name.startswith("mos_fairseq.core") or name.startswith("mos_fairseq.modules"):
            assert not [e for e in edges if e.startswith(FAMILIES) or e == "mos_fairseq.registry"], name
        for family in FAMILIES:
            if name.startswith(family):
                other = [e for e in edges if e.startswith(FAMILIES) and not e.startswith(family)]
                assert other == [], f"{name} imports the other family: {other}"


def test_no_module_over_about_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420
    }
    assert long == {}
