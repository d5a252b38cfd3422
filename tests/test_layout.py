"""The package's shape: a layer order every import obeys (imports inside functions included), no
import cycles, checkpoint reading that reaches no model, family-neutral stages that never import a
family, families that never import each other, no function over 80 lines and no module far over
400 lines."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "mos_fairseq"
FAMILIES = ("mos_fairseq.translation", "mos_fairseq.bert")

# Lowest first. A module may import modules of its own unit (a package such as ``core`` or a
# top-level module such as ``registry.py``) and of units in lower layers, never of a higher layer
# nor of another unit of its own layer (the families are siblings, so are registry and plugin).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base: errors, atomic files, the user dir, JSON tree models", ("base",)),
    ("building blocks of every supernet", ("modules",)),
    ("family-neutral core: the family interface, checkpoints, collapse, validation loss", ("core",)),
    ("the families and corpus preparation", ("translation", "bert", "data")),
    ("the families gathered: the registry, fairseq registration", ("registry", "plugin")),
    ("supernet loading through the registry", ("loading",)),
    ("latency: measurement, datasets, estimators", ("latency",)),
    ("search", ("search",)),
    ("the export pipeline", ("export",)),
    ("the command line", ("cli",)),
    ("the package root (importing it registers the plugin)", ("",)),
]
# above the families, yet they reach a family only through the registry and the family interface
FAMILY_NEUTRAL = ("latency", "search", "loading", "export")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(tree: ast.AST) -> list[str]:
    """Every absolute ``mos_fairseq`` name an import statement anywhere in ``tree`` names (the module
    of a ``from`` import, then each ``module.name`` it takes)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n == "mos_fairseq" or n.startswith("mos_fairseq.")]


def _package_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (functions included). The
    package root ``mos_fairseq`` (whose import registers the plugin) is left out as a target."""
    modules = _package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = _imported_names(ast.parse(path.read_text(), str(path)))
        graph[name] = {t for t in targets if t in modules and t not in ("mos_fairseq", name)}
    return graph


def unit_of(module: str) -> str:
    """``mos_fairseq.core.checkpoints`` -> ``core``; ``mos_fairseq.registry`` -> ``registry``; the root -> ''."""
    return module.split(".")[1] if "." in module else ""


def layer_of(module: str, layers=LAYERS) -> int | None:
    unit = unit_of(module)
    return next((i for i, (_, units) in enumerate(layers) if unit in units), None)


def layer_violations(graph: dict[str, set[str]], layers=LAYERS, neutral=FAMILY_NEUTRAL) -> list[str]:
    """Every module no layer holds, every import edge against the order, and every family import of a
    family-neutral unit; empty when the graph obeys ``layers``."""
    problems = [f"{m}: in no layer of the order" for m in sorted(graph) if layer_of(m, layers) is None]
    for module in sorted(graph):
        source, unit = layer_of(module, layers), unit_of(module)
        for target in sorted(graph[module]):
            dest, target_unit = layer_of(target, layers), unit_of(target)
            if source is None or dest is None or target_unit == unit:
                continue
            if dest > source:
                problems.append(f"{module} imports {target}: upward ({layers[source][0]} < {layers[dest][0]})")
            elif dest == source:
                problems.append(f"{module} imports {target}: a sibling in the layer '{layers[source][0]}'")
            elif unit in neutral and target.startswith(FAMILIES):
                problems.append(f"{module} imports {target}: a family, from a family-neutral stage")
    return problems


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_import_follows_the_layer_order():
    assert layer_violations(import_graph()) == []


def test_the_order_check_catches_upward_sibling_family_and_unplaced_imports():
    graph = {
        "mos_fairseq.core.collapse": {"mos_fairseq.modules.mos", "mos_fairseq.base.errors"},  # both down
        "mos_fairseq.modules.mos": {"mos_fairseq.core.family"},  # up: modules sit below core
        "mos_fairseq.translation.gap": {"mos_fairseq.search.runner", "mos_fairseq.bert.space"},  # up, sibling
        "mos_fairseq.latency.dataset": {"mos_fairseq.translation.architecture", "mos_fairseq.registry"},
        "mos_fairseq.registry": {"mos_fairseq.plugin"},  # sibling
        "mos_fairseq.cli.search": {"mos_fairseq.search.runner", "mos_fairseq.translation.bleu"},  # fine
        "mos_fairseq.newpkg.x": set(),
    }
    for deps in list(graph.values()):
        for d in deps:
            graph.setdefault(d, set())
    problems = layer_violations(graph)
    assert problems == [
        "mos_fairseq.newpkg.x: in no layer of the order",
        "mos_fairseq.latency.dataset imports mos_fairseq.translation.architecture: a family, from a "
        "family-neutral stage",
        "mos_fairseq.modules.mos imports mos_fairseq.core.family: upward (building blocks of every supernet "
        "< family-neutral core: the family interface, checkpoints, collapse, validation loss)",
        "mos_fairseq.registry imports mos_fairseq.plugin: a sibling in the layer 'the families gathered: the "
        "registry, fairseq registration'",
        "mos_fairseq.translation.gap imports mos_fairseq.bert.space: a sibling in the layer 'the families and "
        "corpus preparation'",
        "mos_fairseq.translation.gap imports mos_fairseq.search.runner: upward (the families and corpus "
        "preparation < search)",
    ]


def test_every_package_unit_has_a_layer():
    units = {unit_of(m) for m in _package_modules()}
    placed = {u for _, layer_units in LAYERS for u in layer_units}
    assert units == placed, f"not in the order: {sorted(units - placed)}; not in the package: {sorted(placed - units)}"


@pytest.mark.parametrize("folder", ["mos_fairseq", "tests", "benchmarks", "scripts"])
def test_every_import_of_the_package_names_a_module_or_a_name_in_one(folder):
    """A moved or removed module leaves no import behind, not even one inside a function."""
    import importlib

    modules = _package_modules()
    stale = set()
    for path in (REPO / folder).rglob("*.py"):
        for name in _imported_names(ast.parse(path.read_text(), str(path))):
            if name in modules:
                continue
            parent, _, attr = name.rpartition(".")
            if parent not in modules or not hasattr(importlib.import_module(parent), attr):
                stale.add(f"{path.relative_to(REPO)}: {name}")
    assert sorted(stale) == []


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


def test_no_function_over_80_lines():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # decorators not counted, the docstring is
                if lines > 80:
                    long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = lines
    assert long == {}


def test_no_module_over_about_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420
    }
    assert long == {}
