"""How a feature is called and measured: its label and unit, and numbers written with them.

A feature's label comes from ``features.labels``, else from its column name in words
(``recency_days`` reads "Recency (days)"); its unit from ``features.units``, else from the
label's closing parenthesis when that holds a unit ("Net value (£)" is in £; "Spending score
(1-100)" states a range, not a unit).
"""

from __future__ import annotations

import math
import re

# Currency symbols written before the number (£1,234.50), as people write money.
LEADING_CURRENCIES = ("$", "£", "€", "¥", "₹")
CURRENCY_CODES = frozenset({"USD", "EUR", "GBP", "JPY", "CHF", "CNY", "INR", "AUD", "CAD"})
# Column-name endings that are units: annual_income_k, visit_share_pct, spend_usd.
NAME_UNITS = {
    "days": "days",
    "weeks": "weeks",
    "months": "months",
    "years": "years",
    "hours": "hours",
    "minutes": "minutes",
    "seconds": "seconds",
    "pct": "%",
    "percent": "%",
    "k": "k",
    "usd": "$",
    "eur": "€",
    "gbp": "£",
}
PERCENTAGE_POINTS = "pp"
_UNIT_IN_LABEL = re.compile(r"\(([^()\d]+)\)\s*$")


def readable_label(column: str) -> str:
    """A column name in words, its unit ending in parentheses: recency_days → Recency (days)."""
    words = [w for w in column.split("_") if w]
    if not words:
        return column
    unit = NAME_UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def unit_in_label(label: str) -> str:
    """The unit a label states in its closing parenthesis, or "" (a range such as 1-100 is
    not a unit)."""
    found = _UNIT_IN_LABEL.search(label)
    return found.group(1).strip() if found else ""


def is_money(unit: str) -> bool:
    stripped = unit.strip()
    return stripped.lstrip("k") in LEADING_CURRENCIES or stripped.upper() in CURRENCY_CODES


def number(value: float, decimals: int = 2, trim: bool = True) -> str:
    """Thousands separated, ``decimals`` decimals (trailing zeros dropped when ``trim``)."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:,.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text[1:] if text.lstrip("-0.,") == "" and text.startswith("-") else text


def with_unit(text: str, unit: str) -> str:
    """A formatted number and its unit as people write them: £1,234, 45%, 12 days."""
    unit = unit.strip()
    if not unit:
        return text
    if unit in LEADING_CURRENCIES:
        return f"-{unit}{text[1:]}" if text.startswith("-") else f"{unit}{text}"
    if unit == "%":
        return f"{text}%"
    return f"{text} {unit}"


def measured(value: float, unit: str, decimals: int | None = None) -> str:
    """A value in its unit: money to the cent below 1,000 and whole above; others to two
    decimals at most."""
    money = is_money(unit)
    if decimals is None:
        decimals = 0 if money and abs(value) >= 1000 else 2
    return with_unit(number(value, decimals, trim=not money), unit)


def without_unit(label: str, unit: str) -> str:
    """The label without the "(unit)" it ends in, for a value written with the unit itself."""
    suffix = f"({unit})"
    return label[: -len(suffix)].rstrip() if unit and label.endswith(suffix) else label
