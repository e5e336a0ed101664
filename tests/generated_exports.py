"""Hypothesis strategies for landing files with the variety real exports have.

Each strategy returns the file's bytes and what the test knows independently of the pipeline:
how many records the file holds, and which valid records nothing else in the file touches.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from hypothesis import strategies as st

# Values that real exports carry and that no rule should have to guess about.
ODD_NUMBERS = [
    "1e308", "-1e308", "1e-400", "NaN", "nan", "inf", "-Infinity", "-0", "+5", "1,234",
    "١٢٣", "٣٥", "0x1F", "1_000", " 42 ", "42.0", "42.5", "9" * 40, "", "   ", "NULL", "None",
    "−5", "5 ", "3.", ".5", "1e2", "2147483648", "-2147483649",
]  # fmt: skip
ODD_TEXTS = [
    "Müller", "客户", "a,b", 'say "hi"', "line\nbreak", "cr\r\nlf", "x" * 5000, "\t", "—",
    "Male ", " female", "MALE", "m", "F", "robot", "'", "\\", "🙂",
]  # fmt: skip
ODD_IDS = ["007", "7.0", "17850.0", "-3", "0", "1e3", "abc", "", "12 34", "99999999999999999999"]


@dataclass(frozen=True)
class Export:
    data: bytes
    records: int  # data records, blank lines not counted
    untouched: dict[str, dict[str, str]]  # customer id -> values, of clean unique rows
    header_valid: bool  # every required column, each under one header


def _spelling(draw: st.DrawFn, spellings: list[str]) -> str:
    name = draw(st.sampled_from(spellings))
    name = draw(st.sampled_from([name, name.upper(), name.lower()]))
    return draw(st.sampled_from(["", " ", "  "])) + name + draw(st.sampled_from(["", " "]))


def _odd_value(draw: st.DrawFn, column: str) -> str:
    pool = ODD_IDS if column == "customer_id" else ODD_NUMBERS + ODD_TEXTS
    return draw(st.one_of(st.sampled_from(pool), st.text(max_size=12)))


@st.composite
def customer_exports(
    draw: st.DrawFn, columns: dict[str, list[str]], base: list[dict[str, str]]
) -> Export:
    """A customer export: base (valid) records mixed with odd ones, under a header spelled
    in any accepted way, in any column order, with or without BOM, CRLF and full quoting."""
    canonical = draw(st.permutations(list(columns)))
    if draw(st.integers(0, 9)) == 0:  # now and then an export without a required column
        canonical = canonical[: draw(st.integers(1, len(canonical) - 1))]
    header = [_spelling(draw, columns[name]) for name in canonical]
    extra = draw(st.sampled_from([None, "Notes", "Région", "a second spelling"]))
    if extra == "a second spelling":  # two headers that map to one column: ambiguous
        extra = _spelling(draw, columns[draw(st.sampled_from(canonical))])
    records: list[list[str]] = []
    origin: list[int | None] = []  # index into base for an unchanged base record
    # Every base record once (enough customers to segment), then odd copies of some of them.
    indexes = draw(st.permutations(range(len(base))))
    indexes += draw(st.lists(st.integers(0, len(base) - 1), max_size=30))
    for index in draw(st.permutations(indexes)):
        record = {name: base[index][name] for name in canonical}
        changed = draw(st.integers(0, 3)) == 0
        if changed:
            name = draw(st.sampled_from(canonical))
            record[name] = _odd_value(draw, name)
        row = [record[name] for name in canonical]
        if extra:
            row.append(draw(st.sampled_from([*ODD_TEXTS, ""])))
        if len(row) > 2 and draw(st.integers(0, 19)) == 0:  # ragged: fields missing
            row = row[: draw(st.integers(2, len(row) - 1))]
            changed = True
        elif draw(st.integers(0, 19)) == 0:  # ragged: one field too many
            row = [*row, draw(st.sampled_from(ODD_TEXTS))]
            changed = True
        records.append(row)
        origin.append(None if changed else index)
    data = _write(draw, header + ([extra] if extra else []), records)
    if "customer_id" not in canonical:
        return Export(data, len(records), {}, header_valid=False)
    untouched = _untouched(records, origin, base, canonical.index("customer_id"))
    valid = len(canonical) == len(columns) and not any(
        extra and extra.strip().lower() in {s.lower() for s in spellings}
        for spellings in columns.values()
    )
    return Export(data, len(records), untouched, valid)


def _write(draw: st.DrawFn, header: list[str], records: list[list[str]]) -> bytes:
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending, quoting=quoting)
    writer.writerow(header)
    for record in records:
        if draw(st.integers(0, 9)) == 0:
            out.write(draw(st.sampled_from(["", "   ", "\t"])) + ending)  # a blank line
        writer.writerow(record)
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + out.getvalue()).encode("utf-8")


def _untouched(
    records: list[list[str]], origin: list[int | None], base: list[dict[str, str]], id_at: int
) -> dict[str, dict[str, str]]:
    """Base records written unchanged whose id no other record carries (in any spelling that
    reads as the same whole number): these must be staged exactly as written."""
    counts: dict[int | None, int] = {}
    for record in records:
        number = _id_number(record[id_at]) if id_at < len(record) else None
        counts[number] = counts.get(number, 0) + 1
    unique = (base[i] for i in origin if i is not None)
    return {row["customer_id"]: row for row in unique if counts[int(row["customer_id"])] == 1}


def _id_number(text: str) -> int | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return int(value) if value == value and abs(value) < 1e18 and value == int(value) else None


ODD_DATES = [
    "2011-13-01 10:00:00", "2011-02-30 10:00:00", "31/12/2011 10:00", "2011-12-01",
    "0001-01-01 00:00:00", "9999-12-31 23:59:59", "2101-01-01 00:00:00", "1911-06-01 10:00:00",
    "2011-06-01T10:00:00", "2011-06-01 10:00:00+02:00", "20110601", "2011-6-1 10:00",
    "2011-06-01 24:00:00", "", "yesterday",
]  # fmt: skip
ORDER_COLUMNS = ["order_id", "product_id", "quantity", "order_date", "unit_price", "customer_id"]


def order_lines_base(customers: int, seed: int) -> list[dict[str, str]]:
    """Clean order lines in Online Retail's shape: invoices of one to three lines, a few of
    them cancelled in full by a 'C' invoice, every customer with at least one purchase."""
    import random

    rng = random.Random(seed)
    lines: list[dict[str, str]] = []
    invoice = 536000
    for customer in range(12000, 12000 + customers):
        country = rng.choice(["United Kingdom"] * 4 + ["France", "Germany", "EIRE"])
        for _ in range(rng.randint(1, 5)):
            invoice += 1
            day = (
                f"2011-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d} 1{rng.randint(0, 9)}:00:00"
            )
            bought = [
                {
                    "order_id": str(invoice),
                    "product_id": rng.choice(["85123A", "71053", "84406B", "22423", "POST"]),
                    "quantity": str(rng.randint(1, 24)),
                    "order_date": day,
                    "unit_price": f"{rng.choice([0.85, 1.65, 2.55, 3.39, 12.75]):.2f}",
                    "customer_id": f"{customer}.0",
                    "country": country,
                }
                for _ in range(rng.randint(1, 3))
            ]
            lines += bought
            if rng.random() < 0.1:
                lines += [
                    {**line, "order_id": f"C{invoice + 500000}", "quantity": f"-{line['quantity']}"}
                    for line in bought
                ]
    return lines


def _odd_order_value(draw: st.DrawFn, column: str, base: list[dict[str, str]]) -> str:
    pools = {
        "order_id": [*ODD_IDS, "C999999", "c536001", "C", "A563185"],
        "order_date": ODD_DATES,
        "customer_id": [*ODD_IDS, "12000.0", "12000.5"],
        "country": ODD_TEXTS,
    }
    pool = pools.get(column, [*ODD_NUMBERS, "-5", "0", "-0.0"])
    if column == "order_id" and draw(st.booleans()):  # a cancellation of another's invoice
        return "C" + draw(st.sampled_from(base))["order_id"]
    return draw(st.one_of(st.sampled_from(pool), st.text(max_size=10)))


@st.composite
def order_line_exports(
    draw: st.DrawFn, columns: dict[str, list[str]], base: list[dict[str, str]]
) -> Export:
    """An order-line export: every clean line once, then odd copies of some, under a header
    spelled in any accepted way, with BOM, CRLF, quoting and blank lines as they come."""
    canonical = draw(st.permutations(list(columns)))
    if draw(st.integers(0, 9)) == 0:
        canonical = [c for c in canonical if c != draw(st.sampled_from(ORDER_COLUMNS))]
    header = [_spelling(draw, columns[name]) for name in canonical]
    records = [[line[name] for name in canonical] for line in base]
    for index in draw(st.lists(st.integers(0, len(base) - 1), max_size=30)):
        record = dict(base[index])
        if draw(st.integers(0, 3)) > 0:  # else an exact copy of the line
            name = draw(st.sampled_from(canonical))
            record[name] = _odd_order_value(draw, name, base)
        row = [record[name] for name in canonical]
        if len(row) > 2 and draw(st.integers(0, 19)) == 0:
            row = row[: draw(st.integers(2, len(row) - 1))]
        records.append(row)
    records = draw(st.permutations(records))
    data = _write(draw, header, records)
    return Export(data, len(records), {}, header_valid=len(canonical) == len(columns))
