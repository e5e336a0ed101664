"""How many segments: every candidate k scored the ways a statistician would check it.

For each k: inertia (for the elbow, found with kneed), silhouette, Calinski-Harabasz,
Davies-Bouldin, and bootstrap stability (adjusted Rand index between the reference fit and fits
on resamples). The chosen k and the rule that chose it are recorded on every row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from engine.model_api import InputError, ParameterError
from python_models._segmentation import (
    feature_names,
    fit_kmeans,
    fit_rows,
    fit_sample,
    silhouette_blocks,
)

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    "k_min": 2,
    "k_max": 10,
    # "auto": best silhouette among the k whose stability clears min_stability; "fixed": fixed_k
    "selection": "auto",
    "fixed_k": 5,
    "min_stability": 0.8,
    "bootstrap_resamples": 10,
    # ... drawn in batches of bootstrap_resamples, while a k's pass/fail against min_stability
    # is within Monte Carlo error, up to this many.
    "max_bootstrap_resamples": 50,
    "n_init": 10,
    # Above this many customers, k-means is fitted on a seeded sample of this size.
    "fit_sample_size": 20_000,
    # Silhouette is O(n^2): above this many fitted rows it is computed on a seeded sample.
    "silhouette_sample_size": 4_000,
    # Bootstrap stability refits k-means many times: above this many rows, on a seeded sample.
    "stability_sample_size": 5_000,
    # A k is eligible only if its smallest segment has at least this many customers and this
    # share of them (in the fit sample): a segment of one outlier explains nothing.
    "min_segment_customers": 5,
    "min_segment_share": 0.01,
}
PARAMETER_CONSTRAINTS = {
    "k_min": {"type": "integer", "min": 2},
    "k_max": {"type": "integer", "min": "k_min"},
    "selection": {"type": "string", "choices": ["auto", "fixed"]},
    "fixed_k": {"type": "integer", "min": 2},
    "min_stability": {"type": "number", "min": 0, "max": 1},
    "bootstrap_resamples": {"type": "integer", "min": 2},
    "max_bootstrap_resamples": {"type": "integer", "min": "bootstrap_resamples"},
    "n_init": {"type": "integer", "min": 1},
    "fit_sample_size": {"type": "integer", "min": 1},
    "silhouette_sample_size": {"type": "integer", "min": 2},
    "stability_sample_size": {"type": "integer", "min": 2},
    "min_segment_customers": {"type": "integer", "min": 1},
    "min_segment_share": {"type": "number", "min": 0, "below": 1},
}


COLUMNS = {
    "k": "A candidate number of segments",
    "smallest_segment": "Customers in the smallest segment of the fit sample at this k",
    "inertia": "Within-segment sum of squared distances (the elbow curve)",
    "silhouette": (
        "Mean silhouette (-1..1, higher is better separated), on a seeded sample above "
        "silhouette_sample_size"
    ),
    "calinski_harabasz": "Calinski-Harabasz index (higher is better separated)",
    "davies_bouldin": "Davies-Bouldin index (lower is better separated)",
    "stability_ari_mean": (
        "Bootstrap stability: mean adjusted Rand index between refits on resamples"
    ),
    "stability_ari_std": "Its standard deviation across resamples",
    "is_elbow": "Whether this k is the elbow of the inertia curve (kneed)",
    "eligible": "Whether the k may be chosen: its smallest segment is big enough",
    "ineligible_reason": "Why it may not, if so",
    "is_chosen": "Whether this k was chosen",
    "selection_rule": "The rule that chose k, in words",
    "features": "The features segmented on, comma-separated",
    "fit_rows": "Customers k-means was fitted on (a seeded sample above fit_sample_size)",
    "silhouette_rows": "Customers the silhouette was computed on",
    "n_init": "k-means restarts",
    "bootstrap_resamples": "Resamples in a batch (the first batch, and each one after it)",
    "stability_mc_se": "Monte Carlo standard error of stability_ari_mean (SD / sqrt(resamples))",
    "stability_resamples": "Resamples drawn for this k: more while pass/fail was unsettled",
    "stability_settled": (
        "Whether the mean ARI lies beyond the bound from min_stability that a k at the threshold "
        "crosses with at most 5% probability over all looks (t, Bonferroni-corrected; within "
        "the cap)"
    ),
}


def _check(config: dict[str, Any], n_rows: int) -> None:
    """What PARAMETER_CONSTRAINTS cannot say: checks that depend on the data or on another key."""
    if config["k_max"] >= n_rows:
        customers = f"{n_rows} customer{'s' if n_rows != 1 else ''}"
        raise InputError(
            f"segment_model_selection: only {customers} can be segmented, and comparing up to "
            f"k_max = {config['k_max']} segments needs at least {config['k_max'] + 1}: land "
            "more customers, or lower models.segment_model_selection.k_max"
        )
    if (
        config["selection"] == "fixed"
        and not config["k_min"] <= config["fixed_k"] <= config["k_max"]
    ):
        raise ParameterError(
            "models.segment_model_selection.fixed_k",
            f"= {config['fixed_k']} must lie in k_min..k_max "
            f"({config['k_min']}..{config['k_max']})",
        )


# A k's stability is settled when its mean ARI is beyond a bound from min_stability that a k
# whose true mean is at min_stability crosses, at any of the looks taken, with at most this
# probability (a t bound at each look, Bonferroni-corrected over the looks the cap allows).
SETTLED_ERROR = 0.05


@dataclass(frozen=True)
class Resampling:
    """How many bootstrap resamples to draw: a first batch, then batches of the same size
    while the pass/fail against ``threshold`` is unsettled, up to ``cap``."""

    batch: int
    cap: int
    threshold: float

    @property
    def looks(self) -> int:
        return -(-self.cap // self.batch)

    def bound(self, draws: int) -> float:
        """How many standard errors from the threshold a mean of ``draws`` must lie."""
        return float(student_t.ppf(1 - SETTLED_ERROR / (2 * self.looks), draws - 1))

    def settled(self, scores: np.ndarray) -> bool:
        standard_error = scores.std(ddof=1) / np.sqrt(len(scores))
        return bool(abs(scores.mean() - self.threshold) > self.bound(len(scores)) * standard_error)


def draw_until_settled(draw: Callable[[int], float], resampling: Resampling) -> np.ndarray:
    """Scores ``draw(i)`` in batches until pass/fail against the threshold is settled or the
    cap is reached."""
    scores: list[float] = []
    while len(scores) < resampling.cap:
        for _ in range(min(resampling.batch, resampling.cap - len(scores))):
            scores.append(draw(len(scores)))
        if resampling.settled(np.array(scores)):
            break
    return np.array(scores)


def stability(
    matrix: np.ndarray,
    reference: np.ndarray,
    k: int,
    resampling: Resampling,
    n_init: int,
    seed: int,
) -> np.ndarray:
    """ARI between the reference labels and the labels a fit on each bootstrap resample gives,
    drawn until pass/fail against the threshold is settled or the cap is reached."""
    rng = np.random.default_rng(seed)

    def draw(index: int) -> float:
        rows = rng.integers(0, matrix.shape[0], size=matrix.shape[0])
        refit = fit_kmeans(matrix[rows], k, n_init, seed + index + 1)
        return float(adjusted_rand_score(reference, refit.predict(matrix)))

    return draw_until_settled(draw, resampling)


@dataclass(frozen=True)
class Candidates:
    """What scoring one candidate k needs; picklable, so a forked worker can score it."""

    fitted: np.ndarray
    stable_rows: np.ndarray
    silhouette_rows: int
    n_init: int
    resampling: Resampling
    seed: int

    def score(self, k: int) -> dict[str, Any]:
        fitted, seed = self.fitted, self.seed
        estimator = fit_kmeans(fitted, k, self.n_init, seed)
        labels = estimator.labels_
        scores = stability(
            fitted[self.stable_rows],
            labels[self.stable_rows],
            k,
            self.resampling,
            self.n_init,
            seed,
        )
        sampled = self.silhouette_rows < fitted.shape[0]
        with silhouette_blocks():
            silhouette = silhouette_score(
                fitted,
                labels,
                sample_size=self.silhouette_rows if sampled else None,
                random_state=seed,
            )
        return {
            "k": k,
            "smallest_segment": int(np.bincount(labels, minlength=k).min()),
            "inertia": float(estimator.inertia_),
            "silhouette": float(silhouette),
            "calinski_harabasz": float(calinski_harabasz_score(fitted, labels)),
            "davies_bouldin": float(davies_bouldin_score(fitted, labels)),
            "stability_ari_mean": float(scores.mean()),
            "stability_ari_std": float(scores.std(ddof=1)),
            "stability_mc_se": float(scores.std(ddof=1) / np.sqrt(len(scores))),
            "stability_resamples": len(scores),
            "stability_settled": self.resampling.settled(scores),
        }


def _knee_locator() -> type:
    """kneed's KneeLocator, imported without the third of a second kneed spends on pyplot.

    kneed imports matplotlib.pyplot eagerly for plot helpers this model never calls, and treats
    an ImportError as "no matplotlib"; a None entry in sys.modules is exactly that ImportError.
    (Measured: 10-14% of the sample's refresh without the report; the report loads pyplot
    later for its figures.)
    """
    if "matplotlib.pyplot" in sys.modules:
        from kneed import KneeLocator

        return KneeLocator
    sys.modules["matplotlib.pyplot"] = None  # type: ignore[assignment]
    try:
        from kneed import KneeLocator
    finally:
        del sys.modules["matplotlib.pyplot"]
    return KneeLocator


def knee(ks: list[int], inertias: list[float]) -> int | None:
    KneeLocator = _knee_locator()

    if len(ks) < 3:
        return None
    found = KneeLocator(ks, inertias, curve="convex", direction="decreasing").knee
    return int(found) if found is not None else None


def _auto_choice(table: pd.DataFrame, threshold: float, minimum: int) -> tuple[int, str]:
    """The best silhouette among the eligible, stable k; a condition no k meets is dropped, and
    the rule says so."""
    eligible = table[table["eligible"]]
    excluded = table.loc[~table["eligible"], "k"].tolist()
    pool = eligible if len(eligible) else table
    stable = pool[pool["stability_ari_mean"] >= threshold]
    notes = []
    if not len(stable):
        some_eligible = bool(excluded) and len(eligible) > 0
        notes.append(
            "no eligible k cleared it, so every eligible k"
            if some_eligible
            else "no k cleared it, so all k"
        )
    if excluded:
        notes.append(
            f"k = {', '.join(map(str, excluded))} not eligible: a segment below {minimum} "
            "customers" + ("" if len(eligible) else " in every k, so all k")
        )
    best = (stable if len(stable) else pool).sort_values(
        ["silhouette", "k"], ascending=[False, True]
    )
    rule = f"auto: highest silhouette among k with bootstrap stability (mean ARI) >= {threshold:g}"
    return int(best["k"].iloc[0]), rule + "".join(f"; {note}" for note in notes)


def _unsettled_note(table: pd.DataFrame, threshold: float, cap: int) -> str:
    """Which k's pass/fail was not settled, and how the rule treated each: by its mean."""
    unsettled = table.loc[~table["stability_settled"]]
    if unsettled.empty:
        return ""
    treated = [
        f"k = {row.k} at {row.stability_ari_mean:.3f}, treated as "
        + ("stable" if row.stability_ari_mean >= threshold else "not stable")
        for row in unsettled.itertuples()
    ]
    return (
        f"; stability not settled against {threshold:g} after {cap} resamples for "
        + "; ".join(treated)
        + " (by its mean)"
    )


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    config: dict[str, Any],
    seed: int,
    progress: Callable[[str], None],
    parallel: Callable[[Callable[[int], dict[str, Any]], Iterable[int]], Iterator[dict[str, Any]]],
) -> pd.DataFrame:
    features = feature_names(int_feature_scaling)
    sample = fit_sample(int_customer_features, features, config["fit_sample_size"], seed)
    _check(config, sample.customers)
    fitted = sample.matrix
    silhouette_rows = min(fitted.shape[0], config["silhouette_sample_size"])
    stable_rows = fit_rows(fitted.shape[0], config["stability_sample_size"], seed)
    # k segments need k distinct customers, and silhouette needs k < the number of them.
    distinct = len(np.unique(fitted, axis=0))
    k_max = min(config["k_max"], distinct - 1)
    if k_max < config["k_min"]:
        raise InputError(
            f"segment_model_selection: the customers have only {distinct} distinct "
            f"combination(s) of {', '.join(features)}; at least {config['k_min'] + 1} are needed "
            f"to compare k = {config['k_min']}..{config['k_max']} segments"
        )

    candidates = list(range(config["k_min"], k_max + 1))
    resampling = Resampling(
        config["bootstrap_resamples"], config["max_bootstrap_resamples"], config["min_stability"]
    )
    fits = Candidates(fitted, stable_rows, silhouette_rows, config["n_init"], resampling, seed)
    rows = []
    for row in parallel(fits.score, candidates):
        rows.append(row)
        progress(f"scored k = {row['k']}; {len(rows)} of {len(candidates)} k done")
    table = pd.DataFrame(rows)
    elbow = knee(table["k"].tolist(), table["inertia"].tolist())
    table["is_elbow"] = table["k"] == elbow if elbow is not None else False

    minimum = max(
        config["min_segment_customers"], int(np.ceil(config["min_segment_share"] * len(fitted)))
    )
    table["eligible"] = table["smallest_segment"] >= minimum
    table["ineligible_reason"] = table["smallest_segment"].map(
        lambda smallest: (
            None
            if smallest >= minimum
            else f"smallest segment has {smallest} customer(s), below the minimum of {minimum} "
            "(models.segment_model_selection.min_segment_customers / min_segment_share)"
        )
    )
    if config["selection"] == "fixed":
        chosen = config["fixed_k"]
        rule = f"fixed: k = {chosen} set in models.segment_model_selection.fixed_k"
    else:
        chosen, rule = _auto_choice(table, config["min_stability"], minimum)
    rule += "; elbow at k = " + (str(elbow) if elbow is not None else "none (no knee found)")
    rule += _unsettled_note(table, config["min_stability"], config["max_bootstrap_resamples"])
    if k_max < config["k_max"]:
        rule += f"; k capped at {k_max}: only {distinct} distinct customers"
    table["is_chosen"] = table["k"] == chosen
    table["selection_rule"] = rule
    table["features"] = ", ".join(features)
    table["fit_rows"] = fitted.shape[0]
    table["silhouette_rows"] = silhouette_rows
    table["n_init"] = config["n_init"]
    table["bootstrap_resamples"] = config["bootstrap_resamples"]
    return table
