"""The report's figures: each a function from tables to PNG bytes (matplotlib, no display)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # a file renderer: no display, no network

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from engine.project import units

# How each feature is called on the page, and its unit: intermediate.int_feature_scaling's label
# and unit columns.
Labels = dict[str, str]
Units = dict[str, str]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, and savefig lays out a figure
    # that has one again before drawing it: the same pixels, a tenth of the report's time.
    figure.set_layout_engine(None)
    figure.savefig(buffer, format="png", dpi=96)
    plt.close(figure)
    return buffer.getvalue()


def label(feature: str, labels: Labels) -> str:
    return labels.get(feature, feature)


DISTRIBUTIONS_PER_ROW = 4


def log_ticks(low: float, high: float) -> list[int]:
    """Powers of ten (and 0) within [low, high]: the ticks of an axis drawn in log1p units."""
    ticks = [0] if low <= 0 <= high else []
    power = 1
    while power <= high:
        if power >= low:
            ticks.append(power)
        power *= 10
    return ticks


def _readable(value: float, _position: int = 0) -> str:
    """Thousands separated, so that 100000 and 150000 never run together."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def distributions(
    customers: pd.DataFrame,
    features: list[str],
    labels: Labels,
    transforms: dict[str, str] | None = None,
) -> bytes:
    """A histogram per feature; one modelled on log1p is drawn on that scale (on a linear one
    its skew shows a single bar)."""
    transforms = transforms or {}
    columns = min(len(features), DISTRIBUTIONS_PER_ROW)
    rows = -(-len(features) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat[len(features) :]:
        axis.set_visible(False)
    for axis, feature in zip(axes.flat, features, strict=False):
        values = customers[feature].astype("float64")
        name = label(feature, labels)
        if transforms.get(feature) == "log1p":
            axis.hist(np.log1p(values), bins=20, color="#4C72B0", edgecolor="white")
            ticks = log_ticks(values.min(), values.max())
            axis.set_xticks(np.log1p(ticks), [_readable(t) for t in ticks])
            name += " (log scale)"
        else:
            axis.hist(values, bins=20, color="#4C72B0", edgecolor="white")
            axis.xaxis.set_major_locator(MaxNLocator(5))
            axis.xaxis.set_major_formatter(FuncFormatter(_readable))
        axis.set_xlabel(name)
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


def draw_order(customers: pd.DataFrame) -> list[str]:
    """Segments largest first, so the smaller ones are drawn over it and none is hidden (ties
    by name); the legend keeps the names in order."""
    sizes = customers["segment_name"].value_counts()
    return sorted(sizes.index, key=lambda name: (-sizes[name], name))


def segment_scatter(customers: pd.DataFrame, x: str, y: str, labels: Labels) -> bytes:
    figure, axis = plt.subplots(figsize=(8, 5))
    groups = dict(iter(customers.groupby("segment_name", sort=True)))
    colours = dict(zip(groups, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 5, strict=False))
    for name in draw_order(customers):
        members = groups[name]
        axis.scatter(
            members[x], members[y], s=18, label=name, alpha=0.6, color=colours[name], linewidths=0
        )
    handles, names = axis.get_legend_handles_labels()
    ordered = sorted(zip(names, handles, strict=True))
    axis.legend(
        [h for _, h in ordered],
        [n for n, _ in ordered],
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1, 0.5),
    )
    axis.set_xlabel(label(x, labels))
    axis.set_ylabel(label(y, labels))
    return _png(figure)


@dataclass
class _TreeNode:
    text: str
    children: list[int] = field(default_factory=list)  # left (<=) first, then right (>)
    leaf: bool = False


def _split_text(feature: str, threshold: float, labels: Labels, found: Units) -> str:
    unit = found.get(feature, "")
    said = units.without_unit(label(feature, labels), unit)
    return f"{said} ≤ {units.measured(threshold, unit)}"


