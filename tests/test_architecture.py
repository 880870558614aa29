"""The layers of docs/architecture.md hold: who may import what, and no import cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "neatlogs"
SDKS = {"openai", "anthropic", "litellm"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_testing" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for each import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node: ast.AST, top: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                yield from ((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, *([child.module] if child.module else [])])
                for alias in child.names:
                    yield f"{base}.{alias.name}", inner
                yield base, inner
            yield from walk(child, inner)

    yield from walk(tree, True)


def _edges(top_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, top in _imports(name, path):
            if top_only and not top:
                continue
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges[name].add(target)
    return edges


def test_only_providers_import_an_sdk() -> None:
    leaks = [
        f"{name} imports {target}"
        for name, path in _modules().items()
        if not name.startswith("neatlogs.providers.") and name.rpartition(".")[2] not in ("_demo", "__main__")
        for target, _ in _imports(name, path)
        if target.split(".")[0] in SDKS
    ]
    assert leaks == []


_BELOW_PROVIDERS = ("neatlogs.sinks", "neatlogs.record", "neatlogs.dispatch", "neatlogs.worker")
_ABOVE_RECORD = ("neatlogs.sinks", "neatlogs.dispatch", "neatlogs.providers", "neatlogs.collector")
_CLIENT_FOR_THE_COLLECTOR = ("neatlogs", "neatlogs.record", "neatlogs.record.schema", "neatlogs._log")


def _layer_breaks(name: str, target: str) -> bool:
    if name.startswith(_BELOW_PROVIDERS) and target.startswith(("neatlogs.providers", "neatlogs.collector")):
        return True
    if name.startswith("neatlogs.record") and target.startswith(_ABOVE_RECORD):
        return True
    in_collector = name.startswith("neatlogs.collector")
    return (
        in_collector
        and not target.startswith("neatlogs.collector")
        and target not in _CLIENT_FOR_THE_COLLECTOR
    )


def test_sinks_and_record_never_import_providers_and_the_collector_only_the_schema() -> None:
    wrong = [
        f"{name} -> {target}"
        for name, targets in _edges(top_only=False).items()
        for target in targets
        if _layer_breaks(name, target)
    ]
    assert wrong == []


def test_no_import_cycle_at_module_level() -> None:
    edges = _edges(top_only=True)
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
