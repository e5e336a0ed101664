"""Customer Segmentation Warehouse: the command line.

    python pipeline.py run                 refresh the whole warehouse
    python pipeline.py run --select +stg_customers
    python pipeline.py list                the models in build order, with their inputs
    python pipeline.py show marts.eda_profile
    python pipeline.py report              write warehouse/report.html from the published tables
    python pipeline.py docs                lineage docs and manifest in warehouse/docs
    python pipeline.py export --format csv the marts as files in warehouse/exports/csv
    python pipeline.py export --audiences  each audience's target customers as CSV

Exit codes: 0 success, 1 a blocking expectation failed, 2 bad config, input file or command line,
3 another refresh is running, 4 a model or the project is broken, 130 interrupted (Ctrl-C),
143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

STARTED = time.monotonic()  # the command's own start, before anything heavy is imported

try:
    from engine import api
    from engine.adapters import ENGINES
    from engine.console import Console
    from engine.errors import PipelineError, is_interrupt
    from engine.project.config import DEFAULT_CONFIG_NAME
    from engine.refresh.interrupts import TERMINATED_EXIT, exit_code, held_back, stop_on_sigterm
except KeyboardInterrupt:  # Ctrl-C as the command starts: nothing has begun, so no traceback
    print("Interrupted.", file=sys.stderr, flush=True)
    os._exit(130)

if TYPE_CHECKING:
    import pandas as pd

    from engine.project.config import Config
    from engine.warehouse.recording import RunResult

ROOT = Path(__file__).resolve().parent

# The models multiply matrices of a handful of feature columns, where BLAS's and OpenMP's own
# threads never pay for themselves; yet after each call they spin, taking the other core from
# the validation worker and the fit workers (about 0.15 s of the sample's refresh, and no slower
# at 20k). One thread also keeps every fit's arithmetic in one order, whatever the machine. Set
# before anything loads numpy; a value already in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _row_limit(text: str) -> int:
    """--limit's value: a whole number of rows, 0 or more (argparse exits 2 otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} rows: the limit must be 0 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=ROOT / DEFAULT_CONFIG_NAME,
        help=f"config file (default: {DEFAULT_CONFIG_NAME} beside pipeline.py)",
    )
    # --config may also follow the command (run --config X); given there, it wins.
    after_command = argparse.ArgumentParser(add_help=False)
    after_command.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="as above")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **options: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[after_command], **options)

    run = command("run", help="build, validate and publish the warehouse")
    run.add_argument(
        "--select",
        "-s",
        nargs="+",
        metavar="SELECTOR",
        help="models to build: name, +name (with ancestors), name+ (with descendants), a layer",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="print only errors and the summary")
    run.add_argument(
        "--reset-history",
        action="store_true",
        help="start a new segment lineage: ids from 1, no migrations, history from this run",
    )
    run.add_argument(
        "--no-report", action="store_true", help="do not write the HTML report after publishing"
    )
    run.add_argument(
        "--engine",
        choices=ENGINES,
        help="build with this engine instead of warehouse.engine (duckdb, or spark: [spark])",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild even when no input, model or config changed since the last build",
    )

    report = command("report", help="write the HTML report of the published warehouse")
    report.add_argument(
        "--output",
        type=Path,
        help=f"default: {api.REPORT_NAME} beside the warehouse",
    )

    listing = command("list", help="list the models in build order")
    listing.add_argument("--select", "-s", nargs="+", metavar="SELECTOR")

    compile_ = command(
        "compile", help="print a SQL model as it runs, its column-set macros written out"
    )
    compile_.add_argument("model", help="a SQL model, e.g. stg_customers_checked")

    docs = command("docs", help="write lineage docs and a manifest of every model")
    docs.add_argument("--output", type=Path, help="folder (default: warehouse/docs)")

    export = command("export", help="write the marts as files, atomically")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    export.add_argument("--output", type=Path, help="folder (default: warehouse/exports/<format>)")
    export.add_argument(
        "--audiences",
        action="store_true",
        help="write each audience's target customers as CSV, and a manifest "
        "(default folder: warehouse/exports/audiences)",
    )

    generate = command(
        "generate",
        help="write seeded Mall-shaped customers (or Online-Retail-shaped order lines) and a "
        "config for them into a folder",
    )
    size = generate.add_mutually_exclusive_group(required=True)
    size.add_argument("--customers", type=int, help="customer rows, Mall-shaped")
    size.add_argument(
        "--lines", type=int, help="order lines, Online-Retail-shaped (the example's config)"
    )
    generate.add_argument("--output", type=Path, required=True, help="a new or empty folder")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument(
        "--dirty-rate", type=float, default=0.0, help="share of rows with defects (0..0.5)"
    )

    show = command("show", help="print rows of a published table")
    show.add_argument("table", help="layer.table, e.g. marts.eda_profile")
    show.add_argument("--limit", type=_row_limit, default=20, help="rows to print (0 or more)")
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
    refresh = api.run(
        ROOT,
        args.config,
        console,
        selectors=args.select,
        engine=args.engine,
        full_refresh=args.full_refresh,
        reset_history=args.reset_history,
    )
    if refresh.noop is not None:
        noop = refresh.noop
        for warning in noop.warnings:
            console.error(warning)
        console.summary(
            f"Nothing changed since run {noop.built_by}: recorded no-op run {noop.run_id} "
            f"in {noop.seconds:.2f}s (--full-refresh rebuilds anyway)."
        )
        return 0
    assert refresh.result is not None
    return _summarise(args, refresh.config, console, refresh.result)


