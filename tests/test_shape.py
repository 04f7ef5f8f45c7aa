"""The shape the code promises: its public names, small modules and functions, one-way
imports. Checked on the source itself, so that a change that breaks it fails here."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

import rollwise

SRC = Path(rollwise.__file__).parent
HOT_PATH = {"routing/proxy/forward.py"}  # the proxy's per-request path: long on purpose
# The one import cycle allowed: the proxy's protocols call the server's bookkeeping directly
# (the reason is in forward.py's docstring); the server is named there for typing only.
PAIRED = {frozenset({"rollwise.routing.proxy.forward", "rollwise.routing.proxy.server"})}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def test_the_root_exports_exactly_its_public_names() -> None:
    public = {n for n in dir(rollwise) if not n.startswith("_")} | set(rollwise.__all__)
    public -= {"annotations", "import_module", "TYPE_CHECKING", "Any"}
    public -= {name.rpartition(".")[2] for name, _ in modules() if name.count(".") == 1}
    assert sorted(public) == sorted(rollwise.__all__)
    for name in rollwise.__all__:
        if name != "__version__":
            assert getattr(rollwise, name).__module__ == "rollwise", name
    assert rollwise.__version__ == version("rollwise")


def test_private_modules_name_their_public_api() -> None:
    missing = []
    for name, path in modules():
        tree = ast.parse(path.read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and not node.name.startswith("_")
        }
        has_all = any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and "__all__" in ast.unparse(node).split("=")[0]
            for node in tree.body
        )
        if defined and not has_all and not name.endswith("__main__"):
            missing.append(name)
    assert missing == [], "modules that define public names without __all__"


def test_modules_and_functions_stay_small() -> None:
    big, long = [], []
    for _, path in modules():
        text = path.read_text()
        relative = path.relative_to(SRC).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES and relative not in HOT_PATH:
            big.append(relative)
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                reason = re.search(r"# noqa: [A-Z0-9, ]+ -- \S", lines[node.lineno - 1])
                if length > MAX_FUNCTION_LINES and not reason:
                    long.append(f"{relative}:{node.lineno} {node.name} ({length} lines)")
    assert big == [], f"modules over {MAX_MODULE_LINES} lines"
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines without a noqa and reason"


def _imports(name: str, path: Path) -> set[str]:
    """The rollwise modules ``name`` imports at run time (not under TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rollwise")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("rollwise"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_imports_run_one_way() -> None:
    names = dict(modules())
    graph = {n: {m for m in _imports(n, p) if m in names and m != n} for n, p in names.items()}
    cycles = set()
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.add(frozenset(path))
                elif nxt not in path and len(path) < 6:
                    stack.append((nxt, [*path, nxt]))
    # a package and its own modules re-exporting them is no cycle of ideas
    real = {c for c in cycles if not any(a.startswith(b + ".") for a in c for b in c if a != b)}
    assert real <= PAIRED, sorted(sorted(c) for c in real - PAIRED)


def test_the_controller_speaks_to_protocols_only() -> None:
    implementations = {
        "rollwise.backends.local",
        "rollwise.routing.builtin",
        "rollwise.routing.dataplane",
        "rollwise.analysis.proxy_source",
    }
    allowed = {"rollwise.controller.providers"}  # the factory: the one place that knows them
    offenders = []
    for name, path in modules():
        if name.startswith("rollwise.controller") and name not in allowed:
            used = _imports(name, path) & implementations
            offenders += [f"{name} imports {u}" for u in sorted(used)]
    assert offenders == []


@pytest.mark.parametrize(
    "package", ["rollwise.controller", "rollwise.routing", "rollwise.backends"]
)
def test_every_module_imports(package: str) -> None:
    mod = importlib.import_module(package)
    for info in pkgutil.walk_packages(mod.__path__, f"{package}."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    assert package in sys.modules
