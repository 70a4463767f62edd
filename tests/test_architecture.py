"""The package's layout keeps its promise: the running appliance does not depend on the
prepare-time code (`appliance/prepare/`), the benches (`appliance/bench/`) or the test
helpers (`appliance/testing/`) beside it. The commands that need them (`appliance bench`,
`appliance models prepare|import|remove|measure|convert-whisper`) import them when they
run."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APART = ("appliance.prepare", "appliance.bench", "appliance.testing")
COMMANDS = ("appliance.cli", "appliance.models.commands")
"""The runtime modules whose command functions may import what is apart, when they run."""
ENTRY_POINTS = (
    "appliance.cli",
    "appliance.engines",
    "appliance.pipeline",
    "appliance.service",
    "appliance.web.app",
    "appliance.house",
    "appliance.mqtt.bridge",
    "appliance.vision.handler",
    "appliance.understanding.handler",
    "appliance.models.catalog",
    "appliance.models.budget",
    "appliance.models.gguf",
)

_CHILD = """
import importlib, json, sys
import appliance
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
print(json.dumps({"package": appliance.__file__, "modules": sorted(sys.modules)}))
"""


def _is_apart(name: str) -> bool:
    return any(name == apart or name.startswith(apart + ".") for apart in APART)


def runtime_modules() -> list[str]:
    """Every module of the package except what is apart and the `python -m` entry points."""
    names = []
    for path in sorted((ROOT / "appliance").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not _is_apart(name):
            names.append(name)
    return names


def _imports_in_a_fresh_interpreter(names: list[str]) -> set[str]:
    """sys.modules after importing `names` in a new interpreter started in the checkout, so
    that nothing another test imported counts."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert Path(seen["package"]).resolve() == ROOT / "appliance" / "__init__.py"  # this checkout
    return set(seen["modules"])


def test_the_runtime_imports_nothing_from_prepare_or_bench():
    names = runtime_modules()
    assert set(ENTRY_POINTS) <= set(names), set(ENTRY_POINTS) - set(names)
    loaded = _imports_in_a_fresh_interpreter(names)
    assert set(names) <= loaded
    leaked = sorted(name for name in loaded if _is_apart(name))
    assert not leaked, f"importing the runtime imports {leaked}"


def _apart_imports(tree: ast.Module) -> list[tuple[int, str, bool]]:
    """(line, module, inside a function) of every import of something apart."""
    in_functions = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [(node.lineno, m, id(node) in in_functions) for m in modules if _is_apart(m)]
    return found


def test_only_the_commands_import_prepare_or_bench_and_only_when_they_run():
    # The check above sees what importing does; this one sees imports inside functions,
    # which a running appliance would only make when it reached them.
    wrong = []
    for name in runtime_modules():
        relative = Path(*name.split("."))
        path = ROOT / relative.with_suffix(".py")
        if not path.is_file():
            path = ROOT / relative / "__init__.py"
        for line, module, in_function in _apart_imports(ast.parse(path.read_text("utf-8"))):
            if name not in COMMANDS or not in_function:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)
