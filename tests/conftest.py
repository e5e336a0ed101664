"""Shared fixtures: a throw-away copy of the project, and helpers to run it as a user would."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, settings
from sqlglot import exp

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "warehouse" / "raw" / "customers" / "Mall_Customers.csv"
EXAMPLE = REPO / "examples" / "online_retail"
CDNOW = REPO / "examples" / "cdnow"
PUBLISHED_LAYERS = ("config", "raw", "staging", "intermediate", "ml", "marts", "meta")
PROJECT_PARTS = (
    "pipeline.py",
    "pipeline.toml",
    "engine",
    "sql",
    "python_models",
    "expectations",
    "reporting",
    "benchmarks",
)


# Generated inputs (tests/test_generated_inputs.py): a few seeded examples in every run of the
# suite; "thorough" searches at random, keeping what it finds in .hypothesis/.
_GENERATED = {
    "deadline": None,  # every example is a real refresh, seconds long
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, **_GENERATED)
settings.register_profile(
    "thorough", max_examples=int(os.environ.get("CSW_EXAMPLES", "400")), **_GENERATED
)
settings.load_profile("ci")


@dataclass
class ProjectCopy:
    """A copy of the project in a temp folder: its own config, landing folder and warehouse."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "pipeline.toml"

    @property
    def raw(self) -> Path:
        return self.root / "warehouse" / "raw" / "customers"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "segments.duckdb"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.root / "pipeline.py"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.root / "pipeline.py"), *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def write_csv(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        path = self.raw / name
        path.write_bytes(text.encode(encoding))
        return path

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, parameters or []).fetchall()

    def frame(self, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.sql(sql).to_arrow_table().to_pandas()

    def apply_macro(self, macro: str, columns: list[str], points: np.ndarray) -> np.ndarray:
        """Call a SQL macro of the warehouse on every row of ``points`` (one column each)."""
        table = pa.table({name: points[:, i] for i, name in enumerate(columns)})
        call = exp.func(macro, *[exp.column(c) for c in columns])
        query = exp.select(call).from_("points").sql("duckdb")
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            con.register("points", table)
            return np.array([row[0] for row in con.execute(query).fetchall()])

    def edit_config(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, f"{old!r} not in the config"
        self.config.write_text(text.replace(old, new))

    def model_count(self) -> int:
        from engine.project.config import load_config
        from engine.project.discovery import discover

        return len(discover(self.root, load_config(self.config)).order)

    def undescribed_columns(self) -> list[str]:
        """Published columns without a description (COMMENT ON), as layer.table.column."""
        return [
            f"{table}.{column}"
            for table, column in self.query(
                "select schema_name || '.' || table_name, column_name from duckdb_columns() "
                "where schema_name in ? and (comment is null or trim(comment) = '') "
                "order by 1, 2",
                [list(PUBLISHED_LAYERS)],
            )
        ]

    def digest(self) -> str:
        return hashlib.sha256(self.warehouse.read_bytes()).hexdigest()


def copy_project(root: Path) -> ProjectCopy:
    root.mkdir()
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / part)
    copy = ProjectCopy(root)
    copy.raw.mkdir(parents=True)
    shutil.copy2(SAMPLE, copy.raw / SAMPLE.name)
    return copy


@pytest.fixture
def project(tmp_path: Path) -> ProjectCopy:
    """The project with only the shipped sample in its landing folder."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def built_sample(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    """The sample built once for tests that only read the warehouse. Do not modify it."""
    copy = copy_project(tmp_path_factory.mktemp("built") / "project")
    done = copy.run("run", "-q")
    assert done.returncode == 0, done.stderr
    return copy


@pytest.fixture(scope="session")
def built_example(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    """The Online Retail example built once, as shipped (a warehouse built beside it here would
    make the run a no-op). Its root is the example's folder. Do not modify it."""
    copy = copy_project(tmp_path_factory.mktemp("retail") / "project")
    shutil.copytree(
        EXAMPLE,
        copy.root / "examples" / "online_retail",
        ignore=shutil.ignore_patterns("warehouse"),
    )
    done = copy.run("--config", "examples/online_retail/pipeline.toml", "run", "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    return ProjectCopy(copy.root / "examples" / "online_retail")


@pytest.fixture(scope="session")
def built_cdnow(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    """The CDNOW example built once, as shipped; its root is the example's folder. Do not
    modify it."""
    copy = copy_project(tmp_path_factory.mktemp("cdnow") / "project")
    shutil.copytree(
        CDNOW, copy.root / "examples" / "cdnow", ignore=shutil.ignore_patterns("warehouse")
    )
    done = copy.run("--config", "examples/cdnow/pipeline.toml", "run", "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    return ProjectCopy(copy.root / "examples" / "cdnow")


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real headless Chromium for the tests that look at pages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real local Spark for the tests that need it (it takes several seconds to start)."""
    from engine.adapters.spark.session import start_session

    session = start_session("local[2]", tmp_path_factory.mktemp("spark-warehouse"))
    yield session
    session.stop()


@pytest.fixture
def empty_project(project: ProjectCopy) -> ProjectCopy:
    """The project with an empty landing folder, for tests that write their own CSVs."""
    (project.raw / SAMPLE.name).unlink()
    return project


@pytest.fixture(scope="session")
def sample_rows() -> list[list[str]]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [line.split(",") for line in lines[1:]]
