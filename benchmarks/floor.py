"""The floor of a customer refresh: the least work any tool must do with the same files.

One DuckDB query reads the landing CSVs, types the feature columns (rows that do not type are
dropped), standardises them and assigns every customer to the refresh's own centroids, writing
the assignments to a table of a new database file. Refresh ÷ floor is what the pipeline's
staging, checks, models, validation and publish cost on top.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa

FLOOR = """
create table assignments as
with typed as (
    -- A number is checked before it is cast: DuckDB 2.0.1 pushes a try_cast over read_csv into
    -- the reader as a hard cast, which fails on the first dirty cell (duckdb/duckdb#23818).
    select
        case when regexp_full_match(CustomerID, '[0-9]+') then cast(CustomerID as bigint) end
            as customer_id,
        case when regexp_full_match("Age", $number) then cast("Age" as double) end as age,
        case
            when regexp_full_match("Annual Income (k$)", $number)
                then cast("Annual Income (k$)" as double)
        end as annual_income_k,
        case
            when regexp_full_match("Spending Score (1-100)", $number)
                then cast("Spending Score (1-100)" as double)
        end as spending_score
    from read_csv($files, all_varchar = true, header = true)
),
valid as (
    select * from typed
    where customer_id is not null and age is not null
        and annual_income_k is not null and spending_score is not null
),
moments as (
    select
        avg(age) as age_mean, stddev_pop(age) as age_sd,
        avg(annual_income_k) as income_mean, stddev_pop(annual_income_k) as income_sd,
        avg(spending_score) as score_mean, stddev_pop(spending_score) as score_sd
    from valid
),
scaled as (
    select
        customer_id,
        (age - age_mean) / age_sd as age,
        (annual_income_k - income_mean) / income_sd as annual_income_k,
        (spending_score - score_mean) / score_sd as spending_score
    from valid
    cross join moments
)
select
    scaled.customer_id,
    arg_min(
        centroids.segment_id,
        (scaled.age - centroids.age) ** 2
        + (scaled.annual_income_k - centroids.annual_income_k) ** 2
        + (scaled.spending_score - centroids.spending_score) ** 2
    ) as segment_id
from scaled
cross join centroids
group by scaled.customer_id
"""

CENTROIDS = """
pivot (
    select segment_id, feature, centroid_scaled from ml.segment_centroids
) on feature in ('age', 'annual_income_k', 'spending_score') using first(centroid_scaled)
"""


def centroids_of(warehouse: Path) -> pa.Table:
    """The published segments' centroids, one row per segment, in scaled units (as Arrow)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(CENTROIDS).to_arrow_table()


def customers_floor(landing: Path, warehouse: Path, database: Path) -> float:
    """Seconds for the floor query over every CSV in ``landing``, with the published
    warehouse's centroids; ``database`` is created and left for the caller to remove."""
    centroids = centroids_of(warehouse)
    files = sorted(str(path) for path in landing.glob("*.csv"))
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        con.register("centroids", centroids)
        con.execute(FLOOR, {"files": files, "number": r"[+-]?[0-9]+(\.[0-9]+)?"})
        con.execute("checkpoint")
    return time.perf_counter() - started
