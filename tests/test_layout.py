"""The shape of engine/ that the README promises: engines are adapters, the run loop is engine-
agnostic, models see one module of the engine, and no two modules import each other.

Read from the source with ``ast`` (imports under TYPE_CHECKING count too), so a violation names
the file and what it imports.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "engine"
ADAPTERS = ENGINE / "adapters"
REGISTRY = ADAPTERS / "__init__.py"
RUN_LOOP = ("refresh/runner.py", "refresh/building.py", "refresh/scheduler.py")
ENGINE_NAMES = ("duckdb", "spark")


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module the file imports, absolute (``from engine.x import y`` gives engine.x and
    engine.x.y: y may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _edges(path: Path, modules: set[str]) -> set[str]:
    """The engine modules the file imports; ``from package import module`` is an edge to the
    module (the package's __init__ runs first in any case, as it does for every import)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules
            found.update(submodules or {node.module})
    return found & modules


def _engine_files() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def _code_strings(path: Path) -> list[str]:
    """Names and string literals of a file, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and (body := node.body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    }
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
    return words


def test_only_the_adapters_and_the_registry_name_an_engine() -> None:
    offenders = []
    for path in _engine_files():
        if path.is_relative_to(ADAPTERS):
            continue
        adapters = {m for m in _imports(path) if m.startswith("engine.adapters.")}
        # The interface, and the registry's lookup by name, are for everyone.
        named = {m for m in adapters if not m.startswith("engine.adapters.base")}
        named -= {"engine.adapters.ENGINES", "engine.adapters.DEFAULT_ENGINE"}
        named |= {m for m in _imports(path) if m.split(".")[0] == "pyspark"}
        spark_words = [w for w in _code_strings(path) if "spark" in w.lower()]
        if named or spark_words:
            offenders.append((str(path.relative_to(REPO)), sorted(named), spark_words))
    assert offenders == []


def test_the_run_loop_imports_no_engine_library() -> None:
    for name in RUN_LOOP:
        imported = {m.split(".")[0] for m in _imports(ENGINE / name)}
        assert not imported & {"duckdb", "pyspark"}, name


def test_adapters_do_not_import_each_other() -> None:
    for engine in ENGINE_NAMES:
        others = {f"engine.adapters.{o}" for o in ENGINE_NAMES if o != engine}
        for path in (ADAPTERS / engine).rglob("*.py"):
            imported = _imports(path)
            assert not {m for m in imported for o in others if m.startswith(o)}, path


def test_models_import_one_module_of_the_engine_and_no_other_model() -> None:
    for path in sorted((REPO / "python_models").glob("*.py")):
        imported = _imports(path)
        engine = {m for m in imported if m.split(".")[0] == "engine"}
        assert engine <= {"engine.model_api"} | {f"engine.model_api.{n}" for n in dir_of_api()}, (
            path.name,
            engine,
        )
        models = {
            m.split(".")[1]
            for m in imported
            if m.startswith("python_models.") and not m.split(".")[1].startswith("_")
        }
        assert not models, (path.name, models)


def dir_of_api() -> set[str]:
    from engine import model_api

    return set(model_api.__all__)


def test_no_two_engine_modules_import_each_other() -> None:
    modules = {_module(p): p for p in _engine_files()}
    graph = {name: _edges(path, set(modules)) - {name} for name, path in modules.items()}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
