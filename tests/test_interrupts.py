"""Ctrl-C during imports and forks: held back, never lost, raised once the step is over.

Each case runs in its own interpreter, which sends itself SIGINT at the exact moment the case
is about, so none of it depends on timing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO

# An at-fork hook that presses Ctrl-C while it runs, as a signal landing during a fork would.
CTRL_C_DURING_FORKS = """
import os, signal

def press_ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(100_000))

os.register_at_fork(after_in_parent=press_ctrl_c)
"""


# A shell starts background jobs (a CI runner's, say) with SIGINT ignored, and Python then
# leaves it ignored; each case installs Python's own handler, as in a terminal.
AS_IN_A_TERMINAL = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AS_IN_A_TERMINAL + textwrap.dedent(script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ctrl_c_inside_an_import_lets_it_finish_then_interrupts(tmp_path: Path) -> None:
    (tmp_path / "slow_module.py").write_text(
        "import os, signal\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "total = sum(range(100_000))  # bytecode runs here: the handler fires mid-import\n"
        "finished = True\n"
    )
    done = _run(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from engine.refresh.interrupts import held_back
        try:
            with held_back():
                import slow_module
        except KeyboardInterrupt:
            print("interrupted after the import:", sys.modules["slow_module"].finished)
        """,
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted after the import: True"


def test_ctrl_c_while_a_python_model_imports_stops_the_run_not_the_model(tmp_path: Path) -> None:
    # A C extension's initialisation (scipy's pybind11 modules) reports a KeyboardInterrupt
    # raised inside it as "ImportError: initialization failed": without the hold, the run
    # counted a failed model and exited 4 instead of stopping with 130.
    (tmp_path / "imports_an_extension.py").write_text(
        "import os, signal\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    sum(range(100_000))\n"
        "except KeyboardInterrupt:\n"
        "    raise ImportError('initialization failed') from None\n"
        "def model():\n"
        "    return None\n"
    )
    done = _run(
        """
        import sys
        from pathlib import Path
        from engine.project.discovery import Model
        from engine.refresh.building import load_python_model

        model = Model("imports_an_extension", "ml", "python", Path(sys.argv[1]), ())
        try:
            load_python_model(model)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted after the import")
        """,
        str(tmp_path / "imports_an_extension.py"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted after the import"


AT_FORK_CASE = """
from engine.refresh.interrupts import held_back

try:
    with held_back():
        child = os.fork()
        if child == 0:
            os._exit(0)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
os.waitpid(child, 0)
"""

VALIDATION_SERVICE_CASE = """
import multiprocessing, sys
from pathlib import Path
from engine.adapters.validation_worker import ValidationService

try:
    ValidationService(spool_beside=Path(sys.argv[1]))
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted; children left:", len(multiprocessing.active_children()))
"""


def test_ctrl_c_inside_an_at_fork_hook_is_not_swallowed() -> None:
    # CPython reports an exception raised in an at-fork hook as "unraisable" and drops it; in
    # logging's hook that also left the logging lock held.
    done = _run(CTRL_C_DURING_FORKS + AT_FORK_CASE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted"
    assert "Exception ignored" not in done.stderr


def test_a_validation_service_interrupted_while_forking_leaves_nothing(tmp_path: Path) -> None:
    done = _run(CTRL_C_DURING_FORKS + VALIDATION_SERVICE_CASE, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted; children left: 0"
    assert list(tmp_path.iterdir()) == []  # its spool folder is gone too


def test_ctrl_c_while_the_command_starts_exits_130_without_a_traceback() -> None:
    # SIGINT arrives while pipeline.py imports its own modules, before main() runs.
    done = _run(
        """
        import os, runpy, signal, sys

        class PressCtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "engine.console":
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        sys.meta_path.insert(0, PressCtrlC())
        sys.argv = ["pipeline.py", "list"]
        runpy.run_path("pipeline.py", run_name="__main__")
        """
    )
    assert done.returncode == 130
    assert done.stderr == "Interrupted.\n"
    assert done.stdout == ""


def test_ctrl_c_inside_a_python_callback_of_duckdb_is_still_ctrl_c() -> None:
    """DuckDB re-raises a KeyboardInterrupt from Python code it calls back as its own error."""
    import duckdb

    from engine.errors import is_interrupt

    con = duckdb.connect()

    def interrupted(_: int) -> int:
        raise KeyboardInterrupt

    def broken(_: int) -> int:
        raise ValueError("not an interrupt")

    con.create_function("interrupted", interrupted, [int], int)
    con.create_function("broken", broken, [int], int)
    with pytest.raises(duckdb.Error) as caught:
        con.execute("select interrupted(1)").fetchall()
    assert is_interrupt(caught.value)
    with pytest.raises(duckdb.Error) as caught:
        con.execute("select broken(1)").fetchall()
    assert not is_interrupt(caught.value)


def test_a_sigterm_whose_interrupt_was_dropped_still_stops_the_run() -> None:
    """Seen in CI: SIGTERM's KeyboardInterrupt raised inside an import lock's weakref callback,
    where CPython only prints exceptions ("Exception ignored in …"). The signal is remembered,
    and the run stops at its next model (and never publishes)."""
    done = _run(
        """
        import gc, os, signal, weakref
        from engine.refresh import interrupts

        interrupts.stop_on_sigterm()

        class Held:
            pass

        def callback(_ref):
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(100_000))  # the handler runs here; its KeyboardInterrupt is dropped

        held = Held()
        ref = weakref.ref(held, callback)
        del held
        gc.collect()
        print("went on")
        try:
            interrupts.stop_if_signalled()
        except KeyboardInterrupt:
            print("stopped", interrupts.exit_code())
        interrupts.forget_signals()
        interrupts.stop_if_signalled()  # a new run starts with no stop requested
        print("a new run goes on")
        """
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" in done.stderr  # CPython did drop the interrupt
    assert done.stdout.split("\n")[:3] == ["went on", "stopped 143", "a new run goes on"]
