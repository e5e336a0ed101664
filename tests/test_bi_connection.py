"""A BI client the way Superset connects — SQLAlchemy with duckdb_engine, in its own process —
queries the marts in a loop while two refreshes run: no query fails, and new data appears."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from conftest import ProjectCopy

CLIENT = textwrap.dedent(
    """
    import json, os, sys, time
    import sqlalchemy as sa

    url, stop_file = sys.argv[1], sys.argv[2]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)  # a new connection per query
    seen, errors, queries = [], [], 0
    deadline = time.monotonic() + 240
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        try:
            with engine.connect() as con:
                customers = con.execute(
                    sa.text("select sum(customers) from marts.dim_segments")
                ).scalar()
                con.execute(sa.text("select * from marts.segment_explanations")).fetchall()
                con.execute(sa.text("select * from marts.ab_experiment_summary")).fetchall()
            if not seen or seen[-1] != customers:
                seen.append(int(customers))
            queries += 1
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.02)
    print(json.dumps({"seen": seen, "errors": errors, "queries": queries}))
    """
)


def test_sqlalchemy_client_keeps_working_through_two_refreshes(project: ProjectCopy) -> None:
    assert project.run("run", "-q", "--no-report").returncode == 0
    stop_file = project.root / "stop-client"
    url = f"duckdb:///{project.warehouse}?access_mode=read_only"
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, url, str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    first = project.run("run", "-q", "--no-report", "--full-refresh")
    project.write_csv(
        "late.csv",
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n201,Female,33,70,70\n",
    )
    second = project.run("run", "-q", "--no-report")
    time.sleep(1.0)
    stop_file.touch()
    out, err = client.communicate(timeout=60)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert client.returncode == 0, err
    report = json.loads(out)
    assert report["errors"] == [], report["errors"][:3]
    assert report["queries"] > 20
    assert report["seen"] == [200, 201]
