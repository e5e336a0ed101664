"""Segment names that say what is true of their members.

A feature's word enters a segment's name only when it holds for most of the segment's customers:
"High income" when at least ``name_min_share`` of them are above the median customer's income,
"Low income" when as many are below it. A segment with no such feature is "Average". The shares
are published beside the centroids, so every word can be checked against the members.

Medians and shares are taken over the customers k-means was fitted on (all of them up to
``fit_sample_size``), in the data's own units: the median of an even count is the mean of the two
middle values, which a transform such as log1p would move.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.model_api import DEFAULT_FEATURE_WORDS


def member_shares(values: np.ndarray, positions: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per new segment (row) and feature (column): the shares of its customers above and below
    the population's median; and the medians."""
    median = np.median(values, axis=0)
    above = np.zeros((k, values.shape[1]))
    below = np.zeros((k, values.shape[1]))
    for position in range(k):
        members = values[positions == position]
        if len(members):
            above[position] = (members > median).mean(axis=0)
            below[position] = (members < median).mean(axis=0)
    return {"median": median, "above": above, "below": below}


def words(
    shares: dict[str, np.ndarray], features: list[str], labels: list[str], config: dict[str, Any]
) -> np.ndarray:
    """The word each (segment, feature) contributes to the name, or None."""
    minimum = config["name_min_share"]
    chosen = np.full(shares["above"].shape, None, dtype=object)
    for column, (feature, label) in enumerate(zip(features, labels, strict=True)):
        low, high = config["feature_words"].get(
            feature, DEFAULT_FEATURE_WORDS.get(feature, [f"Low {label}", f"High {label}"])
        )
        chosen[shares["above"][:, column] >= minimum, column] = high
        chosen[shares["below"][:, column] >= minimum, column] = low
    return chosen


def names(chosen: np.ndarray, ids: np.ndarray, overrides: dict[Any, Any]) -> list[str]:
    """Each segment's words joined, or "Average"; configured names win; a name that would be
    repeated is told apart by its segment id."""
    written = [" · ".join(w for w in row if w is not None) or "Average" for row in chosen]
    by_id = {int(k): str(v) for k, v in overrides.items()}
    written = [by_id.get(int(i), n) for i, n in zip(ids, written, strict=True)]
    counts = pd.Series(written).value_counts()
    return [f"{n} (segment {i})" if counts[n] > 1 else n for n, i in zip(written, ids, strict=True)]
