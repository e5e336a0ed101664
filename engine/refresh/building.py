"""Build one model, whatever engine holds the tables: a seed, a raw source, a SQL or a Python
model, each handed to the engine in the one way that kind is made.

A Python model's parameters are filled from one table of providers (config, seed, run_id,
variables, progress, parallel); ``previous_<table>`` is that table as last published; every
other parameter is a table it reads, in the type its annotation asks for (a DuckDB relation, a
pyarrow Table, or else a pandas DataFrame), read from the build's catalog.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.adapters.base import Engine, ModelInputs, Progress
from engine.errors import ConfigError, ModelError, PipelineError
from engine.model_api import ModelResult
from engine.project import seeds
from engine.project.config import Config
from engine.project.constraints import ParameterError
from engine.project.discovery import PREVIOUS_PREFIX, Model, Project
from engine.refresh.interrupts import held_back
from engine.refresh.loader import check_unchanged, landing_snapshot
from engine.warehouse.catalog import BuildCatalog, model_failure


@dataclass(frozen=True)
class BuildContext:
    """What building a model may use: the engine, the build's catalog, and this run's givens."""

    engine: Engine
    catalog: BuildCatalog
    project: Project
    config: Config
    run_id: str
    model_params: dict[str, dict[str, Any]]
    # Runs a model's independent pieces of work side by side: the build's FitWorkers.map.
    parallel: Callable[[Callable[[Any], Any], Any], Iterator[Any]]
    # --reset-history: models are given no previous table, as on a first build.
    reset_history: bool = False


def build_model(context: BuildContext, model: Model, progress: Progress) -> str | None:
    """Make the model's table with the engine; a note for the run's record, if any."""
    engine, config = context.engine, context.config
    if model.kind == "seed":
        engine.write_table(model, seeds.SEED_BUILDERS[model.name](config))
    elif model.kind == "source":
        source = config.sources[model.name]
        landed = landing_snapshot(config, source)
        engine.load_source(model, progress)
        check_unchanged(landed, config, source)
    elif model.kind == "sql":
        assert model.query is not None
        engine.create_table(model, model.query)
    else:
        with parameter_errors_as_config(config), engine.model_inputs(model) as inputs:
            result = _python_result(context, model, inputs, progress)
            if result.query is not None:
                engine.create_table(model, result.query)
            else:
                engine.write_table(model, result.table)
            engine.install_functions(model, result.functions)
        return inputs.note
    return None


@contextlib.contextmanager
def parameter_errors_as_config(config: Config) -> Iterator[None]:
    """A model's own check of what the config gave it fails as a config error."""
    try:
        yield
    except ParameterError as exc:
        raise ConfigError(f"{config.path.name}: {exc}") from exc


# --- a Python model ----------------------------------------------------------------------------

Provider = Callable[[BuildContext, Model, Progress], Any]

PROVIDERS: dict[str, Provider] = {
    "config": lambda context, model, _: context.model_params[model.name],
    "seed": lambda context, _, __: context.config.seed,
    "run_id": lambda context, _, __: context.run_id,
    "variables": lambda context, _, __: context.config.variables,
    "progress": lambda _, __, progress: progress,  # a long model says how far it is
    "parallel": lambda context, _, __: context.parallel,  # parallel(function, items)
}


def _arguments(
    context: BuildContext,
    model: Model,
    function: Callable[..., Any],
    stand_ins: Mapping[str, str],
    progress: Progress,
) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    by_name, catalog = context.project.by_name, context.catalog
    arguments: dict[str, Any] = {}
    for parameter in model.parameters:
        if parameter in PROVIDERS:
            arguments[parameter] = PROVIDERS[parameter](context, model, progress)
        elif parameter.startswith(PREVIOUS_PREFIX):
            table = by_name[parameter.removeprefix(PREVIOUS_PREFIX)].table
            previous = (
                None if context.reset_history else catalog.previous(table, hints.get(parameter))
            )
            arguments[parameter] = previous
        else:
            table = by_name[parameter].table
            arguments[parameter] = catalog.read(stand_ins.get(table, table), hints.get(parameter))
    return arguments


def load_python_model(model: Model) -> Callable[..., Any]:
    assert model.path is not None
    spec = importlib.util.spec_from_file_location(f"python_models.{model.name}", model.path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered like any imported module, so what it defines can be pickled by name.
    sys.modules[spec.name] = module
    # A model's imports load C extensions (scipy's): Ctrl-C in the middle of one surfaces as an
    # ImportError, a model failure instead of a stop, and breaks the next import of it too.
    with held_back():
        spec.loader.exec_module(module)
    return module.model


def _python_result(
    context: BuildContext, model: Model, inputs: ModelInputs, progress: Progress
) -> ModelResult:
    """Run a Python model; what it returned, as a ModelResult."""
    try:
        function = load_python_model(model)
        result = function(**_arguments(context, model, function, inputs.stand_ins, progress))
    except (PipelineError, ParameterError):
        raise
    except Exception as exc:  # a model's own bug: report it against the model file
        raise model_failure(model, exc) from exc
    if not isinstance(result, ModelResult):
        return ModelResult(table=result)
    if result.table is not None and result.query is not None:
        raise ModelError(f"{model.path}: a ModelResult has a table or a query, not both")
    return result
