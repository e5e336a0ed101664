"""Benchmark: the sample's full refresh, report included, against a dbt-duckdb anchor project.

    python3 -m venv .venv-anchor
    .venv-anchor/bin/pip install -r benchmarks/dbt_anchor/requirements.txt
    .venv/bin/python -m benchmarks.anchor [--runs 6] [--dbt .venv-anchor/bin/dbt]

The anchor (``benchmarks/dbt_anchor/``) is what a dbt-duckdb user would write for the same job:
staging that types the landing CSVs, standardised features, k-means for k = 2..10 chosen by
silhouette as a dbt Python model, per-segment profiles, and four data tests. It lives in a
virtualenv of its own: dbt-common needs python-dateutil < 3, which the project's constraints do
not allow. Each side runs once to warm the disk cache, then the two alternate (these machines
drift by a quarter from minute to minute); every run starts from an empty database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.generate import write_config
from benchmarks.run import SAMPLE, measure

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = ROOT / "benchmarks" / "dbt_anchor"
TIMEOUT = 300


def _pipeline_command(folder: Path) -> list[str]:
    (folder / "raw" / "customers").mkdir(parents=True)
    shutil.copy2(SAMPLE, folder / "raw" / "customers" / SAMPLE.name)
    config = write_config(ROOT / "pipeline.toml", folder)
    return [sys.executable, str(ROOT / "pipeline.py"), "--config", str(config),
            "run", "--full-refresh", "-q"]  # fmt: skip


def _anchor_command(folder: Path, dbt: Path) -> list[str]:
    project = folder / "dbt_anchor"
    shutil.copytree(ANCHOR, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    landing = str(SAMPLE.parent / "*.csv")
    return [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(project),
            "--vars", f"{{raw_customers: '{landing}'}}", "--quiet"]  # fmt: skip


def _timed(command: list[str], fresh: Path | None = None) -> float:
    """Wall seconds of one run; ``fresh``: a database removed first (a full build, as the
    pipeline's --full-refresh)."""
    if fresh is not None:
        fresh.unlink(missing_ok=True)
    seconds, _, code = measure(command, TIMEOUT)
    if code != 0:
        raise SystemExit(f"failed (exit {code}): {' '.join(command)}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="timed runs of each, alternating")
    parser.add_argument("--dbt", type=Path, default=ROOT / ".venv-anchor" / "bin" / "dbt")
    options = parser.parse_args(argv)
    if not options.dbt.exists():
        raise SystemExit(
            f"{options.dbt}: no dbt there; set up the anchor's virtualenv first (see "
            "python -m benchmarks.anchor --help's module docstring) or pass --dbt"
        )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        ours = _pipeline_command(folder / "pipeline")
        anchor = _anchor_command(folder, options.dbt.resolve())
        database = folder / "anchor.duckdb"
        os.environ["ANCHOR_DATABASE"] = str(database)  # profiles.yml reads it
        _timed(ours), _timed(anchor, database)  # warm-up, not counted
        times: dict[str, list[float]] = {"pipeline": [], "anchor": []}
        for _ in range(options.runs):
            times["pipeline"].append(_timed(ours))
            times["anchor"].append(_timed(anchor, database))
    medians = {side: statistics.median(found) for side, found in times.items()}
    print("| run | median (s) | runs (s) |\n|---|---:|---|")
    for side, found in times.items():
        print(f"| {side} | {medians[side]:.2f} | {', '.join(f'{s:.2f}' for s in found)} |")
    print(f"\npipeline ÷ anchor: {medians['pipeline'] / medians['anchor']:.2f}×")
    print(f"\nMeasured with: python -m benchmarks.anchor --runs {options.runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
