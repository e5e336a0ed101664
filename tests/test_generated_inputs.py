"""Generated landing files: whatever an export holds, a run ends with a clear outcome and loses
nothing.

Examples are seeded and few in the default ("ci") profile; to search much further:

    .venv/bin/python -m pytest tests/test_generated_inputs.py --hypothesis-profile=thorough

Every failing example a search finds becomes a named regression test below the properties.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from generated_configs import ConfigCase, config_cases, to_toml
from generated_exports import Export, customer_exports, order_line_exports, order_lines_base
from hypothesis import event, given

from conftest import REPO, SAMPLE, ProjectCopy, copy_project

CONFIG = tomllib.loads((REPO / "pipeline.toml").read_text(encoding="utf-8"))
CUSTOMER_COLUMNS: dict[str, list[str]] = CONFIG["sources"]["customers"]["columns"]
RETAIL_CONFIG = REPO / "examples" / "online_retail" / "pipeline.toml"
RETAIL = tomllib.loads(RETAIL_CONFIG.read_text(encoding="utf-8"))
ORDER_COLUMNS: dict[str, list[str]] = RETAIL["sources"]["transactions"]["columns"]
ORDER_LINES = order_lines_base(customers=60, seed=7)
# What a bad config's message must name: the key (quoted, or in a reason such as
# "age 32 is outside rules.ranges.age [0, 0]") or the landing file.
CONFIG_KEY_OR_FILE = r"key '[^']+'|\b(?:{})\.\w[\w.]*|\.csv".format("|".join(CONFIG))
with SAMPLE.open(encoding="utf-8", newline="") as handle:
    _SAMPLE_ROWS = list(csv.reader(handle))[1:31]
BASE = [dict(zip(CUSTOMER_COLUMNS, row, strict=True)) for row in _SAMPLE_ROWS]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    """The sample, built: every generated export lands in a copy of this project."""
    project = copy_project(tmp_path_factory.mktemp("generated") / "project")
    assert project.run("run", "-q", "--no-report").returncode == 0
    return project


@pytest.fixture(scope="module")
def published_retail(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    """The Online Retail example's config on clean generated order lines, built."""
    project = copy_project(tmp_path_factory.mktemp("generated-retail") / "project")
    shutil.copy2(RETAIL_CONFIG, project.config)
    landing = project.root / "raw" / "transactions"
    landing.mkdir(parents=True)
    with (landing / "lines.csv.gz").open("wb") as handle:
        handle.write(gzip.compress(_csv(ORDER_LINES)))
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return project


