"""whole_number(): the typing of declared integer columns and ids, against the rule in words.

The rule: the text is a whole number when it is digits with an optional sign and optional zero
decimals ('17850', '+007', '17850.0'); its value is then the integer, or null past the type's
range; anything else is null. DuckDB's own cast reads more ('1.5' rounds, '1_00', '0x10'), so
the SQL must not take the cast's word for it.
"""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from engine.project.macros import whole_number

RANGES = {"bigint": 63, "integer": 31}


def expected(text: str | None, type_name: str) -> int | None:
    """The rule, computed in Python."""
    if text is None or not re.fullmatch(r"[+-]?[0-9]+(\.0+)?", text):
        return None
    value = int(text.split(".")[0])
    bits = RANGES[type_name]
    return value if -(2**bits) <= value < 2**bits else None


def typed(texts: list[str | None], type_name: str) -> list:
    """whole_number() of each text, by DuckDB, in the texts' order."""
    number = whole_number(exp.column("text", table="t"), type_name).as_("n")
    query = exp.select(number).from_("t").order_by("position")
    texts_in_order = (
        "with t as (select unnest($texts::varchar[]) as text, "
        "generate_subscripts($texts::varchar[], 1) as position) "
    )
    rows = duckdb.execute(texts_in_order + query.sql("duckdb"), {"texts": texts}).fetchall()
    return [row[0] for row in rows]


SPELLINGS = [
    "17850", "+17850", "-17850", "007", "-0", "+0", "17850.0", "17850.000", "1.5", "1.",
    ".0", "1e1", "1E1", "1_00", "0x10", "0b1", "17850x0", "", " 12", "12 ", "--1", "+-1",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "2147483647", "2147483648", "-2147483648", "-2147483649",
    "2147483647.0", "00000000000000000000000000042", "١٢", "inf", "nan", None,
]  # fmt: skip


@pytest.mark.parametrize("type_name", sorted(RANGES))
def test_whole_numbers_follow_the_rule(type_name: str) -> None:
    got = typed(SPELLINGS, type_name)
    assert got == [expected(text, type_name) for text in SPELLINGS]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="+-.0123456789e_x ", max_size=22), min_size=1, max_size=30))
def test_any_spelling_follows_the_rule(texts: list[str]) -> None:
    for type_name in RANGES:
        assert typed(texts, type_name) == [expected(text, type_name) for text in texts]