def _summarise(
    args: argparse.Namespace, config: Config, console: Console, result: RunResult
) -> int:
    passed, warned, failed = result.expectation_counts()
    counts = (
        f"{result.count('success')} models OK, {result.count('error')} failed, "
        f"{result.count('failed_expectations')} failed their expectations, "
        f"{result.count('skipped')} skipped; "
        f"{result.rows_rejected} rows rejected; "
        f"expectations {passed} passed, {warned} warned, {failed} failed"
    )
    for table, row in result.reconciliation.items():
        console.info(f"Reconciliation {table}: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    if result.status == "success" and not args.no_report:
        _write_report(config, None, console)
    if result.status == "success":
        console.summary(
            f"Done in {_wall_seconds():.2f}s (build {result.seconds:.2f}s). {counts}. "
            f"Published {config.warehouse_path} (run {result.run_id})."
        )
    else:
        console.error(f"Error: {result.message}")
        console.error(
            f"Failed in {_wall_seconds():.2f}s (build {result.seconds:.2f}s). {counts}. "
            f"Run {result.run_id}."
        )
    return result.exit_code


def _wall_seconds() -> float:
    """Seconds since this command started. Not the process's start time in /proc: a process
    started by a wrapper that execs it (timeout, a launcher, `sh -c '…; exec …'`) carries the
    wrapper's start, and the time it spent before."""
    return time.monotonic() - STARTED


def _write_report(config: Config, output: Path | None, console: Console) -> int:
    started = time.perf_counter()
    written = api.write_report(config, output)
    console.info(f"Report: {written} (written in {time.perf_counter() - started:.2f}s)")
    return 0


def _report(args: argparse.Namespace, console: Console) -> int:
    return _write_report(api.published_config(args.config), args.output, console)


def _docs(args: argparse.Namespace, console: Console) -> int:
    page = api.write_docs(ROOT, args.config, args.output)
    console.summary(f"Docs: {page} (manifest: {page.with_name('manifest.json')})")
    return 0


def _export(args: argparse.Namespace, console: Console) -> int:
    if args.audiences:
        written = api.export_audiences(args.config, args.output)
        what = f"{len(written) - 1} audiences and their manifest"
    else:
        written = api.export(args.config, args.format, args.output)
        what = f"{len(written)} tables"
    for path in written:
        console.info(f"Wrote {path}")
    directory = written[0].parent if written else args.output
    console.summary(f"Exported {what} to {directory}")
    return 0


def _generate(args: argparse.Namespace, console: Console) -> int:
    with held_back():
        from benchmarks.generate import workspace
        from benchmarks.generate_lines import lines_workspace

    option, count = (
        ("--lines", args.lines) if args.lines is not None else ("--customers", args.customers)
    )
    if count < 1 or not 0 <= args.dirty_rate <= 0.5:
        console.error(f"{option} must be at least 1 and --dirty-rate between 0 and 0.5")
        return 2
    if args.output.exists() and any(args.output.iterdir()):
        console.error(f"{args.output} is not empty; generate into a new folder")
        return 2
    if args.lines is not None:
        made = lines_workspace(args.output, args.lines, args.seed, args.dirty_rate)
    else:
        made = workspace(args.config, args.output, args.customers, args.seed, args.dirty_rate)
    console.summary(
        f"Wrote {made.raw_rows} rows in {len(made.files)} file(s) to {args.output / 'raw'}; "
        f"run them with: python pipeline.py --config {args.output / 'pipeline.toml'} run"
    )
    return 0


def _list(args: argparse.Namespace, console: Console) -> int:
    for model in api.list_models(ROOT, args.config, args.select):
        inputs = ", ".join(model.inputs) or "-"
        console.info(f"{model.table:<45} {model.kind:<7} <- {inputs}")
    return 0


def _compile(args: argparse.Namespace, console: Console) -> int:
    console.info(api.compile_model(ROOT, args.config, args.model))
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    _print_frame(api.show(args.config, args.table, args.limit), console)
    return 0


def _print_frame(frame: pd.DataFrame, console: Console) -> None:
    import pandas as pd  # loaded already, by api.show (its only caller)

    with pd.option_context("display.width", 160, "display.max_columns", 30):
        console.info(frame.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(quiet=getattr(args, "quiet", False))
    handlers = {
        "run": _run,
        "list": _list,
        "compile": _compile,
        "show": _show,
        "report": _report,
        "docs": _docs,
        "export": _export,
        "generate": _generate,
    }
    try:
        return handlers[args.command](args, console)
    except PipelineError as exc:
        console.error(f"Error: {exc}")
        return exc.exit_code


def _exit(code: int, exit_handlers: bool = True) -> NoReturn:
    """Exit without tearing down every imported module one by one.

    With scikit-learn, SciPy and pandas loaded that teardown alone takes about 0.4 s, a tenth
    of a small refresh, and holds nothing of ours: exit handlers still run (unless told not to)
    and output is flushed.
    """
    if exit_handlers:
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`| head`) is not an error
            stream.flush()
    os._exit(code)


def _main_for_shell() -> int:
    stop_on_sigterm()
    try:
        return main()
    except BrokenPipeError:
        # The reader went away (`pipeline.py list | head`): stop quietly, as `ls | head` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (KeyboardInterrupt, Exception) as exc:
        if not is_interrupt(exc):
            raise
        # Exit now: a model building in a worker thread is not waited for (nothing it writes
        # is published), and a traceback says nothing a person pressing Ctrl-C needs. Nor are
        # the exit handlers run: multiprocessing's would join the forked fit workers, and a model
        # thread may be starting some just then, whose work its own handlers already cut off, so
        # the join would never return. The workers die with this process (PR_SET_PDEATHSIG); the
        # validation worker was killed and the build file discarded on the way out.
        code = exit_code()
        stopped = "Stopped by SIGTERM." if code == TERMINATED_EXIT else "Interrupted."
        print(stopped, file=sys.stderr, flush=True)
        _exit(code, exit_handlers=False)


if __name__ == "__main__":
    _exit(_main_for_shell())