def _tree_nodes(
    rules: pd.DataFrame, names: dict[int, str], labels: Labels, found: Units
) -> tuple[dict[int, _TreeNode], int]:
    """The tree as published in ml.surrogate_rules (every leaf's path of splits), and its root."""
    nodes: dict[int, _TreeNode] = {}
    sides: dict[int, dict[str, int]] = {}
    for rule in rules.itertuples():
        path = list(rule.path)
        ends = [step["node"] for step in path[1:]] + [int(rule.tree_node)]
        for step, child in zip(path, ends, strict=True):
            split = _split_text(step["feature"], step["threshold"], labels, found)
            nodes.setdefault(step["node"], _TreeNode(split))
            sides.setdefault(step["node"], {})[step["operator"]] = child
        nodes[int(rule.tree_node)] = _TreeNode(
            # One word group a line: names such as "Younger · Low income · High spending".
            str(names.get(int(rule.segment_id), rule.segment_id)).replace(" · ", "\n") + "\n"
            # Count and purity on lines of their own: side by side they overran the next leaf.
            f"{int(rule.support):,} customers\n{rule.purity:.0%} pure",
            leaf=True,
        )
    for node, children in sides.items():
        nodes[node].children = [children["<="], children[">"]]
    first_path = list(rules["path"].iloc[0])
    return nodes, first_path[0]["node"] if first_path else int(rules["tree_node"].iloc[0])


def _layout(nodes: dict[int, _TreeNode], root: int) -> dict[int, tuple[float, int]]:
    """x by leaf order (a parent centred over its children), y by depth."""
    where: dict[int, tuple[float, int]] = {}
    next_leaf = [0.0]

    def place(node: int, depth: int) -> float:
        if nodes[node].leaf:
            x, next_leaf[0] = next_leaf[0], next_leaf[0] + 1
        else:
            x = float(np.mean([place(child, depth + 1) for child in nodes[node].children]))
        where[node] = (x, depth)
        return x

    place(root, 0)
    return where


def surrogate_tree(
    rules: pd.DataFrame, names: dict[int, str], labels: Labels, found: Units | None = None
) -> bytes:
    """The surrogate tree drawn from its published rules: splits in words and units, leaves by
    segment."""
    nodes, root = _tree_nodes(rules, names, labels, found or {})
    where = _layout(nodes, root)
    leaves = sum(n.leaf for n in nodes.values())
    depth = max(d for _, d in where.values())
    figure, axis = plt.subplots(figsize=(max(8.0, 2.0 * leaves), 1.5 * (depth + 1)))
    for node, (x, y) in where.items():
        for side, child in zip(("yes", "no"), nodes[node].children, strict=False):
            cx, cy = where[child]
            axis.plot([x, cx], [-y, -cy], color="#999999", linewidth=1, zorder=1)
            axis.text(
                (x + cx) / 2,
                -(y + cy) / 2,
                side,
                fontsize=9,
                color="#555555",
                ha="center",
                va="center",
                backgroundcolor="white",
                zorder=2,
            )
    for node, (x, y) in where.items():
        colour = "#DCE8F5" if nodes[node].leaf else "#F2F2F2"
        axis.text(
            x,
            -y,
            nodes[node].text,
            fontsize=10,
            ha="center",
            va="center",
            zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "facecolor": colour, "edgecolor": "#888888"},
        )
    axis.set_xlim(-0.7, leaves - 0.3)
    axis.set_ylim(-depth - 0.5, 0.5)
    axis.axis("off")
    return _png(figure)


def importances(importance: pd.DataFrame, labels: Labels) -> bytes:
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
    axis.set_xticklabels([label(f, labels) for f in features], fontsize=8)
    axis.set_ylabel("importance (± SD across refits)")
    # Beside the plot, not over it: inside it covered the tallest bar's error bar.
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
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
    simulated = (rows["source"] == "simulation").all()
    axis.set_title(f"{experiment} (simulated data)" if simulated else experiment)
    return _png(figure)


