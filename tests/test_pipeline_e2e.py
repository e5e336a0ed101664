"""End to end: `python pipeline.py run` as a subprocess, on the sample and on generated CSVs."""

from __future__ import annotations

import json
import random
import re
import time

import pytest
import scipy.stats

from conftest import ProjectCopy

HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"


def test_sample_run_builds_every_layer_and_records_it(project: ProjectCopy) -> None:
    started = time.perf_counter()
    done = project.run("run")
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    models = project.model_count()
    assert f"of {models} OK    staging.stg_customers " in done.stdout
    # The summary's time is the command's own wall time (start-up and report included), not the
    # build's alone; only the exit after the summary is left out.
    said = float(re.search(r"Done in ([0-9.]+)s \(build ([0-9.]+)s\)", done.stdout)[1])
    build = float(re.search(r"\(build ([0-9.]+)s\)", done.stdout)[1])
    report = float(re.search(r"Report: .*report\.html \(written in ([0-9.]+)s\)", done.stdout)[1])
    assert build + report <= said <= wall
    assert said >= wall - 1.5
    assert project.query("select count(*) from staging.stg_customers") == [(200,)]
    assert project.query(
        "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
        "from staging.stg_customers_reconciliation"
    ) == [(200, 200, 0, 0, True)]
    schemas = {r[0] for r in project.query("select distinct schema_name from duckdb_tables()")}
    assert {"config", "raw", "staging", "intermediate", "ml", "marts", "meta"} <= schemas

    (run_id, status, built) = project.query("select run_id, status, models_built from meta.runs")[0]
    assert (status, built) == ("success", models)
    assert project.query("select count(*) from meta.model_runs where run_id = ?", [run_id]) == [
        (models,)
    ]
    failed = project.query("select count(*) from meta.expectation_results where not success")
    assert failed == [(0,)]

    result = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert result["run_id"] == run_id
    assert result["status"] == "success" and result["published"] is True
    assert result["counts"]["models_built"] == models
    assert result["reconciliation"]["staging.stg_customers_reconciliation"]["is_balanced"] is True


def test_history_carries_over_between_refreshes(project: ProjectCopy) -> None:
    assert project.run("run", "--quiet").returncode == 0
    assert project.run("run", "--quiet", "--full-refresh").returncode == 0
    assert project.query("select count(distinct run_id) from meta.runs") == [(2,)]
    assert project.query("select count(distinct run_id) from meta.expectation_results") == [(2,)]
    assert project.query("select count(*) from meta.model_runs") == [(2 * project.model_count(),)]


