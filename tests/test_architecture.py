"""The shape of the code: no import cycles, no registration by import, one composition root.

Imports are read from the source with `ast`, inside functions and under TYPE_CHECKING too, so a
cycle hidden in a function body counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wecom_app", "callbacks")


def _modules() -> dict[str, Path]:
    """Every module of the project's packages by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The project modules one import statement names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if not isinstance(node, ast.ImportFrom):
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    for alias in node.names:
        child = f"{target}.{alias.name}"
        if child in known:
            yield child  # `from package import module` imports that module
        elif target in known:
            yield target


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its source."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges.update(_imported(node, name, is_package, known))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_takes_part_in_an_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_callbacks_do_not_import_the_app_factory_or_the_composition_root() -> None:
    graph = import_graph()
    roots = {"wecom_app.app", "wecom_app.compose", "wecom_app"}
    offenders = {
        name: sorted(graph[name] & roots) for name in graph if name.startswith("callbacks")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_only_the_entry_points_import_the_composition_root() -> None:
    """Features, callbacks and the web layer never reach up to the root that builds them."""
    graph = import_graph()
    entry = (
        "wecom_app.app",
        "wecom_app.worker",
        "wecom_app.cli",
        "wecom_app.demo",
        "wecom_app.bench",
    )
    importers = {name for name, edges in graph.items() if "wecom_app.compose" in edges}
    offenders = {name for name in importers if not name.startswith(entry)}
    assert not offenders, sorted(offenders)


def test_nothing_registers_itself_with_a_decorator_on_import() -> None:
    """Handlers, performers, jobs and subscribers are added by each feature's register()."""
    banned = {"handles", "performer", "on_result", "job", "subscribe"}
    offenders = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                label = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if label in banned:
                    offenders.append(f"{name}.{node.name} @{label}")
    assert not offenders, offenders


def test_services_are_never_typed_any() -> None:
    """A parameter called `services` is annotated with the Services type."""
    offenders = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for arg in [*node.args.args, *node.args.kwonlyargs]:
                if arg.arg in ("services", "svc"):
                    annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                    if "Services" not in annotation:
                        offenders.append(f"{name}.{node.name}({arg.arg}: {annotation or '?'})")
    assert not offenders, offenders


def test_no_getattr_probing_of_settings_or_services() -> None:
    offenders = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and node.args
                and isinstance(node.args[0], ast.Attribute | ast.Name)
                and ast.unparse(node.args[0]).split(".")[-1]
                in ("settings", "services", "svc", "ctx", "notice")
            ):
                offenders.append(f"{name}: {ast.unparse(node)}")
    assert not offenders, offenders