def timed_builds(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that built, oldest first: a no-op refresh took no build time, and plotted at
    0 s it would draw a dip that no build had."""
    return runs[runs["status"] != "no-op"].sort_values("started_at")


def run_history(runs: pd.DataFrame) -> bytes:
    figure, axis = plt.subplots(figsize=(8, 2.8))
    ordered = timed_builds(runs)
    axis.plot(range(1, len(ordered) + 1), ordered["seconds"], marker="o")
    skipped = len(runs) - len(ordered)
    axis.set_xlabel(f"build ({skipped} no-op refreshes left out)" if skipped else "build")
    axis.set_ylabel("seconds")
    axis.set_ylim(bottom=0)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # refreshes are counted, not measured
    return _png(figure)


def holdout_tracking(tracking: pd.DataFrame, period: str) -> bytes:
    """Cumulative repeat purchases through the holdout: made, expected by the model, and by the
    naive baseline."""
    figure, axis = plt.subplots(figsize=(8, 3.2))
    axis.plot(tracking["period"], tracking["actual_cumulative_purchases"], label="made", lw=2)
    axis.plot(tracking["period"], tracking["expected_cumulative_purchases"], "--", label="BG/NBD")
    axis.plot(
        tracking["period"], tracking["baseline_cumulative_purchases"], ":", label="naive baseline"
    )
    axis.set_xlabel(f"{period}s after calibration")
    axis.set_ylabel("repeat purchases (cumulative)")
    axis.yaxis.set_major_formatter(FuncFormatter(_readable))
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    return _png(figure)


ALIVE_FREQUENCY_CAP = 10
ALIVE_RECENCY_BINS = 8


def alive_heatmap(customers: pd.DataFrame, period: str) -> bytes:
    """Mean probability of being active by repeat purchases (x) and the last purchase's time
    after the first (t_x): the model's reading of frequency and recency together."""
    frequency = customers["repeat_purchases"].clip(upper=ALIVE_FREQUENCY_CAP)
    edges = np.linspace(0, max(float(customers["age_period"].max()), 1.0), ALIVE_RECENCY_BINS + 1)
    recency = np.clip(
        np.digitize(customers["recency_period"], edges) - 1, 0, ALIVE_RECENCY_BINS - 1
    )
    grid = (
        pd.DataFrame({"x": frequency, "t": recency, "alive": customers["probability_alive"]})
        .groupby(["x", "t"])["alive"]
        .mean()
        .unstack("t")
        .reindex(index=range(ALIVE_FREQUENCY_CAP + 1), columns=range(ALIVE_RECENCY_BINS))
    )
    figure, axis = plt.subplots(figsize=(8, 4))
    image = axis.imshow(
        grid.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis"
    )
    figure.colorbar(image, ax=axis, label="mean probability alive (blank: no customer)")
    axis.set_yticks(range(ALIVE_FREQUENCY_CAP + 1))
    axis.set_yticklabels([*map(str, range(ALIVE_FREQUENCY_CAP)), f"{ALIVE_FREQUENCY_CAP}+"])
    axis.set_ylabel("repeat purchases (x)")
    axis.set_xticks(range(ALIVE_RECENCY_BINS))
    axis.set_xticklabels([f"{edges[i]:.0f}–{edges[i + 1]:.0f}" for i in range(ALIVE_RECENCY_BINS)])
    axis.set_xlabel(f"{period}s from the first purchase to the last (t_x)")
    return _png(figure)


DRIFT_PANELS_PER_ROW = 4
DRIFT_VALUES_SHOWN = 8  # an attribute's most common values; the rest are summed in the PSI


def drift_panels(distributions: pd.DataFrame, drift: pd.DataFrame) -> bytes:
    """Per checked feature and attribute, its share of customers per bin (a feature: the last
    refresh's quantile bins, low to high) before and now, titled with its PSI and level."""
    subjects = drift[drift["check_kind"] != "segment"].dropna(subset=["psi"])
    columns = min(len(subjects), DRIFT_PANELS_PER_ROW)
    rows = -(-len(subjects) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis in axes.flat[len(subjects) :]:
        axis.set_visible(False)
    for axis, check in zip(axes.flat, subjects.itertuples(), strict=False):
        bins = distributions[distributions["subject"] == check.subject]
        if check.check_kind == "attribute":
            bins = bins.head(DRIFT_VALUES_SHOWN)
        positions = np.arange(len(bins))
        axis.bar(positions - 0.2, bins["share_before"], 0.4, color="#BBBBBB", label="before")
        axis.bar(positions + 0.2, bins["share_now"], 0.4, color="#4C72B0", label="now")
        if check.check_kind == "attribute":
            axis.set_xticks(positions, [str(v)[:10] for v in bins["value"]], rotation=30)
        else:
            axis.set_xticks(positions, [str(b) for b in bins["bin"]])
            axis.set_xlabel("bin of the last refresh (low → high)")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
        axis.set_title(f"{check.label}\nPSI {check.psi:.3f} ({check.level})", fontsize=10)
        axis.legend(fontsize=7)
    return _png(figure)
