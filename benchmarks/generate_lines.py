"""Seeded order lines shaped like the Online Retail exports, at any size, with counted dirty lines.

Orders of one to a dozen lines, placed over a year by customers who differ in how often they
buy and how much (gamma-distributed); a share of the orders cancelled (an
invoice number starting with C, negative quantities: staged as returns). Dirty lines are of five
kinds: no customer id, a date that is not one, a zero quantity, a negative price (each rejected)
and exact copies of a clean line (collapsed). ``generation.json`` beside the landing folder says
how many of each, and so how many lines staging must stage, reject and collapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.generate import write_config, write_summary

HEADER = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands")
COUNTRY_WEIGHTS = (0.85, 0.04, 0.04, 0.03, 0.02, 0.02)
LINES_PER_FILE = 5_000_000
LINES_PER_CUSTOMER = 50
CANCELLED_SHARE = 0.015
DIRTY_KINDS = ("no_customer", "bad_date", "zero_quantity", "negative_price", "exact_duplicates")
YEAR_SECONDS = 365 * 24 * 3600
START = np.datetime64("2011-01-01T08:00:00", "s")


@dataclass(frozen=True)
class GeneratedLines:
    lines: int  # lines written before the exact copies were added
    customers: int
    files: list[str]
    cancellations: int  # lines of cancelled orders: staged, as returns
    no_customer: int
    bad_date: int
    zero_quantity: int
    negative_price: int
    exact_duplicates: int

    @property
    def raw_rows(self) -> int:
        return self.lines + self.exact_duplicates

    @property
    def rejected_rows(self) -> int:
        return self.no_customer + self.bad_date + self.zero_quantity + self.negative_price

    @property
    def collapsed_rows(self) -> int:
        return self.exact_duplicates

    @property
    def staged_rows(self) -> int:
        return self.lines - self.rejected_rows


@dataclass(frozen=True)
class Customers:
    """How often each customer buys (a share of the orders) and how much (a factor on the
    units of a line): gamma-distributed, so customers differ as real ones do."""

    buying: np.ndarray
    spending: np.ndarray

    @classmethod
    def draw(cls, count: int, rng: np.random.Generator) -> Customers:
        rates = rng.gamma(0.8, 1.0, count)
        return cls(rates / rates.sum(), rng.gamma(4.0, 0.25, count))


def _orders(
    lines: int, first_invoice: int, customers: Customers, rng: np.random.Generator
) -> pa.Table:
    """``lines`` clean order lines; every (invoice, product) pair once, so no line repeats."""
    sizes = 1 + rng.poisson(3.0, size=lines // 2 + 16)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), lines)) + 1]
    sizes[-1] -= int(sizes.sum()) - lines
    order = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(lines) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    cancelled = rng.random(len(sizes)) < CANCELLED_SHARE
    invoice = pc.cast(pa.array(first_invoice + order), pa.string())
    invoice = pc.if_else(
        pa.array(cancelled[order]), pc.binary_join_element_wise("C", invoice, ""), invoice
    )
    product_start = rng.integers(0, 4000, size=len(sizes))
    product = (product_start[order] + position) % 4000 + 10000
    buyer = rng.choice(len(customers.buying), size=len(sizes), p=customers.buying)
    units = rng.integers(1, 25, size=lines) * customers.spending[buyer][order]
    quantity = np.maximum(1, np.rint(units)).astype(np.int64) * np.where(cancelled[order], -1, 1)
    seconds = rng.integers(0, YEAR_SECONDS, size=len(sizes))[order]
    cents = rng.choice([42, 85, 125, 165, 210, 295, 425, 495, 795, 1250], size=lines)
    customer = (12000 + buyer)[order]
    country = rng.choice(len(COUNTRIES), size=len(sizes), p=COUNTRY_WEIGHTS)[order]
    price = pc.binary_join_element_wise(
        pc.cast(pa.array(cents // 100), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"),
        ".",
    )
    return pa.table(
        {
            "InvoiceNo": invoice,
            "StockCode": pc.cast(pa.array(product), pa.string()),
            "Quantity": pc.cast(pa.array(quantity), pa.string()),
            "InvoiceDate": pc.strftime(pa.array(START + seconds), "%Y-%m-%d %H:%M:%S"),
            "UnitPrice": price,
            "CustomerID": pc.binary_join_element_wise(
                pc.cast(pa.array(customer), pa.string()), "0", "."
            ),
            "Country": pa.array(np.array(COUNTRIES)[country]),
        }
    )


def _dirty(table: pa.Table, per_kind: int, rng: np.random.Generator) -> pa.Table:
    """Four kinds of rejected line in place, and exact copies of clean lines appended."""
    chosen = rng.choice(table.num_rows, size=5 * per_kind, replace=False)
    no_customer, bad_date, zero, negative, copied = np.split(chosen, 5)
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False).astype(object) for name in HEADER
    }
    columns["CustomerID"][no_customer] = None  # written as an empty field
    columns["InvoiceDate"][bad_date] = "not a date"
    columns["Quantity"][zero] = "0"
    columns["UnitPrice"][negative] = "-1.25"
    dirty = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    return pa.concat_tables([dirty, dirty.take(pa.array(copied))])


def generate_lines(
    lines: int,
    directory: Path,
    seed: int,
    dirty_rate: float = 0.01,
    lines_per_file: int = LINES_PER_FILE,
    lines_per_customer: int = LINES_PER_CUSTOMER,
) -> GeneratedLines:
    """Write ``lines`` order lines (plus exact copies) as CSVs of at most ``lines_per_file``
    lines each (and its share of copies)."""
    rng = np.random.default_rng(seed)
    customers = max(lines // lines_per_customer, 10)
    population = Customers.draw(customers, rng)
    directory.mkdir(parents=True, exist_ok=True)
    files, counts, invoice, cancellations = [], 0, 500000, 0
    with duckdb.connect() as con:
        for part, start in enumerate(range(0, lines, lines_per_file), start=1):
            size = min(lines_per_file, lines - start)
            table = _orders(size, invoice, population, rng)
            invoice += size
            cancellations += int(
                pc.sum(pc.starts_with(table.column("InvoiceNo"), "C")).as_py() or 0
            )
            per_kind = int(size * dirty_rate / len(DIRTY_KINDS))
            table = _dirty(table, per_kind, rng)
            counts += per_kind
            path = directory / f"lines_{part:03d}.csv"
            con.from_arrow(table).write_csv(str(path), header=True)
            files.append(path.name)
    return GeneratedLines(lines, customers, files, cancellations, *([counts] * 5))


EXAMPLE_CONFIG = (
    Path(__file__).resolve().parent.parent / "examples" / "online_retail" / "pipeline.toml"
)


def lines_workspace(
    output: Path,
    lines: int,
    seed: int,
    dirty_rate: float = 0.01,
    lines_per_file: int = LINES_PER_FILE,
    lines_per_customer: int = LINES_PER_CUSTOMER,
) -> GeneratedLines:
    """A self-contained folder: generated order lines, and the Online Retail example's config
    pointed at them."""
    raw = output / "raw" / "transactions"
    generated = generate_lines(lines, raw, seed, dirty_rate, lines_per_file, lines_per_customer)
    write_summary(generated, output / "generation.json")
    config = write_config(EXAMPLE_CONFIG, output)
    text = config.read_text(encoding="utf-8").replace(
        '"transactions/*.csv.gz"', '"transactions/*.csv"'
    )
    config.write_text(text, encoding="utf-8")
    return generated
