"""Publishing: readers are never disturbed, refreshes never collide, a killed run loses nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ProjectCopy

# A BI-like client in its own process. "reconnect" opens a new connection per query, as a
# dashboard refresh does; "hold" keeps one connection for its whole life. (DuckDB shares one
# database instance per file inside a process, so the two must be separate processes.)
READER = textwrap.dedent(
    """
    import json, os, sys, time
    import duckdb

    path, mode, stop_file = sys.argv[1], sys.argv[2], sys.argv[3]
    held = duckdb.connect(path, read_only=True) if mode == "hold" else None
    seen, errors, queries = [], [], 0
    deadline = time.monotonic() + 240  # bounded even if the test never writes the stop file
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        try:
            con = held or duckdb.connect(path, read_only=True)
            count = con.execute("select count(*) from staging.stg_customers").fetchall()[0][0]
            if con is not held:
                con.close()
            if not seen or seen[-1] != count:
                seen.append(count)
            queries += 1
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.01)
    print(json.dumps({"seen": seen, "errors": errors, "queries": queries}))
    """
)


def _start_reader(project: ProjectCopy, mode: str, stop_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", READER, str(project.warehouse), mode, str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _extra_customer(project: ProjectCopy) -> None:
    project.write_csv(
        "late.csv",
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n201,Female,33,70,70\n",
    )


def test_readers_keep_answering_through_two_refreshes(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    stop_file = project.root / "stop-readers"
    readers = {mode: _start_reader(project, mode, stop_file) for mode in ("reconnect", "hold")}
    time.sleep(1.0)
    first = project.run("run", "-q", "--full-refresh")
    _extra_customer(project)
    second = project.run("run", "-q")
    time.sleep(0.5)
    stop_file.touch()
    reports = {}
    for mode, reader in readers.items():
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        reports[mode] = json.loads(out)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for report in reports.values():
        assert report["errors"] == [], report["errors"]
        assert report["queries"] > 50
    # A new connection sees the new data after the publish, and never goes back.
    assert reports["reconnect"]["seen"] == [200, 201]
    # A connection opened before the refreshes keeps answering from the file it opened.
    assert reports["hold"]["seen"] == [200]


def test_second_refresh_stops_at_once_and_changes_nothing(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    first = project.popen("run", "-q", "--full-refresh")
    lock = project.warehouse.with_name(".segments.duckdb.lock")
    deadline = time.monotonic() + 60
    while not list(project.warehouse.parent.glob(".segments.duckdb.build-*")):
        assert time.monotonic() < deadline, "the first refresh never started building"
        time.sleep(0.01)
    second = project.run("run", "-q", "--full-refresh")
    first_still_running = first.poll() is None
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 3
    assert f"another refresh of {project.warehouse} is running (pid {first.pid})" in second.stderr
    assert first_still_running  # the second did not wait for the first to finish
    assert lock.exists()
    assert project.query("select count(*) from meta.runs") == [(2,)]


def _leftovers(project: ProjectCopy) -> list[Path]:
    folder = project.warehouse.parent
    return [*folder.glob(".segments.duckdb.build-*"), *folder.glob(".validation-*")]


def test_sigkill_at_any_moment_leaves_the_old_or_the_new_warehouse(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    _extra_customer(project)  # a run that gets as far as publishing shows 201 customers
    for delay in (0.3, 0.8, 1.3, 1.8, 2.3, 2.8, 3.3, 3.8):
        victim = project.popen("run", "-q")
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        if project.digest() == before:
            # The old warehouse, untouched, and still a working database.
            assert project.query("select count(*) from staging.stg_customers") == [(200,)]
            continue
        # Killed after the atomic rename: the new warehouse must be complete.
        assert project.query("select count(*) from staging.stg_customers") == [(201,)]
        assert project.query("select count(*), min(status) from meta.runs") == [(2, "success")]
        break
    done = project.run("run")
    assert done.returncode == 0, done.stderr
    assert _leftovers(project) == []
    assert project.query("select count(*) from staging.stg_customers") == [(201,)]


def _latest(project: ProjectCopy) -> dict:
    return json.loads((project.root / "warehouse/run_results/latest.json").read_text())


def test_sigterm_stops_a_refresh_as_ctrl_c_does_and_records_it(project: ProjectCopy) -> None:
    """systemd, cron and Kubernetes stop a job with SIGTERM, to every process of the job."""
    import psutil

    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    first = _latest(project)["run_id"]
    stopped = 0
    for delay in (1.5, 3.0):
        victim = project.popen("run", "-q", "--full-refresh")
        time.sleep(delay)
        children = psutil.Process(victim.pid).children(recursive=True)
        for process in [psutil.Process(victim.pid), *children]:
            process.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=30)
        if victim.returncode == 0:
            continue  # finished first on a fast machine
        stopped += 1
        assert victim.returncode == 143, err
        assert "Stopped by SIGTERM." in err and "Traceback" not in err, err
        latest = _latest(project)
        if latest["run_id"] != first:  # the run had begun: its record says how it ended
            assert (latest["status"], latest["exit_code"]) == ("interrupted", 143), latest
            assert latest["message"] == "stopped by SIGTERM" and latest["published"] is False
        assert project.digest() == before
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {alive}"
    assert stopped >= 1
    assert _leftovers(project) == []  # the build file went with the run
    assert project.run("run", "-q").returncode == 0


def _sigint_as_in_a_terminal() -> None:
    # A shell starts background jobs with SIGINT ignored, and the ignoring is inherited: the
    # pipeline would then rightly ignore Ctrl-C. Give it the disposition a terminal gives.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_at_any_moment_stops_promptly_and_leaves_the_warehouse_as_it_was(
    project: ProjectCopy,
) -> None:
    """Whatever is running (imports, SQL, a Python model, forked fit workers, GX).

    The signal goes to the whole process group, as a terminal sends it.
    """
    import psutil

    assert project.run("run", "-q").returncode == 0
    before, runs = project.digest(), 1
    interrupted = 0
    for delay in (0.6, 1.2, 1.8, 2.4, 3.0, 3.6):
        victim = subprocess.Popen(
            [sys.executable, str(project.root / "pipeline.py"), "run", "-q", "--full-refresh"],
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_sigint_as_in_a_terminal,
        )
        time.sleep(delay)
        children = psutil.Process(victim.pid).children(recursive=True)
        os.killpg(victim.pid, signal.SIGINT)
        _, err = victim.communicate(timeout=30)  # a hang on the way out fails here
        if victim.returncode == 0:
            break  # the refresh finished first: later delays would too
        interrupted += 1
        assert victim.returncode == 130, err
        assert "Interrupted." in err and "Traceback" not in err, err
        assert _latest(project)["status"] != "running"  # every way a run ends is recorded
        if project.digest() != before:
            # Interrupted after the atomic rename: the new warehouse must be complete.
            runs += 1
            assert project.query("select count(*), min(status) from meta.runs") == [
                (runs, "success")
            ]
            before = project.digest()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {alive}"
    assert interrupted >= 3
    done = project.run("run", "--full-refresh")
    assert done.returncode == 0, done.stderr
    assert _leftovers(project) == []


def test_next_run_removes_what_a_killed_run_left(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    stale = project.warehouse.with_name(".segments.duckdb.build-19990101T000000Z-dead00")
    stale.write_bytes(b"half a database")
    stale.with_name(stale.name + ".wal").write_bytes(b"half a log")
    # A validation spool of a process that is gone, and one of a process still running.
    dead_spool = project.warehouse.with_name(".validation-999999999-x1")
    (dead_spool / "0.rows.arrow").parent.mkdir()
    (dead_spool / "0.rows.arrow").write_bytes(b"rows")
    live_spool = project.warehouse.with_name(f".validation-{os.getpid()}-x2")
    live_spool.mkdir()
    done = project.run("run", "--full-refresh")
    assert done.returncode == 0, done.stderr
    assert "left behind by an interrupted run" in done.stdout
    assert _leftovers(project) == [live_spool]


def test_a_damaged_warehouse_stops_every_command_clearly_and_is_left_alone(
    project: ProjectCopy,
) -> None:
    """A published file cut short (a full disk, a bad copy): no traceback, exit 2, the file
    untouched for whoever restores it."""
    assert project.run("run", "-q").returncode == 0
    size = project.warehouse.stat().st_size
    with project.warehouse.open("r+b") as damaged:
        damaged.truncate(size // 2)
    before = project.digest()
    for command in (("run", "-q"), ("show", "marts.dim_segments"), ("report",), ("docs",)):
        done = project.run(*command)
        assert done.returncode == 2, (command, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert (
            f"{project.warehouse}: the published warehouse cannot be read (IO Error" in done.stderr
        ), done.stderr
        assert "Restore it from a backup, or move it aside" in done.stderr
    assert project.digest() == before and _leftovers(project) == []
    assert _latest(project)["exit_code"] == 2


def test_a_deleted_warehouse_is_rebuilt_and_the_run_says_so(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    project.warehouse.unlink()
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    assert "is gone, though an earlier run published it: building a new warehouse" in done.stderr
    assert project.query("select count(*) from meta.runs") == [(1,)]


def test_a_landing_file_still_being_written_is_not_half_loaded(project: ProjectCopy) -> None:
    """A file that grows while the refresh reads it (an export still being copied in): the run
    stops naming it, and publishes nothing."""
    import threading

    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    rows = "".join(f"{1000 + i},Female,30,60,50\n" for i in range(50_000))
    landing = project.write_csv(
        "growing.csv", "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n" + rows
    )
    stop = threading.Event()

    def keep_writing() -> None:
        number = 100_000
        with landing.open("a") as out:
            while not stop.is_set():
                out.write(f"{number},Male,40,70,60\n")
                out.flush()
                number += 1
                time.sleep(0.002)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        done = project.run("run", "-q")
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 2, done.stderr
    assert f"{landing}: the landing file changed while it was loaded" in done.stderr, done.stderr
    assert "it is still being written or copied in" in done.stderr
    assert project.digest() == before and _leftovers(project) == []


def test_no_room_to_write_stops_clearly_and_keeps_the_warehouse(project: ProjectCopy) -> None:
    """The build cannot grow past a file-size limit (ulimit -f, what a full disk or a quota does
    to a write): a message naming the folder, exit 4, the published file and history intact, the
    partial build removed."""
    import resource

    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    limit = project.warehouse.stat().st_size // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, str(project.root / "pipeline.py"), "run", "-q", "--full-refresh"],
        cwd=project.root,
        capture_output=True,
        text=True,
        preexec_fn=limited,
        timeout=300,
    )
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{project.warehouse.parent}: no room to write the build (File too large)" in done.stderr
    assert "Nothing was published; the warehouse is unchanged." in done.stderr
    assert project.digest() == before and _leftovers(project) == []
    assert project.query("select count(*) from meta.runs") == [(1,)]
    assert (_latest(project)["status"], _latest(project)["exit_code"]) == ("error", 4)


def _without_root_override() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (prctl PR_CAPBSET_DROP) before exec, so
    root is held to the permission bits as any other user is."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize(
    ("locked", "key"),
    [("warehouse", "warehouse.path"), ("warehouse/run_results", "warehouse.run_results_dir")],
)
def test_a_folder_without_write_permission_stops_naming_it(
    project: ProjectCopy, locked: str, key: str
) -> None:
    assert project.run("run", "-q", "--no-report").returncode == 0
    before = project.digest()
    folder = project.root / locked
    folder.chmod(0o555)
    try:
        done = subprocess.run(
            [sys.executable, str(project.root / "pipeline.py"), "run", "-q", "--full-refresh"],
            cwd=project.root,
            capture_output=True,
            text=True,
            preexec_fn=_without_root_override if os.geteuid() == 0 else None,
            timeout=300,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{folder}: the pipeline cannot write here (Permission denied)" in done.stderr, (
        done.stderr
    )
    assert f"or set {key} to one it can write" in done.stderr
    assert project.digest() == before and _leftovers(project) == []
    if locked == "warehouse":  # the run result still lands in its own, writable folder
        assert (_latest(project)["status"], _latest(project)["exit_code"]) == ("error", 2)
    else:
        assert f"could not write the run result to {folder}" in done.stderr


def test_a_full_disk_stops_clearly_and_keeps_the_warehouse(project: ProjectCopy) -> None:
    """A real full disk: the warehouse folder is a tmpfs with room for the published file and
    not for a second copy. Mounting needs root, as the test machines run the suite."""
    assert project.run("run", "-q", "--no-report").returncode == 0
    disk = project.root / "disk"
    disk.mkdir()
    size = project.warehouse.stat().st_size * 3 // 2
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs, as root: {mounted.stderr}"
    try:
        shutil.copy2(project.warehouse, disk / "segments.duckdb")
        project.edit_config('path = "warehouse/segments.duckdb"', 'path = "disk/segments.duckdb"')
        before = hashlib.sha256((disk / "segments.duckdb").read_bytes()).hexdigest()
        done = project.run("run", "-q", "--full-refresh")
        after = hashlib.sha256((disk / "segments.duckdb").read_bytes()).hexdigest()
        leftovers = sorted(p.name for p in disk.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{disk}: no room to write the build (No space left on device)" in done.stderr, (
        done.stderr
    )
    assert "Nothing was published; the warehouse is unchanged." in done.stderr
    assert after == before
    assert leftovers == [".segments.duckdb.lock", "segments.duckdb"], leftovers
    assert (_latest(project)["status"], _latest(project)["exit_code"]) == ("error", 4)


def test_every_way_a_write_finds_no_room_is_recognised() -> None:
    import errno

    from engine.errors import no_room_to_write

    assert no_room_to_write(OSError(errno.ENOSPC, "x")) == os.strerror(errno.ENOSPC)
    assert no_room_to_write(OSError(errno.EDQUOT, "x")) == os.strerror(errno.EDQUOT)
    duckdb_says = 'IO Error: Could not write file "w.wal": No space left on device'
    assert no_room_to_write(RuntimeError(duckdb_says)) == "No space left on device"
    assert no_room_to_write(OSError(errno.EACCES, "x")) is None
    assert no_room_to_write(RuntimeError("Binder Error: no such column")) is None


def test_duckdb_out_of_memory_names_the_config_key(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    project.edit_config('memory_limit = "1GB"', 'memory_limit = "2MB"')
    done = project.run("run", "-q", "--full-refresh")
    assert done.returncode == 4, done.stderr
    assert "DuckDB ran out of memory (Out of Memory Error:" in done.stderr, done.stderr
    assert "raise warehouse.memory_limit in the config" in done.stderr
    assert "SET memory_limit" not in done.stderr  # DuckDB's advice for its own SQL, not ours
    assert project.digest() == before and _leftovers(project) == []
