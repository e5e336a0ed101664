"""Which new segment continues which previous one.

A segment keeps a previous segment's id only when the two really are the same group: more than
half of the new segment's customers who were segmented before came from that segment, more than
half of that segment's customers who are still here went to the new one, and the centroids lie
within ``match_max_distance`` of each other. Each segment has at most one such partner, so no
assignment problem needs solving; a segment without one gets a fresh id (never a recycled one),
and ml.segment_migrations says where its customers came from (a split, a merge).

Membership is compared on the customers k-means was fitted on (all of them up to
``fit_sample_size``), which keeps the comparison cheap at any size.
"""

from __future__ import annotations

import duckdb
import numpy as np

from python_models._relations import frame

MAJORITY = 0.5


def member_overlap(
    customer_ids: np.ndarray,
    positions: np.ndarray,
    k: int,
    previous: duckdb.DuckDBPyRelation | None,
    previous_ids: np.ndarray,
) -> np.ndarray:
    """Customers shared by new segment (row, by position) and previous segment (column, in
    ``previous_ids`` order). ``customer_ids`` must be sorted."""
    overlap = np.zeros((k, previous_ids.size), dtype=np.int64)
    if previous is None or not previous_ids.size or not customer_ids.size:
        return overlap
    before = frame(previous, ["customer_id", "segment_id"])
    earlier_customers = before["customer_id"].to_numpy(dtype=np.int64)
    at = np.minimum(np.searchsorted(customer_ids, earlier_customers), customer_ids.size - 1)
    segments = before["segment_id"].to_numpy(dtype=np.int64)
    column = np.minimum(np.searchsorted(previous_ids, segments), previous_ids.size - 1)
    here = (customer_ids[at] == earlier_customers) & (previous_ids[column] == segments)
    np.add.at(overlap, (positions[at[here]], column[here]), 1)
    return overlap


def match_ids(
    overlap: np.ndarray,
    distance: np.ndarray,
    previous_ids: np.ndarray,
    max_distance: float,
    next_id: int,
) -> np.ndarray:
    """Ids for the new segments: a previous one's where both hold a majority of the shared
    customers and the centroids are close; fresh ones, in order, for the rest."""
    ids = np.full(overlap.shape[0], -1, dtype=np.int64)
    came = overlap.sum(axis=1, keepdims=True)
    went = overlap.sum(axis=0, keepdims=True)
    mutual = (overlap > MAJORITY * came) & (overlap > MAJORITY * went) & (distance <= max_distance)
    for row, column in zip(*np.nonzero(mutual), strict=True):
        ids[row] = previous_ids[column]
    for row in np.flatnonzero(ids < 0):
        ids[row] = next_id
        next_id += 1
    return ids
