"""The public surface and the code's shape, checked (as httpx's tests/test_exported_members.py):
`search.__all__` is what cli.py uses, each public module's `__all__` is what it defines and
what bench/ uses, imports form no circle, and stored keys are written in one module."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import search

from conftest import ROOT

PACKAGE = ROOT / "search"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))
PUBLIC = [m for m in MODULES if not any(part.startswith("_") for part in m.split(".")[1:])]


def _imports(path: Path, *, type_checking: bool = False):
    """(module, names, line, in a function) for every `from X import ...` / `import X` in a file;
    imports under `if TYPE_CHECKING:` only when asked."""
    tree = ast.parse(path.read_text())
    hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
              and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" for n in ast.walk(node)}
    local = {id(n) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(node) if n is not node}
    for node in ast.walk(tree):
        if id(node) in hidden and not type_checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names], node.lineno, id(node) in local
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno, id(node) in local


def test_every_exported_name_resolves_to_where_it_is_said_to_live():
    assert search.__all__ == sorted(set(search.__all__))
    for name in search.__all__:
        value = getattr(search, name)
        module = search._EXPORTS[name]
        assert getattr(importlib.import_module(module), name) is value, name
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == module, f"{name} is defined in {value.__module__}, not {module}"
            assert inspect.getdoc(value) or name in ("fmt",), f"search.{name} has no docstring"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        search.nothing  # noqa: B018


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_module_declares_what_it_defines(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} declares no __all__"
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.__all__ lists {member}, which it lacks"
    defined = {n for n, v in vars(module).items() if not n.startswith("_")
               and (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == name}
    missing = defined - set(module.__all__)
    assert not missing, f"{name} defines {sorted(missing)} but leaves them out of __all__ (or name them _private)"


def test_cli_uses_the_package_api_only():
    for module, names, line, _ in _imports(ROOT / "cli.py"):
        if module == "search" or module.startswith("search."):
            assert module == "search", f"cli.py:{line} imports {module}: use `from search import ...`"
            unknown = set(names) - set(search.__all__)
            assert not unknown, f"cli.py:{line}: {sorted(unknown)} are not in search.__all__"


def test_bench_uses_public_modules_and_their_declared_names():
    for path in (ROOT / "bench").rglob("*.py"):
        for module, names, line, _ in _imports(path):
            if not (module == "search" or module.startswith("search.")):
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            assert module in PUBLIC, f"{where} imports the private module {module}"
            declared = importlib.import_module(module).__all__
            names = [n for n in names if f"{module}.{n}" not in MODULES]  # `from search import precision`
            assert set(names) <= set(declared), f"{where}: {sorted(set(names) - set(declared))} not in {module}.__all__"


def test_no_import_circle_not_even_through_a_function_local_import():
    graph = {m: set() for m in MODULES}
    for name in MODULES:
        path = ROOT / (name.replace(".", "/") + ".py")
        path = path if path.exists() else ROOT / name.replace(".", "/") / "__init__.py"
        for module, names, _, _ in _imports(path, type_checking=False):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in graph] or [module]
            graph[name] |= {t for t in targets if t in graph and t != name and not name.startswith(t + ".")}
    graph["search"] = set()  # the package's names are loaded lazily (PEP 562), on first use
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_stored_keys_are_written_and_read_in_the_record_module_only():
    """Trial and study attributes go through search/records.py (the dashboard's own formats
    through search/_dashboard.py, Optuna's private names through search/_optuna.py)."""
    touching = ("user_attrs", "set_user_attr", "set_trial_user_attr", "system_attrs", "set_study_user_attr")
    allowed = {"search/records.py", "search/_optuna.py", "search/_dashboard.py"}
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "cli.py", *(ROOT / "bench").rglob("*.py")]:
        rel = str(path.relative_to(ROOT))
        if rel in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in touching:
                offenders.append(f"{rel}:{node.lineno}: .{node.attr}")
    assert not offenders, offenders


def test_optunas_experimental_warning_is_silenced_in_one_place():
    users = [str(p.relative_to(ROOT)) for p in [*PACKAGE.rglob("*.py"), ROOT / "cli.py"]
             if "ExperimentalWarning" in p.read_text()]
    assert users == ["search/_optuna.py"]
