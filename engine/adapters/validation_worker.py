"""Great Expectations in a second process, so validation runs on the other core.

GX takes seconds to import and its pandas metrics hold the GIL; in the builder's process it would
stall every model behind it (and importing it on a thread races other imports). The worker is
started as soon as a run knows it will build — before the builder opens the build or imports any
model — so GX's import overlaps the whole build. It validates each table it is sent (an Arrow
file of the columns its suite reads, which it memory-maps) and sends the results back. The builder
kills it when the run is over (every result taken, or the run failed), and it exits by itself
when the builder has died.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd  # imported before the fork, so the worker starts with it loaded
import pyarrow as pa

from engine.checks.expectations import ExpectationResult, Suite
from engine.errors import ProjectError
from engine.refresh import interrupts
from engine.refresh.interrupts import held_back
from engine.refresh.memory import objects_frozen, release_unused

PARENT_CHECK_SECONDS = 1.0
SPOOL_PREFIX = ".validation-"  # a spool folder is .validation-<pid>-<random>


def remove_dead_spools(folder: Path) -> list[Path]:
    """Spool folders in ``folder`` whose worker's parent is gone (killed, say)."""
    removed = []
    for spool in sorted(folder.glob(f"{SPOOL_PREFIX}*")):
        if spool.is_dir() and not _owner_alive(spool):
            shutil.rmtree(spool, ignore_errors=True)
            removed.append(spool)
    return removed


