"""What a run leaves behind: its result (per model and per expectation), as meta rows and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from engine.checks.expectations import ExpectationResult
from engine.project.discovery import REJECTED_ROLE
from engine.warehouse import meta
from engine.warehouse.run_results import write_run_result


@dataclass
class ModelRun:
    table: str
    layer: str
    kind: str
    status: str  # success | error | skipped | failed_expectations
    role: str | None = None
    rows: int | None = None
    seconds: float = 0.0
    started_at: datetime | None = None
    message: str | None = None


@dataclass
class RunResult:
    run_id: str
    started_at: datetime
    selection: list[str]
    warehouse: str
    config_fingerprint: str
    finished_at: datetime | None = None
    status: str = "running"
    exit_code: int = 0
    message: str | None = None
    published: bool = False
    models: list[ModelRun] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    reconciliation: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Landing files that no source's patterns take: never read, so the run says so.
    unmatched_files: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)

    @property
    def rows_rejected(self) -> int:
        return sum(
            m.rows or 0 for m in self.models if m.role == REJECTED_ROLE and m.status == "success"
        )

    def expectation_counts(self) -> tuple[int, int, int]:
        passed = sum(r.success for r in self.expectations)
        failed = sum(r.blocking_failure for r in self.expectations)
        return passed, len(self.expectations) - passed - failed, failed

    def counts(self) -> dict[str, int]:
        passed, warned, failed = self.expectation_counts()
        return {
            "models_built": self.count("success"),
            "models_failed": self.count("error") + self.count("failed_expectations"),
            "models_skipped": self.count("skipped"),
            "rows_rejected": self.rows_rejected,
            "expectations_passed": passed,
            "expectations_warned": warned,
            "expectations_failed": failed,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "message": self.message,
            "published": self.published,
            "warehouse": self.warehouse,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3),
            "selection": self.selection,
            "config_fingerprint": self.config_fingerprint,
            "counts": self.counts(),
            "reconciliation": self.reconciliation,
            "unmatched_files": self.unmatched_files,
            "models": [
                {**asdict(m), "started_at": m.started_at.isoformat() if m.started_at else None}
                for m in self.models
            ],
            "expectations": [asdict(r) for r in self.expectations],
        }


def record_in_meta(
    con: duckdb.DuckDBPyConnection, result: RunResult, inputs_fingerprint: str | None
) -> None:
    """Append the run, its models and its expectation results to the build's meta tables."""
    now = datetime.now(UTC)
    run = {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "finished_at": now,
        "status": "success",
        "selection": " ".join(result.selection) or None,
        "config_fingerprint": result.config_fingerprint,
        # Only a full build is what a later no-op check may compare against.
        "inputs_fingerprint": None if result.selection else inputs_fingerprint,
        **result.counts(),
        "models_failed": 0,
        "seconds": (now - result.started_at).total_seconds(),
    }
    meta.append(con, "runs", [run])
    meta.append(
        con,
        "model_runs",
        [{"run_id": result.run_id, "model": m.table, **asdict(m)} for m in result.models],
    )
    meta.append(
        con,
        "expectation_results",
        [{"run_id": result.run_id, **asdict(r)} for r in result.expectations],
    )


def write_json(directory: Path, result: RunResult) -> str | None:
    """Write the run's JSON result; the reason it could not be written, or None."""
    try:
        write_run_result(directory, result.run_id, result.to_json())
    except OSError as exc:
        return f"could not write the run result to {directory}: {exc}"
    return None
