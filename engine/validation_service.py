"""Great Expectations in a second process, so validation runs on the other core.

GX takes seconds to import and its pandas metrics hold the GIL; in the builder's process it would
stall every model behind it (and importing it on a thread races other imports). Here a spawned
worker imports GX while the first models build, then validates each table it is sent (Arrow IPC
bytes of the columns its suite reads) and sends the results back. The worker exits when the
builder asks it to, or by itself when the builder has died.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.errors import ProjectError
from engine.quality import ExpectationResult, Suite

PARENT_CHECK_SECONDS = 1.0


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _serve(parameters: dict[str, Any], requests: Any, responses: Any, parent: int) -> None:
    from engine.quality import Validator

    validator = Validator(parameters)
    while True:
        try:
            request = requests.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:  # the builder died (killed, say): nothing to serve
                return
            continue
        if request is None:
            return
        table, path, document, data = request
        frame = pa.ipc.open_stream(data).read_all().to_pandas()
        try:
            outcomes = validator.validate(Suite(table, Path(path), document), frame)
            responses.put((table, [asdict(o) for o in outcomes], None))
        except ProjectError as exc:
            responses.put((table, [], str(exc)))


class ValidationService:
    def __init__(self, parameters: dict[str, Any]):
        context = multiprocessing.get_context("spawn")
        self._requests = context.Queue()
        self._responses = context.Queue()
        self._outstanding = 0
        self._process = context.Process(
            target=_serve,
            args=(parameters, self._requests, self._responses, os.getpid()),
            name="gx-validation",
            daemon=True,
        )
        self._process.start()

    def submit(self, suite: Suite, table: pa.Table) -> None:
        self._requests.put((suite.table, str(suite.path), suite.document, _to_ipc(table)))
        self._outstanding += 1

    def _receive(self, block: bool) -> tuple[str, list[ExpectationResult]]:
        while True:
            try:
                table, outcomes, error = self._responses.get(
                    block=block, timeout=PARENT_CHECK_SECONDS if block else None
                )
                break
            except queue.Empty:
                if not block:
                    raise
                if not self._process.is_alive():
                    raise ProjectError(
                        "the validation worker stopped unexpectedly "
                        f"(exit code {self._process.exitcode})"
                    ) from None
        self._outstanding -= 1
        if error:
            raise ProjectError(error)
        return table, [ExpectationResult(**o) for o in outcomes]

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
        if self._process.is_alive():
            self._requests.put(None)
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
