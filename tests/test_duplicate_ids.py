"""staging.stg_customers_checked's duplicate rules, run as the pipeline compiles the model over
made-up raw rows, against the rules written out in Python: a customer id staged twice with the
same values is collapsed to its first copy (by file and line), with other values it is rejected
as a conflict, and an id is the same id however it is spelled ('17850', '+17850', '17850.0')."""

from __future__ import annotations

import re
from collections import defaultdict

import duckdb
import numpy as np
import pyarrow as pa

from engine import api

from conftest import REPO

WHOLE = re.compile(r"[+-]?[0-9]+(\.0+)?")
FILES = ("customers/a.csv", "customers/b.csv")


def _whole(text: str | None) -> int | None:
    if text is None or not WHOLE.fullmatch(text):
        return None
    value = int(text.split(".")[0])
    return value if -(2**63) <= value < 2**63 else None


def _spelling(rng: np.random.Generator, value: int) -> str:
    forms = (str(value), f"+{value}", f"{value}.0", f"0{value}", f"  {value} ", f"{value}.00")
    return forms[int(rng.integers(len(forms)))] if value >= 0 else str(value)


def _raw_rows(seed: int) -> list[tuple[str, int, str, str]]:
    """(file, line, customer_id, age): ids from a small pool, so most appear several times, in
    several spellings; a few ages are not numbers, so some copies fail the row checks."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(6_000):
        value = int(rng.integers(1, 1_500))
        age = ("30", "30.0", "31", "x")[int(rng.choice(4, p=[0.6, 0.2, 0.1, 0.1]))]
        rows.append((FILES[number % 2], number // 2 + 2, _spelling(rng, value), age))
    line = 10_000
    # Different ids that are one double (2**53 + 1 is not a double): neither is a duplicate.
    # '1e4' is no id, so the one '10000' is no duplicate; '-0' and '0' are one id.
    for text in (str(2**53), str(2**53 + 1), "1e4", "10000", "-0", "0", "99999999999999999999"):
        rows.append((FILES[0], line, text, "40"))
        line += 1
    return rows


def _expected(rows: list[tuple[str, int, str, str]]) -> dict[tuple[str, int], str]:
    """Each row's fate by the rules: staged, rejected, conflict or collapsed."""
    valid = {}
    for file, line, text, age in rows:
        customer_id = _whole(text.strip() or None)
        if customer_id is not None and age != "x":
            valid[(file, line)] = (customer_id, int(float(age)))
    copies = defaultdict(list)
    for place, (customer_id, age) in valid.items():
        copies[customer_id].append((place, age))
    fate = {(file, line): "rejected" for file, line, _, _ in rows}
    for places in copies.values():
        conflict = len({age for _, age in places}) > 1
        first = min(place for place, _ in places)
        for place, _ in places:
            fate[place] = "conflict" if conflict else "staged" if place == first else "collapsed"
    return fate


def _found(query: str, rows: list[tuple[str, int, str, str]]) -> list[tuple[str, int, str]]:
    files, lines, ids, ages = zip(*rows, strict=True)
    raw = pa.table(
        {
            "_source_file": pa.array(files),
            "_line_number": pa.array(lines, pa.int64()),
            "_parse_error": pa.nulls(len(rows), pa.string()),
            "customer_id": pa.array(ids),
            "gender": pa.array(["Male"] * len(rows)),
            "age": pa.array(ages),
            "annual_income_k": pa.array(["60"] * len(rows)),
            "spending_score": pa.array(["50"] * len(rows)),
        }
    )
    with duckdb.connect(config={"threads": 2}) as con:
        con.register("raw_rows", raw)
        con.execute("create schema raw")
        con.execute("create table raw.customers as select * from raw_rows")
        found = con.execute(
            f"""select source_file, line_number,
                case
                    when is_collapsed_duplicate then 'collapsed'
                    when len(reasons) = 0 then 'staged'
                    when list_contains(
                        reasons, 'customer_id ' || customer_id || ' appears with conflicting values'
                    ) then 'conflict'
                    else 'rejected'
                end
            from ({query})"""
        ).fetchall()
    return found


def test_every_copy_of_an_id_meets_the_duplicate_rules_however_it_is_spelled() -> None:
    query = api.compile_model(REPO, REPO / "pipeline.toml", "staging.stg_customers_checked")
    rows = _raw_rows(seed=11)
    expected = _expected(rows)
    output = _found(query, rows)
    found = {(file, line): fate for file, line, fate in output}
    assert len(output) == len(found) == len(rows)  # one output row per raw row
    wrong = {p: (found[p], fate) for p, fate in expected.items() if found[p] != fate}
    assert not wrong, f"{len(wrong)} rows (found, expected), e.g. {list(wrong.items())[:5]}"
    fates = set(expected.values())
    assert fates == {"staged", "collapsed", "conflict", "rejected"}  # every rule exercised
    unusual = {text: expected[(f, n)] for f, n, text, _ in rows if n >= 10_000}
    assert unusual == {
        str(2**53): "staged",
        str(2**53 + 1): "staged",
        "1e4": "rejected",
        "10000": "staged",
        "-0": "staged",
        "0": "collapsed",
        "99999999999999999999": "rejected",
    }
