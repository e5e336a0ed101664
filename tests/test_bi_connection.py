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


REFLECTION = textwrap.dedent(
    """
    import json, sys
    import sqlalchemy as sa

    engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)
    inspector = sa.inspect(engine)
    columns = inspector.get_columns("dim_segments", schema="marts")
    print(json.dumps({
        "tables": inspector.get_table_names(schema="marts"),
        "columns": {c["name"]: c.get("comment") for c in columns},
        "table_comment": inspector.get_table_comment("dim_segments", schema="marts")["text"],
    }))
    """
)


def test_superset_reflects_tables_columns_and_descriptions(built_sample: ProjectCopy) -> None:
    """Superset adds a table by reflecting it (SQLAlchemy's inspector), in its own process."""
    url = f"duckdb:///{built_sample.warehouse}?access_mode=read_only"
    done = subprocess.run(
        [sys.executable, "-c", REFLECTION, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    marts = built_sample.query(
        "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
    )
    assert sorted(found["tables"]) == [name for (name,) in marts]
    described = dict(
        built_sample.query(
            "select column_name, comment from duckdb_columns() where schema_name = 'marts' "
            "and table_name = 'dim_segments'"
        )
    )
    assert found["columns"] == described and all(described.values())
    assert (
        found["table_comment"]
        == built_sample.query(
            "select comment from duckdb_tables() where schema_name = 'marts' "
            "and table_name = 'dim_segments'"
        )[0][0]
    )


POOLS = textwrap.dedent(
    """
    import json, subprocess, sys
    import sqlalchemy as sa

    url, pool, command = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    # SQLAlchemy's default pool keeps connections; NullPool opens one per session.
    options = {"poolclass": sa.pool.NullPool} if pool == "none" else {}
    engine = sa.create_engine(url, **options)
    query = sa.text("select max(run_id) from meta.runs")

    def latest():
        with engine.connect() as con:
            return con.execute(query).scalar()

    before = latest()
    subprocess.run(command, check=True, capture_output=True)
    print(json.dumps([before, latest()]))
    """
)


def test_a_new_session_sees_the_latest_publish_without_a_pool(project: ProjectCopy) -> None:
    """The README's setting (poolclass=NullPool) is what makes a refresh visible; a pooled
    connection keeps serving the file it opened."""
    assert project.run("run", "-q", "--no-report").returncode == 0
    url = f"duckdb:///{project.warehouse}?access_mode=read_only"
    refresh = [sys.executable, str(project.root / "pipeline.py"), "run", "-q", "--no-report",
               "--full-refresh"]  # fmt: skip
    seen = {}
    for pool in ("default", "none"):
        (published,) = project.query("select max(run_id) from meta.runs")[0]
        done = subprocess.run(
            [sys.executable, "-c", POOLS, url, pool, json.dumps(refresh)],
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        (newest,) = project.query("select max(run_id) from meta.runs")[0]
        seen[pool] = (json.loads(done.stdout), published, newest)
    (before, after), published, newest = seen["default"]
    assert before == published != newest and after == published  # the pool keeps the old file
    (before, after), published, newest = seen["none"]
    assert before == published != newest and after == newest
