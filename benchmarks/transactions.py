"""Benchmark the transaction path against its floor.

    python -m benchmarks.transactions --sizes example 10M 100M

For each size it runs ``pipeline.py run --full-refresh`` as a user would (the shipped Online
Retail example, or seeded generated order lines with counted dirty lines), records wall time and
the peak memory of the whole process tree, checks the reconciliation against what was generated,
and then, in the same run, times the floor: one bare DuckDB query that reads the same files and
computes the same per-customer aggregates (frequency, monetary, recency, tenure), nothing else.
It reports full refresh ÷ floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.generate import write_config
from benchmarks.generate_lines import lines_workspace
from benchmarks.run import measure

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "online_retail"
SIZES = {"example": 0, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}

# The same definitions as staging and int_customer_orders, written as one query over the files.
FLOOR = """
with lines as (
    select * from read_csv({files}, all_varchar = true, header = true)
),
typed as (
    select
        InvoiceNo as order_id,
        try_cast(CustomerID as double) as customer,
        try_cast(InvoiceDate as timestamp) as ordered_at,
        try_cast(Quantity as double) as quantity,
        try_cast(UnitPrice as double) as price,
        starts_with(InvoiceNo, 'C') as is_return,
        hash(lines) as line_hash
    from lines
),
kept as (
    select distinct * from typed
    where customer is not null and ordered_at is not null and quantity <> 0 and price >= 0
),
snapshot as (
    select cast(max(ordered_at) as date) + 1 as snapshot_date from kept
)
select
    customer,
    count(distinct order_id) filter (where not is_return) as frequency,
    sum(cast(case when is_return then -abs(quantity * price) else quantity * price end
        as decimal(38, 10))) as monetary,
    any_value(snapshot_date) - cast(max(ordered_at) filter (where not is_return) as date)
        as recency_days,
    any_value(snapshot_date) - cast(min(ordered_at) filter (where not is_return) as date)
        as tenure_days
from kept
cross join snapshot
group by customer
"""


def floor_seconds(raw: Path, pattern: str) -> tuple[float, int]:
    """Wall seconds of the floor query, and the customers it found. The floor gets DuckDB's own
    memory limit (80% of RAM), not the refresh's 1 GB, under which its one big query runs out of
    memory at 100M lines; it may spill beside the files."""
    started = time.perf_counter()
    with duckdb.connect() as con:
        con.execute("set temp_directory = ?", [str(raw.parent / "floor.tmp")])
        con.execute("set enable_progress_bar = false")
        files = "'" + str(raw / pattern).replace("'", "''") + "'"
        rows = con.sql(FLOOR.format(files=files)).aggregate("count(*)").fetchall()[0][0]
    return time.perf_counter() - started, rows


# The customer value models' tables (issue 31): their share of the refresh is reported.
VALUE_MODELS = (
    "intermediate.int_customer_purchases",
    "intermediate.int_customer_value_inputs",
    "ml.value_model_fits",
    "ml.customer_value_predictions",
    "ml.value_holdout_customers",
    "ml.value_holdout_expected",
    "marts.customer_value",
    "marts.customer_value_by_group",
    "marts.value_holdout_tracking",
    "marts.value_holdout_by_frequency",
    "marts.value_holdout_accuracy",
)


def value_model_seconds(con: duckdb.DuckDBPyConnection) -> float:
    """The build seconds of the value models in the warehouse's latest run."""
    query = (
        "select coalesce(sum(seconds), 0) from meta.model_runs "
        "where run_id = (select max(run_id) from meta.model_runs) and model in "
        "(select unnest(?::varchar[]))"
    )
    return float(con.execute(query, [list(VALUE_MODELS)]).fetchall()[0][0])


def _workspace(
    label: str, folder: Path, seed: int, lines_per_customer: int
) -> tuple[Path, str, dict | None]:
    if label == "example":
        shutil.copytree(EXAMPLE / "raw", folder / "raw")
        return write_config(EXAMPLE / "pipeline.toml", folder), "transactions/*.csv.gz", None
    generated = lines_workspace(folder, SIZES[label], seed, lines_per_customer=lines_per_customer)
    counts = json.loads((folder / "generation.json").read_text())
    return folder / "pipeline.toml", "transactions/*.csv", counts | {"lines": generated.lines}


