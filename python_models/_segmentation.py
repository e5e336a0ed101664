"""Shared by the segmentation models: one feature matrix, one fit sample, one k-means recipe.

Model selection and the final fit must see the same matrix, the same sample and the same
estimator settings, or the chosen k would describe a different model from the one published.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import sklearn
from sklearn.cluster import KMeans

from python_models._relations import rows_with_keys, sorted_keys

SCALED_SUFFIX = "_scaled"
# scikit-learn computes silhouette's pairwise distances in blocks of ``working_memory`` (1 GiB by
# default): at 20,000 customers three blocks of 1 GiB, whose first touch alone costs seconds.
# Blocks of this size stay in cache, and every value is the same (each row is reduced on its own).
SILHOUETTE_BLOCK_MIB = 16


@contextlib.contextmanager
def silhouette_blocks() -> Iterator[None]:
    """Small distance blocks for silhouette, in the calling thread (scikit-learn's config is
    per thread)."""
    with sklearn.config_context(working_memory=SILHOUETTE_BLOCK_MIB):
        yield


def to_original(values: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Columns in transformed units (features.transforms) back in the data's own units."""
    columns = [
        np.expm1(v) if t == "log1p" else v for v, t in zip(values.T, transforms, strict=True)
    ]
    return np.column_stack(columns) if columns else values


def from_original(values: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Columns in the data's units, transformed as the features are before scaling."""
    columns = [
        np.log1p(v) if t == "log1p" else v for v, t in zip(values.T, transforms, strict=True)
    ]
    return np.column_stack(columns) if columns else values


def feature_names(int_feature_scaling: pd.DataFrame) -> list[str]:
    """The configured modelling features, in their configured order."""
    return int_feature_scaling.sort_values("position")["feature"].tolist()


@dataclass(frozen=True)
class FitSample:
    """The customers k-means is fitted on, by id, and how many customers there were."""

    customer_ids: np.ndarray
    matrix: np.ndarray  # scaled features
    customers: int


def fit_sample(
    int_customer_features: duckdb.DuckDBPyRelation,
    features: list[str],
    fit_sample_size: int,
    seed: int,
) -> FitSample:
    """The scaled features of the customers fit_rows picks from all of them ordered by id (so
    row order never matters).

    Only the ids are sorted, and only the rows picked are read.
    """
    columns = [f"{f}{SCALED_SUFFIX}" for f in features]
    ids = sorted_keys(int_customer_features, "customer_id")
    chosen = ids.take(fit_rows(len(ids), fit_sample_size, seed))
    picked = rows_with_keys(
        int_customer_features, ["customer_id", *columns], "customer_id", chosen
    ).to_pandas()
    # Row-major: numpy sums a column-major matrix in another order (Calinski-Harabasz moved).
    matrix = np.ascontiguousarray(picked[columns].to_numpy(dtype=np.float64))
    return FitSample(picked["customer_id"].to_numpy(dtype=np.int64), matrix, len(ids))


def fit_rows(n_rows: int, fit_sample_size: int, seed: int) -> np.ndarray:
    """Row positions to fit on: all of them, or a seeded sample when there are more."""
    if n_rows <= fit_sample_size:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=fit_sample_size, replace=False))


def fit_kmeans(matrix: np.ndarray, k: int, n_init: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(matrix)


def squared_distances(matrix: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every row to every centroid, shape (rows, centroids).

    Summed feature by feature, left to right, exactly as the generated SQL scorer does, so the
    two agree to the last bit and break ties the same way.
    """
    total = np.zeros((matrix.shape[0], centroids.shape[0]))
    for feature in range(matrix.shape[1]):
        difference = matrix[:, feature, None] - centroids[None, :, feature]
        total = total + difference * difference
    return total
