"""Which package may import which (docs/architecture.md). Read from the source: the
imports a module makes when it is imported (its top level; not inside functions, not
under TYPE_CHECKING), followed transitively, parent packages included."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE = ("pipeline", "audio", "events", "errors", "handlers")
"""The core: the audio loop, turns, replies, events, errors."""
ENGINES = ("wake", "stt", "llm", "tts", "audio")
FEATURES = (
    "web",
    "actions",
    "mqtt",
    "vision",
    "app",
    "house",
    "cli",
    "device",
    "discovery",
    "satellite",
    "remote",
    "rooms",
)
"""Features and the layers that assemble them; the core and the engines know none."""
CORE_MAY_USE = (
    "appliance.understanding",  # the package (its __init__ imports nothing)
    "appliance.understanding.claims",
    "appliance.understanding.followup",
)
"""Text rules the core applies to every reply: the honesty check (no claim of an action
that did not run) and whether a follow-up answers the question."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in (ROOT / "appliance").rglob("*.py")}


@cache
def _imported_at_import(name: str) -> frozenset[str]:
    """Our modules `name` imports when it is itself imported."""
    modules = _modules()
    tree = ast.parse(modules[name].read_text("utf-8"))
    found: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            continue
        nodes = ast.walk(statement) if isinstance(statement, ast.If | ast.Try) else [statement]
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return frozenset(m for m in found if m in modules)


def _closure(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += _imported_at_import(name)
    return seen


def _package(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _in(name: str, packages: tuple[str, ...]) -> bool:
    return _package(name) in packages


def test_the_core_imports_no_feature_and_no_engine_implementation():
    wrong = []
    for name in _modules():
        if not _in(name, CORE):
            continue
        for reached in sorted(_closure(name)):
            understanding = _in(reached, ("understanding",)) and reached not in CORE_MAY_USE
            if understanding or _in(reached, FEATURES):
                wrong.append(f"{name} imports {reached}")
        for direct in _imported_at_import(name):
            engine = _package(direct) in ("wake", "stt", "llm", "tts")
            if engine and not _in(name, ENGINES) and not direct.endswith(".base"):
                wrong.append(f"{name} imports the engine implementation {direct}")
    assert not wrong, "\n".join(wrong)


def test_engines_import_no_page_no_actions_and_no_pipeline():
    wrong = [
        f"{name} imports {reached}"
        for name in _modules()
        if _in(name, ENGINES)
        for reached in sorted(_closure(name))
        if _in(reached, (*FEATURES, "pipeline", "understanding", "engines"))
    ]
    assert not wrong, "\n".join(wrong)


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in _modules():
        for imported in _imported_at_import(name):
            if _package(imported) and _package(imported) != _package(name):
                graph.setdefault(_package(name), set()).add(_package(imported))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in graph.get(node, ()):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = set()
            while (top := stack.pop()) != node:
                on_stack.discard(top)
                component.add(top)
            on_stack.discard(node)
            component.add(node)
            if len(component) > 1:
                cycles.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_between_packages():
    """The config file's sections live in `sections` (the config gathers them, features
    read theirs) and the house is put together outside `actions` (`appliance.house`), so
    packages import one another one way only."""
    assert _cycles(_package_graph()) == []


def test_the_rules_see_a_breach():
    # The checks read real imports: a known one is found, so they are not empty.
    assert "appliance.pipeline.types" in _closure("appliance.pipeline.core")
    assert "appliance.sections.devices" in _closure("appliance.config")
    graph = _package_graph()
    assert "sections" in graph["config"] and "understanding" in graph["pipeline"]
    graph.setdefault("understanding", set()).add("pipeline")  # a cycle made on purpose
    assert any({"pipeline", "understanding"} <= cycle for cycle in _cycles(graph))
