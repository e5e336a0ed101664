"""The report's figures: each a function from tables to PNG bytes (matplotlib, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # a file renderer: no display, no network

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

FEATURE_LABELS = {
    "age": "Age (years)",
    "annual_income_k": "Annual income (k$)",
    "spending_score": "Spending score (1-100)",
}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=96)
    plt.close(figure)
    return buffer.getvalue()


def label(feature: str) -> str:
    return FEATURE_LABELS.get(feature, feature)


def distributions(customers: pd.DataFrame, features: list[str]) -> bytes:
    figure, axes = plt.subplots(1, len(features), figsize=(4 * len(features), 3.2))
    for axis, feature in zip(np.atleast_1d(axes), features, strict=True):
        axis.hist(customers[feature], bins=20, color="#4C72B0", edgecolor="white")
        axis.set_xlabel(label(feature))
        axis.set_ylabel("customers")
    return _png(figure)


def k_selection(selection: pd.DataFrame) -> bytes:
    chosen = int(selection.loc[selection["is_chosen"], "k"].iloc[0])
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = [
        ("inertia", "Inertia (elbow)", None),
        ("silhouette", "Silhouette", None),
        ("stability_ari_mean", "Bootstrap stability (ARI)", "stability_ari_std"),
    ]
    for axis, (column, title, spread) in zip(axes, panels, strict=True):
        if spread:
            axis.errorbar(selection["k"], selection[column], yerr=selection[spread], marker="o")
        else:
            axis.plot(selection["k"], selection[column], marker="o")
        axis.axvline(chosen, color="#C44E52", linestyle="--", label=f"chosen k = {chosen}")
        elbow = selection.loc[selection["is_elbow"], "k"]
        if column == "inertia" and len(elbow):
            axis.axvline(int(elbow.iloc[0]), color="grey", linestyle=":", label="elbow")
        axis.set_title(title)
        axis.set_xlabel("k")
        axis.legend(fontsize=8)
    return _png(figure)


def segment_scatter(customers: pd.DataFrame, x: str, y: str) -> bytes:
    figure, axis = plt.subplots(figsize=(8, 5))
    for name, members in customers.groupby("segment_name", sort=True):
        axis.scatter(members[x], members[y], s=18, label=name, alpha=0.8)
    axis.set_xlabel(label(x))
    axis.set_ylabel(label(y))
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _png(figure)


def surrogate_tree(tree: object, features: list[str], class_names: list[str]) -> bytes:
    from sklearn.tree import plot_tree

    figure, axis = plt.subplots(figsize=(16, 7))
    plot_tree(
        tree,
        feature_names=[label(f) for f in features],
        class_names=class_names,
        filled=True,
        impurity=False,
        proportion=False,
        fontsize=6,
        ax=axis,
    )
    return _png(figure)


def importances(importance: pd.DataFrame) -> bytes:
    overall = importance[importance["scope"] == "all"]
    methods = sorted(overall["method"].unique())
    features = sorted(overall["feature"].unique())
    figure, axis = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        rows = overall[overall["method"] == method].set_index("feature").loc[features]
        positions = np.arange(len(features)) + i * width
        axis.bar(
            positions,
            rows["importance"],
            width,
            yerr=rows["importance_std"],
            capsize=3,
            label=method,
        )
    axis.set_xticks(np.arange(len(features)) + width * (len(methods) - 1) / 2)
    axis.set_xticklabels([label(f) for f in features], fontsize=8)
    axis.set_ylabel("importance (± SD)")
    axis.legend()
    return _png(figure)


def forest_plot(results: pd.DataFrame, experiment: str) -> bytes:
    rows = results[results["experiment"] == experiment].reset_index(drop=True)
    labels = rows["segment_name"].fillna("all").tolist()
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    positions = np.arange(len(rows))[::-1]
    lift = rows["absolute_lift"].to_numpy(dtype=float)
    low = rows["lift_ci_low"].to_numpy(dtype=float)
    high = rows["lift_ci_high"].to_numpy(dtype=float)
    colors = ["#C44E52" if s == "all" else "#4C72B0" for s in rows["scope"]]
    for y, estimate, lower, upper, color in zip(positions, lift, low, high, colors, strict=True):
        axis.plot([lower, upper], [y, y], color=color, linewidth=2)
        axis.scatter([estimate], [y], color=color, zorder=3)
    if rows["true_effect"].notna().any():
        axis.scatter(rows["true_effect"], positions, marker="x", color="black", label="true effect")
        axis.legend(fontsize=8)
    axis.axvline(0, color="grey", linewidth=1)
    axis.set_yticks(positions)
    axis.set_yticklabels(labels, fontsize=8)
    axis.set_xlabel("absolute lift (95% CI)")
    axis.set_title(experiment)
    return _png(figure)


def run_history(runs: pd.DataFrame) -> bytes:
    figure, axis = plt.subplots(figsize=(8, 2.8))
    ordered = runs.sort_values("started_at")
    axis.plot(range(1, len(ordered) + 1), ordered["seconds"], marker="o")
    axis.set_xlabel("refresh")
    axis.set_ylabel("seconds")
    axis.set_ylim(bottom=0)
    return _png(figure)
