"""accord's layers import one way: no import circle between modules, and no module imports a higher layer.

Every ``import`` in the package counts, those inside functions (deferred imports) and under
``TYPE_CHECKING`` included: a deferred import still ties the lower module to the higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "accord"

#: Lowest first. A module may import its own layer and those below, never one above. The top-level modules
#: are placed by what they are: the package's ``__init__`` (its version; it imports nothing) and
#: ``collectives`` (the torch.distributed sums the models and losses use) and ``domains`` (the ranges of config
#: keys and loss options) are a base below the data; ``grid`` runs configs and ``weights`` imports released
#: checkpoints (through ``export``); ``results``, ``report``, ``report_figures`` and ``plot`` read run
#: folders into tables and figures; the rest serve the command line.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "collectives", "domains", "errors", "logs"),
    ("data",),
    ("views",),
    ("models",),
    ("losses",),
    ("step",),
    ("config",),
    ("engine", "timm_loop"),
    ("evaluation", "export", "bench", "grid", "weights"),
    ("results", "report_figures", "report", "report_cells", "plot"),
    ("cli", "cli_eval", "cli_flags", "cli_runs", "cli_tools", "console", "outputs", "stops", "__main__"),
)
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").is_file()


def is_module(module: str) -> bool:
    return is_package(module) or (PACKAGE.parent / (module.replace(".", "/") + ".py")).is_file()


def imported_modules(path: Path, tree: ast.AST | None = None) -> set[str]:
    """The accord modules ``path`` imports, anywhere in the file."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree or ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "accord"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.split(".")[0] == "accord":
                target = node.module
            else:
                continue
            names = [f"{target}.{alias.name}" for alias in node.names]  # `from . import report_figures`
            submodules = {name for name in names if is_module(name)}
            found |= submodules if submodules and len(submodules) == len(names) else {target} | submodules
    return {m for m in found if m != module}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in sorted(package.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    part = parts[1] if len(parts) > 1 else "__init__"
    if part not in LAYER_OF:
        raise AssertionError(f"{module} has no layer: add it to tests/test_layers.py's LAYERS (and README's Layout)")
    return LAYER_OF[part]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_module_has_a_layer() -> None:
    for module in import_graph():
        layer(module)


def test_no_import_circle() -> None:
    assert import_circles(import_graph()) == []


def test_no_import_from_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_the_checks_see_deferred_imports_and_circles(tmp_path: Path) -> None:
    """A function-level import closing a circle (report -> report_figures -> report) is found."""
    graph = {
        "accord.report": imported_modules(
            PACKAGE / "report.py", ast.parse("def write():\n    from .report_figures import write_figures\n")
        ),
        "accord.report_figures": imported_modules(
            PACKAGE / "report_figures.py", ast.parse("from .report import Result, label\n")
        ),
    }
    assert graph == {"accord.report": {"accord.report_figures"}, "accord.report_figures": {"accord.report"}}
    assert import_circles(graph) == [["accord.report", "accord.report_figures"]]
    assert upward_imports({"accord.losses.registry": {"accord.engine.loop"}}) == [
        "accord.losses.registry (layer 4) imports accord.engine.loop (layer 7)"
    ]