def _csv(lines: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(lines[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    return out.getvalue().encode("utf-8")


def _run_on(published: ProjectCopy, landing: str, data: bytes) -> Iterator[tuple]:
    """A copy of the published project whose only landing file is ``data``, refreshed."""

    def land(project: ProjectCopy) -> None:
        target = project.root / landing
        for old in target.parent.iterdir():
            old.unlink()
        target.write_bytes(gzip.compress(data) if target.suffix == ".gz" else data)

    return _refreshed_copy(published, land)


def _refreshed_copy(
    published: ProjectCopy, prepare: Callable[[ProjectCopy], None]
) -> Iterator[tuple]:
    with tempfile.TemporaryDirectory(prefix="csw-generated-") as home:
        shutil.copytree(published.root, Path(home) / "project", symlinks=True)
        project = ProjectCopy(Path(home) / "project")
        prepare(project)
        before = project.digest()
        done = project.run("run", "-q", "--no-report")
        yield project, done, before


def _check_outcome(
    project: ProjectCopy,
    done: subprocess.CompletedProcess[str],
    before: str,
    export: Export,
    source: str,
) -> None:
    context = f"exit {done.returncode}\n{done.stderr}\n{export.data[:2000]!r}"
    event(f"exit {done.returncode}")
    assert done.returncode in (0, 1, 2), context
    assert "Traceback" not in done.stderr, context
    latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert latest["exit_code"] == done.returncode, context
    assert latest["status"] == ("success" if done.returncode == 0 else "error"), context
    if done.returncode != 0:
        assert done.stderr.strip(), context  # a message, never a silent failure
        assert project.digest() == before, context  # the published warehouse as it was
    if not export.header_valid:
        assert done.returncode == 2 and "export.csv" in done.stderr, context
    counts = (latest.get("reconciliation") or {}).get(f"staging.stg_{source}_reconciliation")
    if export.header_valid and done.returncode != 2:
        assert counts is not None, context
    if counts is not None:
        assert counts["raw_rows"] == export.records, (counts, context)
        assert counts["raw_rows"] == (
            counts["staged_rows"] + counts["rejected_rows"] + counts["collapsed_rows"]
        ), (counts, context)


def _check_published(project: ProjectCopy, export: Export) -> None:
    """What a successful run staged and rejected, against what the export holds."""
    reasons = project.query("select unnest(reasons) from staging.stg_customers_rejected")
    columns = tuple(f"{name} " for name in CUSTOMER_COLUMNS)
    for (reason,) in reasons:
        assert reason.startswith(("malformed row: ", *columns)), reason
    staged = {
        str(row[0]): row[1:]
        for row in project.query(
            "select customer_id, gender, age, annual_income_k, spending_score "
            "from staging.stg_customers"
        )
    }
    for customer_id, written in export.untouched.items():
        assert staged[customer_id] == (
            written["gender"],
            int(written["age"]),
            float(written["annual_income_k"]),
            int(written["spending_score"]),
        ), (customer_id, written)


@given(export=customer_exports(CUSTOMER_COLUMNS, BASE))
def test_any_customer_export_ends_clearly_and_loses_nothing(
    published: ProjectCopy, export: Export
) -> None:
    landing = "warehouse/raw/customers/export.csv"
    for project, done, before in _run_on(published, landing, export.data):
        _check_outcome(project, done, before, export, "customers")
        if done.returncode == 0:
            _check_published(project, export)


@given(export=order_line_exports(ORDER_COLUMNS, ORDER_LINES))
def test_any_order_line_export_ends_clearly_and_loses_nothing(
    published_retail: ProjectCopy, export: Export
) -> None:
    landing = "raw/transactions/export.csv.gz"
    for project, done, before in _run_on(published_retail, landing, export.data):
        _check_outcome(project, done, before, export, "transactions")
        if done.returncode == 0:
            reasons = project.query("select unnest(reasons) from staging.stg_transactions_rejected")
            named = tuple(f"{name} " for name in [*ORDER_COLUMNS, "amount"])
            for (reason,) in reasons:
                assert reason.startswith(("malformed row: ", *named)), reason


def test_the_config_writer_writes_what_it_was_given() -> None:
    assert tomllib.loads(to_toml(CONFIG)) == CONFIG
    assert tomllib.loads(to_toml(RETAIL)) == RETAIL


@given(case=config_cases(CONFIG))
def test_any_config_runs_or_stops_naming_its_key(published: ProjectCopy, case: ConfigCase) -> None:
    def configure(project: ProjectCopy) -> None:
        project.config.write_text(to_toml(case.config), encoding="utf-8")
        if case.experiment_log:
            logs = project.root / "warehouse" / "raw" / "experiments"
            logs.mkdir(parents=True, exist_ok=True)
            (logs / "log.csv").write_text(case.experiment_log, encoding="utf-8")

    for project, done, before in _refreshed_copy(published, configure):
        context = f"exit {done.returncode}: {case.changes}\n{done.stderr}"
        event(f"exit {done.returncode}")
        assert done.returncode in (0, 1, 2), context
        assert "Traceback" not in done.stderr, context
        latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
        assert latest["exit_code"] == done.returncode, context
        if done.returncode != 0:
            assert project.digest() == before, context
        if done.returncode == 2:
            assert re.search(CONFIG_KEY_OR_FILE, done.stderr), context


# Regressions: examples a search found failing, kept by name.


def test_found_a_range_that_rejects_every_row_names_its_key(published: ProjectCopy) -> None:
    """Found by the config search: rules.ranges.age = {min = 0, max = 0} rejected every row and
    the message gave the reasons ("age 32 is outside [0.0, 0.0]") but not the key that set them."""
    config = copy.deepcopy(CONFIG)
    config["rules"]["ranges"]["age"] = {"min": 0, "max": 0}

    def configure(project: ProjectCopy) -> None:
        project.config.write_text(to_toml(config), encoding="utf-8")

    for project, done, before in _refreshed_copy(published, configure):
        assert done.returncode == 2, done.stderr
        assert "all 200 rows of raw.customers were rejected" in done.stderr, done.stderr
        assert "age 32 is outside rules.ranges.age [0, 0] (11 rows)" in done.stderr
        assert project.digest() == before


def test_found_a_line_worth_more_than_a_decimal_holds_is_rejected(
    published_retail: ProjectCopy,
) -> None:
    """Found by the order-line search: a unit price of 1e308 times 9 units is infinite, and
    int_orders' DECIMAL(38, 10) sum failed the run (exit 4). Such lines are rejected, naming
    the columns, and the rest stage."""
    lines = [
        *ORDER_LINES,
        {**ORDER_LINES[0], "order_id": "599001", "unit_price": "1e308", "quantity": "9"},
        {**ORDER_LINES[0], "order_id": "599002", "unit_price": "2.55", "quantity": "1e20"},
        {**ORDER_LINES[0], "order_id": "599003", "unit_price": "1e14", "quantity": "3"},
    ]
    landing = "raw/transactions/export.csv.gz"
    for project, done, _ in _run_on(published_retail, landing, _csv(lines)):
        assert done.returncode == 0, done.stderr
        rejected = project.query(
            "select order_id, reason_text from staging.stg_transactions_rejected order by 1"
        )
        assert rejected == [
            (
                "599001",
                "quantity 9.0 × unit_price 1e+308 is beyond ±1e15, the largest line value staged",
            ),
            (
                "599002",
                "quantity 1e+20 × unit_price 2.55 is beyond ±1e15, the largest line value staged",
            ),
        ], rejected
        assert project.query(
            "select count(*) from staging.stg_transactions where order_id = '599003'"
        ) == [(1,)]  # 3e14: large, and still a value
