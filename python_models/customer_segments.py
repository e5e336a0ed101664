"""Every staged customer in exactly one segment, with how sure that assignment is.

Per customer: the segment ``ml.assign_segment`` gives in DuckDB — the SQL scorer BI users call,
so Python and SQL can never disagree, and everyone is assigned in the database however large —
the distance to it, the runner-up segment and the margin between the two, and a silhouette value:
exact (scikit-learn's silhouette_samples) up to ``silhouette_exact_max_rows`` customers; above
that the O(n^2) exact value is out of reach, so the centroid-based (simplified) silhouette
(b - a) / max(a, b) with a, b the distances to the own and runner-up centroids is given instead,
and the whole table is one generated SELECT the engine runs where the customers are (DuckDB, or
Spark), summing the distances feature by feature in numpy's order, so both give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples
from sqlglot import exp

from engine.model_api import DIALECT, ModelResult
from python_models import _sql_scoring as sql
from python_models._segmentation import (
    SCALED_SUFFIX,
    feature_names,
    silhouette_blocks,
    squared_distances,
)

PARAMETERS = {"silhouette_exact_max_rows": 20_000}
PARAMETER_CONSTRAINTS = {"silhouette_exact_max_rows": {"type": "integer", "min": 0}}


COLUMNS = {
    "customer_id": "The customer (staging.stg_customers)",
    "segment_id": (
        "The customer's segment: the nearest centroid in scaled units (ml.assign_segment)"
    ),
    "segment_name": "The segment's readable name",
    "distance_to_centroid": "Euclidean distance to the segment's centroid, in scaled units",
    "silhouette": (
        "The customer's silhouette value (-1..1): how much closer to its own segment "
        "than to the next"
    ),
    "silhouette_method": (
        "exact (pairwise distances) or centroid ((b - a) / max(a, b) with centroid distances)"
    ),
    "runner_up_segment_id": "The second-nearest segment",
    "runner_up_segment_name": "The runner-up segment's name",
    "margin": "Distance to the runner-up centroid minus distance to the own centroid",
}


def _sql_assignment(
    int_customer_features: duckdb.DuckDBPyRelation, features: list[str]
) -> duckdb.DuckDBPyRelation:
    """Every customer's segment from the SQL scorer, beside the scaled features, by id."""
    call = exp.func(f"ml.{sql.CENTROID_SCORER}", *[exp.column(f) for f in features])
    columns = [
        exp.column("customer_id"),
        call.as_("segment_id"),
        *[exp.column(f"{f}{SCALED_SUFFIX}") for f in features],
    ]
    projection = ", ".join(c.sql(DIALECT) for c in columns)
    return int_customer_features.select(projection).order("customer_id")


@dataclass(frozen=True)
class Segments:
    ids: np.ndarray  # segment ids, sorted
    centroids: np.ndarray  # scaled, one row per id
    names: pd.Series  # name by id

    @classmethod
    def from_centroids(cls, segment_centroids: pd.DataFrame, features: list[str]) -> Segments:
        wide = segment_centroids.pivot(
            index="segment_id", columns="feature", values="centroid_scaled"
        )
        names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")
        return cls(
            ids=wide.index.to_numpy(dtype=np.int64),
            centroids=wide[features].to_numpy(dtype=np.float64),
            names=names["segment_name"],
        )


def _score(assigned: pd.DataFrame, features: list[str], segments: Segments) -> pd.DataFrame:
    """Distances, runner-up, margin and the centroid silhouette for a block of customers."""
    matrix = assigned[[f"{f}{SCALED_SUFFIX}" for f in features]].to_numpy(dtype=np.float64)
    own = np.searchsorted(segments.ids, assigned["segment_id"].to_numpy(dtype=np.int64))
    distances = squared_distances(matrix, segments.centroids)
    rows = np.arange(distances.shape[0])
    # The scorer's choice must be a nearest centroid; anything else is a bug, not data.
    if (distances[rows, own] > distances.min(axis=1)).any():
        raise RuntimeError("ml.assign_segment and the centroid distances disagree")
    own_distance = np.sqrt(distances[rows, own])
    others = distances.copy()
    others[rows, own] = np.inf
    runner_up = np.argmin(others, axis=1)
    runner_up_distance = np.sqrt(distances[rows, runner_up])
    largest = np.maximum(own_distance, runner_up_distance)
    silhouette = np.where(
        largest > 0, (runner_up_distance - own_distance) / np.where(largest > 0, largest, 1), 0
    )
    return pd.DataFrame(
        {
            "customer_id": assigned["customer_id"].to_numpy(dtype=np.int64),
            "segment_id": segments.ids[own],
            "segment_name": segments.names.loc[segments.ids[own]].to_numpy(),
            "distance_to_centroid": own_distance,
            "silhouette": silhouette,
            "silhouette_method": "centroid",
            "runner_up_segment_id": segments.ids[runner_up],
            "runner_up_segment_name": segments.names.loc[segments.ids[runner_up]].to_numpy(),
            "margin": runner_up_distance - own_distance,
        }
    )