def run_size(label: str, seed: int, lines_per_customer: int, engines: list[str]) -> list[dict]:
    """A full refresh on each engine, one after the other on the same files, and the floor."""
    with tempfile.TemporaryDirectory(prefix=f"bench-lines-{label}-") as tmp:
        folder = Path(tmp)
        config, pattern, generated = _workspace(label, folder, seed, lines_per_customer)
        refreshes = [_refresh(folder, config, engine) for engine in engines]
        floor, floor_customers = floor_seconds(folder / "raw", pattern)
    results = []
    for engine, refresh in zip(engines, refreshes, strict=True):
        seconds, peak, code, reconciliation, customers, value_seconds = refresh
        result = {
            "size": label,
            "engine": engine,
            "exit_code": code,
            "seconds": round(seconds, 2),
            "peak_memory_mib": round(peak / 2**20),
            "floor_seconds": round(floor, 2),
            "ratio_to_floor": round(seconds / floor, 2),
            "floor_customers": floor_customers,
        }
        if reconciliation is not None:
            raw, staged, rejected, collapsed, balanced = reconciliation
            result |= {
                "lines": raw,
                "balanced": balanced,
                "customers": customers,
                "value_model_seconds": round(value_seconds, 2),
            }
            if generated is not None:
                counts = (generated[k] for k in ("staged_rows", "rejected_rows", "collapsed_rows"))
                result["matches_generation"] = (staged, rejected, collapsed) == tuple(counts)
        results.append(result)
    return results


def _refresh(folder: Path, config: Path, engine: str) -> tuple:
    """Seconds, peak memory, exit code, and, when it published, the reconciliation row,
    customers and the value models' seconds of one full refresh on ``engine``."""
    command = [sys.executable, "pipeline.py", "--config", str(config), "run", "--engine", engine]
    seconds, peak, code = measure([*command, "--full-refresh", "--no-report", "-q"], 7200)
    print(f"  {engine} full refresh: {seconds:.2f} s, peak {peak / 2**20:.0f} MiB", flush=True)
    if code != 0:  # what the warehouse holds is an earlier run's
        return seconds, peak, code, None, None, None
    with duckdb.connect(str(folder / "segments.duckdb"), read_only=True) as con:
        (reconciliation,) = con.sql(
            "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
            "from staging.stg_transactions_reconciliation"
        ).fetchall()
        customers = con.sql("select count(*) from intermediate.int_customer_orders").fetchall()
        value_seconds = value_model_seconds(con)
    return seconds, peak, code, reconciliation, customers[0][0], value_seconds


def markdown(results: list[dict]) -> str:
    lines = [
        "| order lines | engine | full refresh (s) | peak memory (MiB) | floor query (s) | ÷ floor "
        "| customers | value models (s) | reconciled |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r["exit_code"] != 0:
            lines.append(
                f"| {r['size']} | {r['engine']} | failed (exit {r['exit_code']}) after "
                f"{r['seconds']} s | {r['peak_memory_mib']} | {r['floor_seconds']} | | | | |"
            )
            continue
        reconciled = "yes" if r["balanced"] and r.get("matches_generation", True) else "NO"
        lines.append(
            f"| {r['size']} ({r['lines']:,}) | {r['engine']} | {r['seconds']} "
            f"| {r['peak_memory_mib']} | {r['floor_seconds']} | {r['ratio_to_floor']}× "
            f"| {r['customers']:,} "
            f"| {r['value_model_seconds']} | {reconciled} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["example"], choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--lines-per-customer",
        type=int,
        default=50,
        help="generated lines per customer (10 at 10M lines: a million customers)",
    )
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "spark"])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    results = []
    for label in args.sizes:
        print(f"benchmarking order lines: {label} …", flush=True)
        results.extend(run_size(label, args.seed, args.lines_per_customer, args.engines))
        print(json.dumps(results[-len(args.engines) :], indent=2), flush=True)
    table = markdown(results)
    command = "python -m benchmarks.transactions --sizes " + " ".join(args.sizes)
    if args.lines_per_customer != 50:
        command += f" --lines-per-customer {args.lines_per_customer}"
    if args.engines != ["duckdb"]:
        command += " --engines " + " ".join(args.engines)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "transactions.json").write_text(json.dumps(results, indent=2))
    (args.output / "transactions.md").write_text(f"{table}\n\nMeasured with: `{command}`\n")
    print(table)
    print(f"\nMeasured with: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
