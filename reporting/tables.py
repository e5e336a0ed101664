"""HTML tables as a reader scans them: headings in words, counts thousands separated, shares as
percentages, measured values in their unit, booleans as a mark. Every table scrolls inside its
own box, so a wide one never widens the page (on a phone neither)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from engine.project import units

Format = Callable[[Any], str]

# Column headings a reader understands; any other column reads as its name in words.
HEADINGS = {
    "k": "k",
    "calinski_harabasz": "Calinski–Harabasz",
    "davies_bouldin": "Davies–Bouldin",
    "stability_ari_mean": "stability (ARI)",
    "stability_ari_std": "± SD",
    "is_elbow": "elbow",
    "is_chosen": "chosen",
    "cv_fidelity": "held-out fidelity",
    "nested_cv_fidelity": "nested fidelity",
    "users_control": "users (control)",
    "users_treatment": "users (treatment)",
    "lift_ci_low": "lift CI low",
    "lift_ci_high": "lift CI high",
    "p_value": "p",
    "p_value_holm": "p (Holm)",
    "achieved_power": "power",
    "power_alpha": "at alpha",
    "mde": "MDE",
    "srm_p_value": "SRM p",
    "share_index": "index",
    "segment_name": "segment",
}
# Columns that hold a share of a whole, written as a percentage.
SHARE_COLUMNS = frozenset(
    {
        "share",
        "purity",
        "segment_coverage",
        "train_fidelity",
        "cv_fidelity",
        "nested_cv_fidelity",
        "achieved_power",
    }
)


def heading(column: str) -> str:
    return HEADINGS.get(column, column.replace("_", " "))


def count(value: Any) -> str:
    return "" if pd.isna(value) else f"{int(value):,}"


def percent(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):.1%}"


def decimal(value: Any) -> str:
    """Four significant digits, or whole and thousands separated from 1,000 up; never an
    exponent a reader must decode (p-values below 0.0001 read < 0.0001)."""
    if pd.isna(value):
        return ""
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if 0 < abs(value) < 1e-4:
        return "< 0.0001" if value > 0 else "> -0.0001"
    return f"{value:.4g}"


def in_unit(unit: str) -> Format:
    return lambda value: "" if pd.isna(value) else units.measured(float(value), unit)


def lift(value: Any, unit: str) -> str:
    """A difference: signed, a share's in percentage points, an amount's in its unit."""
    if pd.isna(value):
        return ""
    value = float(value)
    sign = "−" if value < 0 else "+"
    if unit == "share":
        return f"{sign}{abs(100 * value):.2f} {units.PERCENTAGE_POINTS}"
    return sign + units.measured(abs(value), unit)


def _mark(value: Any) -> str:
    """Booleans as a mark a reader scans (✓ or nothing), not True / False."""
    return "✓" if value is True or value is np.True_ else ""


def _default_format(column: str, values: pd.Series) -> Format | None:
    if column in SHARE_COLUMNS:
        return percent
    if values.dtype == bool or values.dtype == "boolean":
        return _mark
    if pd.api.types.is_integer_dtype(values.dtype):
        return count
    if pd.api.types.is_float_dtype(values.dtype):
        return decimal
    return None


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def table(
    frame: pd.DataFrame,
    columns: list[str] | None = None,
    formats: dict[str, Format] | None = None,
    headings: dict[str, str] | None = None,
) -> str:
    """The frame as an HTML table in a box that scrolls sideways when it is wider than the
    page; ``formats`` per column win over the defaults by type. Words align left, figures
    right."""
    shown = frame[columns] if columns else frame
    formats, names = formats or {}, headings or {}
    head, cells, text = [], [], []
    for column in shown.columns:
        values = shown[column]
        chosen = formats.get(column) or _default_format(column, values)
        written = values.map(chosen) if chosen else values
        text.append(chosen is None and _is_text(values))
        head.append(html.escape(names.get(column) or heading(column)))
        cells.append(["" if pd.isna(v) else html.escape(str(v)) for v in written])
    align = [" class='text'" if t else "" for t in text]
    header = "".join(f"<th{a}>{h}</th>" for a, h in zip(align, head, strict=True))
    rows = (
        "".join(
            "<tr>" + "".join(f"<td{a}>{v}</td>" for a, v in zip(align, row, strict=True)) + "</tr>"
            for row in zip(*cells, strict=True)
        )
        if cells
        else ""
    )
    return (
        f"<div class='scroll'><table><thead><tr>{header}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )
