"""Twenty BI-like readers query the marts while three refreshes publish beside them."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from conftest import ProjectCopy

READERS = 20
REFRESHES = 3

# One query a dashboard might send, reading three layers at once: within one published run the
# customers staged, the customers in the mart and the members of its segments are the same count.
READER = textwrap.dedent(
    """
    import json, os, sys, time
    import duckdb

    QUERY = '''
        select (select count(*) from staging.stg_customers),
               (select count(*) from marts.dim_customers),
               (select sum(customers) from marts.dim_segments),
               (select run_id from meta.runs order by started_at desc limit 1)
    '''
    path, mode, stop_file = sys.argv[1], sys.argv[2], sys.argv[3]
    held = duckdb.connect(path, read_only=True) if mode == "hold" else None
    answers, errors = [], []
    deadline = time.monotonic() + 300  # bounded even if the test never writes the stop file
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        started = time.monotonic()
        try:
            con = held or duckdb.connect(path, read_only=True)
            row = con.execute(QUERY).fetchone()
            if con is not held:
                con.close()
            answers.append([started, time.monotonic() - started, *row])
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.25)  # a person's or a dashboard's pause between queries
    print(json.dumps({"answers": answers, "errors": errors}))
    """
)


def _start_reader(project: ProjectCopy, mode: str, stop_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", READER, str(project.warehouse), mode, str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _land_customer(project: ProjectCopy, customer_id: int) -> None:
    project.write_csv(
        f"late-{customer_id}.csv",
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
        f"{customer_id},Female,33,70,70\n",
    )


def _idle(seconds: float) -> float:
    start = time.monotonic()
    time.sleep(seconds)
    return start


def test_twenty_readers_through_three_refreshes(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    stop_file = project.root / "stop-readers"
    modes = ["reconnect", "hold"] * (READERS // 2)
    readers = [_start_reader(project, mode, stop_file) for mode in modes]
    time.sleep(3.0)  # every reader started and answering
    idle_from = _idle(4.0)
    windows, results = [], []
    for refresh in range(REFRESHES):
        _land_customer(project, 201 + refresh)
        start = time.monotonic()
        results.append(project.run("run", "-q"))
        windows.append((start, time.monotonic()))
    idle_tail = _idle(2.0)
    stop_file.touch()
    reports = []
    for reader in readers:
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        reports.append(json.loads(out))
    for done in results:
        assert done.returncode == 0, done.stderr

    answers = [answer for report in reports for answer in report["answers"]]
    errors = [error for report in reports for error in report["errors"]]
    assert errors == []
    # Every answer comes from one complete run: its three counts agree.
    assert all(a[2] == a[3] == a[4] for a in answers), [a for a in answers if len(set(a[2:5])) > 1]
    published = {run_id: count for *_, count, _, _, run_id in answers}
    assert sorted(published.values()) == list(range(200, 201 + REFRESHES)), published
    assert all(published[a[5]] == a[2] for a in answers)
    for mode, report in zip(modes, reports, strict=True):
        seen = []
        for answer in report["answers"]:
            if not seen or seen[-1] != answer[2]:
                seen.append(answer[2])
        if mode == "hold":  # a connection keeps the file it opened
            assert seen == [200], seen
        else:  # a new connection sees each publish and never goes back
            assert seen == sorted(seen) and seen[-1] == 200 + REFRESHES, seen

    def median_latency(inside: Callable[[float], bool]) -> float:
        return statistics.median(a[1] for a in answers if inside(a[0]))

    idle = median_latency(lambda t: idle_from <= t < windows[0][0] or idle_tail <= t)
    during = median_latency(lambda t: any(start <= t < end for start, end in windows))
    queries = len(answers)
    print(
        f"\n{READERS} readers, {REFRESHES} refreshes: {queries} queries, 0 failed; median latency "
        f"idle {idle * 1000:.1f} ms, during a refresh {during * 1000:.1f} ms "
        f"({during / idle:.2f}x); refreshes "
        + ", ".join(f"{end - start:.1f} s" for start, end in windows)
    )
    assert during <= 2 * idle, (idle, during)