def _squared_distance(features: list[str], centroid: np.ndarray) -> exp.Expression:
    """(scaled value - coordinate)^2 summed left to right, as squared_distances sums it."""
    terms = []
    for feature, coordinate in zip(features, centroid, strict=True):
        scaled = exp.column(f"{feature}{SCALED_SUFFIX}", quoted=True)
        difference = exp.Paren(this=exp.Sub(this=scaled, expression=sql.double(coordinate)))
        terms.append(exp.Mul(this=difference, expression=difference.copy()))
    total = terms[0]
    for term in terms[1:]:
        total = exp.Add(this=total, expression=term)
    return total


def _by_segment(segment: str, values: dict[int, exp.Expression]) -> exp.Case:
    """CASE segment WHEN id THEN value … END."""
    ifs = [exp.If(this=exp.Literal.number(i), true=v) for i, v in values.items()]
    return exp.Case(this=exp.column(segment), ifs=ifs)


def _scoring_query(features: list[str], segments: Segments) -> exp.Select:
    """Every customer's row of the table as one SELECT: the scorer's segment and the squared
    distance to every centroid; the own and the runner-up one (a tie goes to the lower id, as
    numpy's argmin gives it); then distances, margin and the centroid silhouette.

    No ORDER BY: every step is a projection of int_customer_features, which is stored by id, and
    DuckDB keeps that order; every reader that needs an order asks for it. Sorting 10M rows
    again was a third of the model."""
    ids = [int(i) for i in segments.ids]
    distance = {i: exp.column(f"squared_distance_{i}") for i in ids}
    segment = exp.column("segment_id")
    scorer = exp.func(f"ml.{sql.CENTROID_SCORER}", *[exp.column(f, quoted=True) for f in features])
    distances = exp.select(
        exp.cast(exp.column("customer_id"), "bigint").as_("customer_id"),
        exp.cast(scorer, "bigint").as_("segment_id"),
        *[
            _squared_distance(features, c).as_(distance[i].name)
            for i, c in zip(ids, segments.centroids, strict=True)
        ],
    ).from_("intermediate.int_customer_features")
    others = [exp.Case(ifs=[exp.If(this=segment.neq(i), true=d)]) for i, d in distance.items()]
    nearest = exp.select(
        "customer_id",
        "segment_id",
        _by_segment("segment_id", distance).as_("own_squared"),
        exp.func("least", *others).as_("second_squared"),
        *distance.values(),
    ).from_("distances")
    second = exp.column("second_squared")
    runner_up = exp.Case(
        ifs=[
            exp.If(
                this=exp.and_(segment.neq(i), d.eq(second)),
                true=exp.cast(exp.Literal.number(i), "bigint"),
            )
            for i, d in distance.items()
        ]
    )
    ranked = exp.select(
        "customer_id",
        "segment_id",
        runner_up.as_("runner_up_segment_id"),
        exp.func("sqrt", exp.column("own_squared")).as_("own"),
        exp.func("sqrt", second).as_("second"),
    ).from_("nearest")
    names = {i: exp.Literal.string(str(segments.names.loc[i])) for i in ids}
    own, runner = exp.column("own"), exp.column("second")
    largest = exp.func("greatest", own, runner)
    silhouette = exp.Case(
        ifs=[exp.If(this=largest > sql.double(0.0), true=(runner - own) / largest.copy())],
        default=sql.double(0.0),
    )
    return (
        exp.select(
            "customer_id",
            "segment_id",
            _by_segment("segment_id", names).as_("segment_name"),
            own.as_("distance_to_centroid"),
            silhouette.as_("silhouette"),
            exp.Literal.string("centroid").as_("silhouette_method"),
            "runner_up_segment_id",
            _by_segment("runner_up_segment_id", names).as_("runner_up_segment_name"),
            (runner - own).as_("margin"),
        )
        .from_("ranked")
        .with_("distances", as_=distances)
        .with_("nearest", as_=nearest)
        .with_("ranked", as_=ranked)
    )


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
) -> pd.DataFrame | ModelResult:
    features = feature_names(int_feature_scaling)
    segments = Segments.from_centroids(segment_centroids, features)
    assigned = _sql_assignment(int_customer_features, features)
    ((customers,),) = int_customer_features.aggregate("count(*)").fetchall()
    if customers > config["silhouette_exact_max_rows"]:
        # Everyone scored by SQL, in the database: memory stays flat at any size.
        return ModelResult(query=_scoring_query(features, segments))
    frame = assigned.to_arrow_table().to_pandas()
    table = _score(frame, features, segments)
    if table["segment_id"].nunique() > 1:
        matrix = frame[[f"{f}{SCALED_SUFFIX}" for f in features]].to_numpy(dtype=np.float64)
        with silhouette_blocks():
            table["silhouette"] = silhouette_samples(matrix, table["segment_id"].to_numpy())
        table["silhouette_method"] = "exact"
    return table