def _owner_alive(spool: Path) -> bool:
    try:
        pid = int(spool.name.removeprefix(SPOOL_PREFIX).split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _spool(table: pa.Table, folder: Path, name: str) -> str:
    """Write the table as an Arrow IPC file for the worker to memory-map.

    A file rather than bytes through the queue: pickled bytes cost the builder two extra copies
    of a 10M-row table while it is sent.
    """
    path = folder / name
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return str(path)


def _unspool(path: str) -> pd.DataFrame:
    with pa.memory_map(path) as source:
        frame = pa.ipc.open_file(source).read_all().to_pandas(split_blocks=True)
    os.remove(path)
    return frame


def _serve(requests: Any, responses: Any, parent: int) -> None:
    # Ctrl-C reaches every process of the command; stopping is the builder's call (it kills
    # this worker), and a traceback from here would only clutter the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # GX imports SQLAlchemy and pyspark when they are installed, for data sources this worker
    # never uses (a third of a second; and pyspark's Spark Connect check exits the process
    # when it takes a notebook or `python -c` for its own doctest run). A None entry makes
    # each import fail the way "not installed" does.
    for unused in ("sqlalchemy", "pyspark"):
        sys.modules.setdefault(unused, None)  # type: ignore[arg-type]
    from engine.checks.expectations import Validator

    # GX's import makes objects that live as long as the worker: collecting while it runs is
    # wasted, and once frozen they are not walked again between validations.
    gc.disable()
    validator = Validator()
    gc.freeze()
    gc.enable()
    while True:
        try:
            request = requests.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:  # the builder died (killed, say): nothing to serve
                return
            continue
        table, path, document, parameters, data, schema = request
        frame, columns = _unspool(data), _unspool(schema)
        try:
            suite = Suite(table, Path(path), document)
            outcomes = validator.validate(suite, frame, parameters, columns)
            responses.put((table, [asdict(o) for o in outcomes], None))
        except ProjectError as exc:
            responses.put((table, [], str(exc)))
        except Exception as exc:  # GX's own failure: the run fails naming the suite, not a crash
            responses.put((table, [], f"{path}: Great Expectations failed: {exc}"))
        del frame, columns
        release_unused()


def _start_method() -> str:
    # fork hands the worker this process's imports (pandas and pyarrow: a third of a second of
    # the other core's time). It is started before any model runs or the build is opened, and
    # it never calls into DuckDB (whose no-op check ran already). macOS and Windows libraries are
    # not fork-safe, so they spawn.
    return "fork" if sys.platform == "linux" else "spawn"


class ValidationService:
    """The GX worker, started now; ``close`` it (or use ``with``) when the run is over."""

    def __init__(self, spool_beside: Path) -> None:
        """``spool_beside``: tables travel to the worker as files in a folder made here."""
        context = multiprocessing.get_context(_start_method())
        self._requests = context.Queue()
        self._responses = context.Queue()
        self._outstanding = 0
        self._submitted = 0
        # On the warehouse's disk, not a RAM-backed /tmp that would hide what they cost.
        spool_beside.mkdir(parents=True, exist_ok=True)
        self._spool_folder = Path(
            tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=spool_beside)
        )
        self._process = context.Process(
            target=_serve,
            args=(self._requests, self._responses, os.getpid()),
            name="gx-validation",
            daemon=True,
        )
        # Frozen while the worker lives: it inherits them frozen and never walks them, and this
        # process's own full collections during the run skip them too.
        self._frozen = contextlib.ExitStack()
        self._frozen.enter_context(objects_frozen())
        try:
            # Forking runs the at-fork hooks of logging and others in this thread. Ctrl-C inside
            # one is swallowed as "unraisable", and inside logging's it also leaves the logging
            # lock held: the run went on, and later hung in the first getLogger.
            with held_back():
                self._process.start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ValidationService:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(
        self, suite: Suite, table: pa.Table, schema: pa.Table, parameters: dict[str, Any]
    ) -> None:
        """Validate ``table`` against ``suite``; ``parameters`` fill the suite's $PARAMETERs.

        ``table`` may hold just the columns the data expectations read; ``schema`` (zero rows)
        has every column, for the expectations about columns.
        """
        self._requests.put(
            (
                suite.table,
                str(suite.path),
                suite.document,
                parameters,
                _spool(table, self._spool_folder, f"{self._submitted}.rows.arrow"),
                _spool(schema, self._spool_folder, f"{self._submitted}.schema.arrow"),
            )
        )
        self._outstanding += 1
        self._submitted += 1

    def _receive(self, block: bool) -> tuple[str, list[ExpectationResult]]:
        while True:
            try:
                table, outcomes, error = self._responses.get(
                    block=block, timeout=PARENT_CHECK_SECONDS if block else None
                )
                break
            except queue.Empty:
                self._check_alive()
                if not block:
                    raise
        self._outstanding -= 1
        if error:
            raise ProjectError(error)
        return table, [ExpectationResult(**o) for o in outcomes]

    def _check_alive(self) -> None:
        """Raise if the worker died with work outstanding: none of it will ever come back."""
        if self._process.is_alive():
            return
        code = self._process.exitcode
        if code is not None and -code in (signal.SIGINT, signal.SIGTERM):
            raise interrupts.stopped_with(-code)
        how = f"exit code {code}"
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
            if -code == signal.SIGKILL:
                how += (
                    ", which is what the kernel does when memory runs out: lower "
                    "warehouse.serial_validation_rows (big tables are then validated while "
                    "nothing else is built) or warehouse.memory_limit (DuckDB's share), or give "
                    "the machine more memory"
                )
        raise ProjectError(
            f"the validation worker stopped unexpectedly ({how}); the warehouse is unchanged"
        ) from None

    def ready(self) -> list[tuple[str, list[ExpectationResult]]]:
        """Results that have arrived, without waiting."""
        found = []
        while self._outstanding:
            try:
                found.append(self._receive(block=False))
            except queue.Empty:
                break
        return found

    def wait_all(self) -> list[tuple[str, list[ExpectationResult]]]:
        return [self._receive(block=True) for _ in range(self._outstanding)]

    def close(self) -> None:
        """Stop the worker at once: killed, not waited for (it may still be importing GX).

        A run that succeeded has taken every result by then; one that failed or was interrupted
        (Ctrl-C) has no use for validations still due.
        """
        if self._process.is_alive():
            self._process.kill()
        if self._process.pid is not None:  # not started when Ctrl-C came during the fork
            self._process.join()
        # Requests the worker never read may still fill the pipe; without this, the exit
        # handlers would wait for a reader that is gone to take them, forever.
        self._requests.cancel_join_thread()
        self._frozen.close()
        shutil.rmtree(self._spool_folder, ignore_errors=True)