def test_quiet_prints_only_the_summary(project: ProjectCopy) -> None:
    done = project.run("run", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Done in")


def _dirty_dataset(seed: int) -> tuple[str, str, dict[str, int]]:
    """Two files of sample-like rows with known defects; returns the texts and expected counts."""
    rng = random.Random(seed)
    good = [
        [
            str(i),
            rng.choice(["Male", "Female", "male", " F "]),
            str(rng.randint(18, 70)),
            str(rng.randint(15, 137)),
            str(rng.randint(1, 99)),
        ]
        for i in range(1, 151)
    ]
    defects: list[tuple[list[str], str]] = []
    next_id = 1000
    for kind in ["bad_age", "bad_score_range", "bad_gender", "missing_income"] * 3:
        row = [str(next_id), "Female", "30", "50", "50"]
        next_id += 1
        if kind == "bad_age":
            row[2] = rng.choice(["abc", "3.5", "forty"])
        elif kind == "bad_score_range":
            row[4] = str(rng.choice([0, 101, 500]))
        elif kind == "bad_gender":
            row[1] = rng.choice(["Alien", "X", "unknown"])
        else:
            row[3] = ""
        defects.append((row, kind))
    exact_duplicates = [list(r) for r in rng.sample(good, 5)]
    conflicting = []
    for _ in range(3):
        conflicting.append([str(next_id), "Male", "40", "60", "60"])
        conflicting.append([str(next_id), "Male", "41", "60", "60"])
        next_id += 1

    rows = good + [r for r, _ in defects] + exact_duplicates + conflicting
    rng.shuffle(rows)
    half = len(rows) // 2
    first = "\ufeff" + HEADER + "\r\n" + "\r\n".join(",".join(r) for r in rows[:half]) + "\r\n\r\n"
    # The second export uses other header spellings, another column order and an extra column.
    second_header = "Spending_Score,Genre,Cust_ID,Annual Income,Age,Store"
    second_rows = [f"{r[4]},{r[1]},{r[0]},{r[3]},{r[2]},north" for r in rows[half:]]
    second_rows.insert(3, "1,2,3")  # a ragged row
    second = second_header + "\n" + "\n".join(second_rows) + "\n"
    expected = {
        "raw": len(rows) + 1,
        "staged": len(good),
        "rejected": len(defects) + len(conflicting) + 1,
        "collapsed": len(exact_duplicates),
    }
    return first, second, expected


def test_dirty_and_misheaded_csvs_reconcile_with_every_reason(empty_project: ProjectCopy) -> None:
    first, second, expected = _dirty_dataset(seed=7)
    empty_project.write_csv("export_a.csv", first)
    empty_project.write_csv("export_b.csv", second)
    done = empty_project.run("run")
    assert done.returncode == 0, done.stderr + done.stdout
    counts = empty_project.query(
        "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
        "from staging.stg_customers_reconciliation"
    )
    assert counts == [
        (expected["raw"], expected["staged"], expected["rejected"], expected["collapsed"], True)
    ]
    reasons = dict(
        empty_project.query(
            "select reason_kind, count(*) from ("
            "  select case"
            "    when reason_text like 'malformed row%' then 'ragged'"
            "    when reason_text like '%conflicting%' then 'conflict'"
            "    when reason_text like 'age %' then 'bad_age'"
            "    when reason_text like 'spending_score % is outside%' then 'bad_score_range'"
            "    when reason_text like 'gender %not in rules.accepted.gender' then 'bad_gender'"
            "    when reason_text = 'annual_income_k is missing' then 'missing_income'"
            "  end as reason_kind from staging.stg_customers_rejected"
            ") group by reason_kind"
        )
    )
    assert reasons == {
        "ragged": 1,
        "conflict": 6,
        "bad_age": 3,
        "bad_score_range": 3,
        "bad_gender": 3,
        "missing_income": 3,
    }
    genders = {
        r[0] for r in empty_project.query("select distinct gender from staging.stg_customers")
    }
    assert genders == {"Male", "Female"}
    lines = empty_project.query(
        "select count(*) from staging.stg_customers_rejected where line_number is null"
    )
    assert lines == [(0,)]


def test_row_order_of_the_input_does_not_change_staging(
    empty_project: ProjectCopy, sample_rows: list[list[str]]
) -> None:
    rows = list(sample_rows)
    empty_project.write_csv("a.csv", HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    assert empty_project.run("run", "-q").returncode == 0
    query = "select * exclude (line_number) from staging.stg_customers order by customer_id"
    before = empty_project.query(query)
    random.Random(3).shuffle(rows)
    empty_project.write_csv("a.csv", HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    assert empty_project.run("run", "-q").returncode == 0
    assert empty_project.query(query) == before


def test_missing_required_column_fails_and_publishes_nothing(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    bad = project.write_csv(
        "late_export.csv", "CustomerID,Gender,Age,Annual Income (k$)\n1,Male,3,4\n"
    )
    done = project.run("run")
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert "missing required column 'spending_score'" in done.stderr
    assert project.digest() == before
    result = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert result["status"] == "error" and result["published"] is False


def test_config_typo_fails_naming_the_key(project: ProjectCopy) -> None:
    project.edit_config("[features]", "[feature]")
    done = project.run("run")
    assert done.returncode == 2
    assert "unknown key 'feature'" in done.stderr
    assert not project.warehouse.exists()


# Fails on the 200-row sample.
AT_MOST_TEN_ROWS = {"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 10}}


def _add_expectations(project: ProjectCopy, table: str, *expectations: dict) -> None:
    suite_path = project.root / "expectations" / f"{table}.json"
    suite = json.loads(suite_path.read_text())
    suite["expectations"] += list(expectations)
    suite_path.write_text(json.dumps(suite))


def test_failing_blocking_expectation_leaves_warehouse_byte_identical(
    project: ProjectCopy,
) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    _add_expectations(project, "staging.stg_customers", AT_MOST_TEN_ROWS)
    done = project.run("run")
    assert done.returncode == 1
    assert "FAIL staging.stg_customers expect_table_row_count_to_be_between" in done.stderr
    assert "Nothing was published" in done.stderr
    assert "SKIP" in done.stdout  # everything downstream of the failure is skipped
    assert project.digest() == before
    assert list(project.warehouse.parent.glob(".segments.duckdb.build-*")) == []


def test_big_tables_are_validated_before_the_next_model_starts(project: ProjectCopy) -> None:
    # With every table of 100+ rows validated before the next model, a blocking failure on
    # stg_customers is known before anything reads it: its direct readers are skipped, never
    # built and then discarded.
    project.config.write_text(
        project.config.read_text().replace(
            "[warehouse]\n", "[warehouse]\nserial_validation_rows = 100\n", 1
        )
    )
    _add_expectations(project, "staging.stg_customers", AT_MOST_TEN_ROWS)
    done = project.run("run")
    assert done.returncode == 1
    assert re.search(r"SKIP\s+intermediate\.int_customer_features", done.stdout), done.stdout
    assert re.search(r"SKIP\s+intermediate\.int_feature_scaling", done.stdout), done.stdout


def test_a_column_expectation_sees_every_column_of_the_table(project: ProjectCopy) -> None:
    # Data expectations get only the columns they read; expectations about the columns
    # themselves must still see all of them, so a missing one fails and a present one passes.
    _add_expectations(
        project,
        "ml.customer_segments",
        {"type": "expect_column_to_exist", "kwargs": {"column": "runner_up_segment_name"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "no_such_column"}},
    )
    done = project.run("run")
    assert done.returncode == 1
    failures = re.findall(r"FAIL (ml\.customer_segments .*)", done.stderr)
    assert failures == ["ml.customer_segments no_such_column: expect_column_to_exist"], done.stderr


def test_an_expectation_needing_scipy_stats_runs_in_the_validation_worker(
    project: ProjectCopy,
) -> None:
    # The worker defers importing scipy.stats until an expectation uses it: KL divergence does.
    expected = {"values": ["Male", "Female"], "weights": [0.5, 0.5]}
    _add_expectations(
        project,
        "staging.stg_customers",
        {
            "type": "expect_column_kl_divergence_to_be_less_than",
            "kwargs": {"column": "gender", "partition_object": expected, "threshold": 1.0},
        },
    )
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    shares = project.frame(
        "select gender, count(*) / sum(count(*)) over () as share "
        "from staging.stg_customers group by gender"
    ).set_index("gender")["share"]
    observed = project.query(
        "select observed_value from meta.expectation_results "
        "where expectation_type = 'expect_column_kl_divergence_to_be_less_than'"
    )
    assert len(observed) == 1
    assert float(observed[0][0]) == pytest.approx(
        scipy.stats.entropy(shares[expected["values"]].to_numpy(), expected["weights"])
    )


def test_warning_expectation_does_not_block(project: ProjectCopy) -> None:
    _add_expectations(project, "staging.stg_customers", {**AT_MOST_TEN_ROWS, "severity": "warning"})
    done = project.run("run")
    assert done.returncode == 0, done.stderr
    assert "WARN staging.stg_customers expect_table_row_count_to_be_between" in done.stdout
    warned = project.query(
        "select severity, success, observed_value from meta.expectation_results where not success"
    )
    assert warned == [("warning", False, "200")]


def test_broken_sql_model_fails_naming_the_file(project: ProjectCopy) -> None:
    (project.root / "sql/marts/broken.sql").write_text(
        "select no_such_column from staging.stg_customers"
    )
    done = project.run("run")
    assert done.returncode == 4
    assert "broken.sql" in done.stderr and "no_such_column" in done.stderr
    assert not project.warehouse.exists()


KILL_THE_VALIDATION_WORKER = """
import multiprocessing, os, signal

import pandas as pd


def model(stg_customers):
    # What the kernel's out-of-memory killer would do to the GX worker in the middle of a run.
    for child in multiprocessing.active_children():
        if child.name == "gx-validation":
            os.kill(child.pid, signal.SIGKILL)
            child.join()
    return pd.DataFrame({"killed": [True]})
"""


def test_a_killed_validation_worker_stops_the_run_promptly_and_publishes_nothing(
    project: ProjectCopy,
) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    (project.root / "python_models/kill_validation_worker.py").write_text(
        KILL_THE_VALIDATION_WORKER
    )
    # Before the fix the run never exited: its exit handlers waited for the dead worker to
    # read the requests still in the pipe.
    done = project.run("run", timeout=120)
    assert done.returncode == 4, done.stderr
    assert "the validation worker stopped unexpectedly (killed by SIGKILL" in done.stderr
    # Noticed at the next model boundary, not after every model was built.
    assert "OK    marts.segment_explanations" not in done.stdout
    assert project.digest() == before
    assert list(project.warehouse.parent.glob(".segments.duckdb.build-*")) == []


def test_python_model_error_names_the_file_and_line(project: ProjectCopy) -> None:
    (project.root / "python_models/broken_model.py").write_text(
        "def model(stg_customers):\n    return stg_customers['nope']\n"
    )
    done = project.run("run")
    assert done.returncode == 4
    assert "broken_model.py (line 2): KeyError" in done.stderr


DESCRIBES_A_COLUMN_IT_DOES_NOT_WRITE = """
import pandas as pd

COLUMNS = {"customers": "How many customers", "spend": "What they spent"}


def model(stg_customers):
    return pd.DataFrame({"customers": [len(stg_customers)]})
"""


def test_describing_a_column_not_written_fails_and_publishes_nothing(
    project: ProjectCopy,
) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    (project.root / "python_models/customer_count.py").write_text(
        DESCRIBES_A_COLUMN_IT_DOES_NOT_WRITE
    )
    done = project.run("run", "--select", "customer_count")
    assert done.returncode == 4, done.stderr
    assert "customer_count.py: describes column 'spend', which it does not write" in done.stderr
    assert project.digest() == before


def test_select_rebuilds_only_the_selection_on_top_of_the_published_warehouse(
    project: ProjectCopy,
) -> None:
    assert project.run("run", "-q").returncode == 0
    done = project.run("run", "--select", "eda_profile")
    assert done.returncode == 0, done.stderr
    assert "1 of 1 OK    marts.eda_profile" in done.stdout
    assert project.query("select count(*) from staging.stg_customers") == [(200,)]
    assert project.query("select selection from meta.runs order by started_at") == [
        (None,),
        ("eda_profile",),
    ]


def test_select_needing_an_unbuilt_parent_explains_itself(project: ProjectCopy) -> None:
    done = project.run("run", "--select", "stg_customers")
    assert done.returncode == 4
    assert "select '+stg_customers'" in done.stderr


def test_unknown_expectation_type_is_an_error_naming_the_suite(project: ProjectCopy) -> None:
    suite_path = project.root / "expectations" / "staging.stg_customers.json"
    suite = json.loads(suite_path.read_text())
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_sensible", "kwargs": {"column": "age"}}
    )
    suite_path.write_text(json.dumps(suite))
    done = project.run("run")
    assert done.returncode == 4
    assert "staging.stg_customers.json: expectation 13: GX has no expectation type" in done.stderr
    assert not project.warehouse.exists()


def test_command_line_mistakes_are_usage_errors(
    built_sample: ProjectCopy, project: ProjectCopy
) -> None:
    """Exit 2 with a message, never a traceback or "project is broken" (exit 4)."""
    typo = project.run("run", "--select", "stg_customer", "--no-report")
    assert typo.returncode == 2, typo.stderr
    assert "no model or layer named 'stg_customer'" in typo.stderr
    assert "did you mean 'stg_customers'" in typo.stderr
    negative = built_sample.run("show", "marts.dim_segments", "--limit", "-1")
    assert negative.returncode == 2
    assert "--limit: -1 rows: the limit must be 0 or more" in negative.stderr
    assert "Traceback" not in negative.stderr
    shown = built_sample.run("show", "marts.dim_segments", "--limit", "2")
    assert shown.returncode == 0 and len(shown.stdout.strip().splitlines()) == 3  # header + 2


def test_a_landing_file_no_source_takes_is_reported_not_skipped_in_silence(
    project: ProjectCopy,
) -> None:
    (project.raw / "Mall_Customers.csv").rename(project.raw / "April_export.CSV")
    (project.raw / "notes.xlsx").write_bytes(b"PK")
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    assert project.query("select count(*) from staging.stg_customers") == [(200,)]
    assert "customers/notes.xlsx matches no source's files" in done.stderr
    latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert latest["unmatched_files"] == ["customers/notes.xlsx"]
    again = project.run("run", "-q")  # nothing changed: a no-op run, which still says so
    assert "Nothing changed" in again.stdout
    assert "customers/notes.xlsx matches no source's files" in again.stderr
    latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert latest["status"] == "no-op" and latest["unmatched_files"] == ["customers/notes.xlsx"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("", r"no row was staged: raw\.customers is empty \(the landing files customers/\*\.csv"),
        (
            "1,Male,abc,15,39\n2,Robot,20,15,39\n3,Male,x1,15,39\n",
            r"no row was staged: all 3 rows of raw\.customers were rejected; most common reasons: "
            r"age 'abc' is not a whole number \(1 row\); age 'x1' is not a whole number \(1 row\); "
            r"gender 'Robot' is not in rules\.accepted\.gender \(1 row\)",
        ),
    ],
    ids=["header only", "every row rejected"],
)
# 0: every table is validated before the next model, so the failed row count expectation of
# raw.customers or stg_customers is known before the reconciliation: the order that once won.
@pytest.mark.parametrize("serial_rows", [None, 0], ids=["validated aside", "validated at once"])
def test_no_staged_customer_is_the_error_not_a_model_parameter(
    empty_project: ProjectCopy, rows: str, message: str, serial_rows: int | None
) -> None:
    if serial_rows is not None:
        empty_project.edit_config(
            "[warehouse]\n", f"[warehouse]\nserial_validation_rows = {serial_rows}\n"
        )
    empty_project.write_csv("a.csv", f"{HEADER}\n{rows}")
    done = empty_project.run("run", "-q")
    assert done.returncode == 2, done.stdout + done.stderr  # bad input, not a broken project
    assert re.search(message, done.stderr), done.stderr
    assert "k_max" not in done.stderr  # nothing downstream runs to fail for a remote reason
    latest = json.loads((empty_project.root / "warehouse/run_results/latest.json").read_text())
    assert (latest["status"], latest["exit_code"], latest["published"]) == ("error", 2, False)


@pytest.mark.parametrize("staged", [6, 1])
def test_too_few_customers_blames_the_data_and_says_where_the_rows_went(
    empty_project: ProjectCopy, staged: int
) -> None:
    rows = [f"{i},Female,{20 + i},{15 + i},{40 + i}" for i in range(1, staged + 1)]
    rows += [f"{100 + i},Female,,15,39" for i in range(4)]  # age missing: rejected
    empty_project.write_csv("a.csv", "\n".join([HEADER, *rows]) + "\n")
    done = empty_project.run("run", "-q")
    assert done.returncode == 2, done.stdout + done.stderr
    customers = f"{staged} customer{'s' if staged != 1 else ''}"
    assert (
        f"only {customers} can be segmented, and comparing up to k_max = 10 segments needs at "
        "least 11: land more customers, or lower models.segment_model_selection.k_max "
        f"(staging: raw.customers: {staged + 4} rows, {staged} staged, 4 rejected; most common "
        "reasons: age is missing (4 rows))"
    ) in done.stderr, done.stderr


def test_a_config_error_still_leaves_its_run_result(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    project.edit_config("[warehouse]\n", "[warehouse]\nhistory_rums = 3\n")
    done = project.run("run", "-q")
    assert done.returncode == 2
    latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert latest["status"] == "error" and latest["exit_code"] == 2
    assert "unknown key 'warehouse.history_rums'" in latest["message"]
    assert latest["published"] is False
