"""Order lines by config alone (issue 18): generated exports with every kind of dirty line,
accounted for to the line; a date format, an amount column and no order ids; order lines joined
to a customers source; and the config's mistakes, each naming its key.

Expected figures are computed here with pandas from the lines the test writes.
"""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from engine.errors import ConfigError
from engine.project.config import load_config

from conftest import ProjectCopy, copy_project
from order_reference import customer_orders

WAREHOUSE = """[warehouse]
path = "warehouse/segments.duckdb"
raw_dir = "warehouse/raw"
seed = 7
fit_workers = 0
"""
LINES_SOURCE = """
[sources.transactions]
files = ["orders/*.csv"]

[sources.transactions.columns]
order_id = ["Invoice"]
product_id = ["Product"]
quantity = ["Qty"]
order_date = ["Date"]
unit_price = ["Price"]
customer_id = ["Customer"]
country = ["Country"]

[transactions]
exclude_products = ["POST"]
"""
RFM_FEATURES = """
[features]
columns = ["recency_days", "frequency", "monetary"]
transforms = { frequency = "log1p", monetary = "log1p" }
"""
HEADER = ["Invoice", "Product", "Qty", "Date", "Price", "Customer", "Country", "Note"]


def _clean_lines(rng: random.Random, customers: range, first_invoice: int) -> list[list[str]]:
    """Several orders per customer, several lines per order, over 2023."""
    lines, invoice = [], first_invoice
    start = datetime.datetime(2023, 1, 1, 9, 0)
    for customer in customers:
        for _ in range(rng.randint(1, 6)):
            invoice += 1
            when = start + datetime.timedelta(days=rng.randint(0, 360), minutes=rng.randint(0, 500))
            country = rng.choice(["France", "Spain", "United Kingdom"])
            for _ in range(rng.randint(1, 4)):
                lines.append(
                    [
                        str(invoice),
                        f"P{rng.randint(1, 40):03d}",
                        str(rng.randint(1, 12)),
                        when.strftime("%Y-%m-%d %H:%M:%S"),
                        f"{rng.randint(50, 2500) / 100:.2f}",
                        f"{customer}.0",
                        country,
                        "",
                    ]
                )
    return lines


def _csv(rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n"


def _project(tmp_path: Path, config: str) -> ProjectCopy:
    copy = copy_project(tmp_path / "project")
    (copy.raw / "Mall_Customers.csv").unlink()
    copy.config.write_text(config)
    (copy.root / "warehouse" / "raw" / "orders").mkdir(parents=True)
    return copy


def _write(copy: ProjectCopy, name: str, text: str) -> None:
    (copy.root / "warehouse" / "raw" / "orders" / name).write_text(text, encoding="utf-8")


# A dirty line: what to change in a clean line, and the reasons staging must give (none:
# staged). Lines are appended to the second file in this order.
DIRTY = [
    ({"Customer": ""}, ["customer_id is missing"]),
    ({"Customer": "12.5"}, ["customer_id '12.5' is not an integer"]),
    ({"Date": "yesterday"}, ["order_date 'yesterday' is not a date"]),
    ({"Date": ""}, ["order_date is missing"]),
    ({"Qty": "abc"}, ["quantity 'abc' is not a number"]),
    ({"Qty": "0"}, ["quantity is zero"]),
    ({"Price": "-3.5"}, ["unit_price -3.5 is negative"]),
    ({"Price": ""}, ["unit_price is missing"]),
    ({"Price": "inf"}, ["unit_price 'inf' is not a number"]),
    ({"Product": "POST"}, ["product_id 'POST' is excluded (transactions.exclude_products)"]),
    ({"Invoice": ""}, ["order_id is missing"]),
    ({"Customer": "", "Qty": "0"}, ["customer_id is missing", "quantity is zero"]),
]


@pytest.fixture(scope="module")
def dirty_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectCopy, dict, list]:
    rng = random.Random(18)
    copy = _project(tmp_path_factory.mktemp("dirty"), WAREHOUSE + LINES_SOURCE + RFM_FEATURES)
    first = _clean_lines(rng, range(1000, 1060), 500000)
    second = _clean_lines(rng, range(1060, 1120), 600000)
    expected: dict[tuple[str, int], list[str] | str] = {}
    for name, rows in (("a.csv", first), ("b.csv", second)):
        for number in range(len(rows)):
            expected[(f"orders/{name}", number + 2)] = []
    extra: list[list[str]] = []
    for changes, reasons in DIRTY:
        line = dict(zip(HEADER, rng.choice(first), strict=True)) | changes
        extra.append([line[h] for h in HEADER])
        expected[("orders/b.csv", len(second) + len(extra) + 1)] = reasons
    # An exact copy of a first-file line is collapsed into it; a copy of a rejected line is
    # rejected again; a line that differs only in an unmapped column is a line of its own.
    extra.append(list(first[3]))
    expected[("orders/b.csv", len(second) + len(extra) + 1)] = "collapsed"
    extra.append(list(extra[0]))
    expected[("orders/b.csv", len(second) + len(extra) + 1)] = DIRTY[0][1]
    extra.append([*first[5][:-1], "gift wrapped"])
    expected[("orders/b.csv", len(second) + len(extra) + 1)] = []
    # A cancellation, written with a negative or a positive quantity: both are returns. One
    # customer has only returns.
    cancelled = first[0]
    extra.append(["C" + cancelled[0], *cancelled[1:2], "-2", *cancelled[3:]])
    extra.append(["C" + cancelled[0], *cancelled[1:2], "3", *cancelled[3:]])
    extra.append(["C900001", "P001", "-1", "2023-06-01 10:00:00", "4.00", "2000", "Spain", ""])
    for back in range(3):
        expected[("orders/b.csv", len(second) + len(extra) + 1 - back)] = []
    extra.append(["900002", "P001", "1", "2023-06-01 10:00:00", "4.00", "1001", "Spain", "", "x"])
    expected[("orders/b.csv", len(second) + len(extra) + 1)] = [
        "malformed row: expected 8 fields, found 9 (extra: ['x'])"
    ]
    _write(copy, "a.csv", _csv(first))
    _write(copy, "b.csv", _csv(second + extra))
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return copy, expected, first + second + extra


def test_every_dirty_line_is_accounted_for(dirty_build) -> None:
    copy, expected, _ = dirty_build
    checked = copy.frame(
        "select c.source_file, c.line_number, c.reasons, d.line_number is not null as collapsed "
        "from staging.stg_transactions_checked c left join staging.stg_transactions_copies d "
        "using (source_file, line_number)"
    )
    got = {
        (r.source_file, r.line_number): "collapsed" if r.collapsed else list(r.reasons)
        for r in checked.itertuples()
    }
    assert got == expected
    staged = {
        tuple(r)
        for r in copy.query("select source_file, line_number from staging.stg_transactions")
    }
    rejected = {
        tuple(r)
        for r in copy.query(
            "select source_file, line_number from staging.stg_transactions_rejected"
        )
    }
    assert staged == {k for k, v in expected.items() if v == []}
    assert rejected == {k for k, v in expected.items() if isinstance(v, list) and v}
    ((raw, n_staged, n_rejected, n_collapsed, balanced),) = copy.query(
        "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
        "from staging.stg_transactions_reconciliation"
    )
    assert (raw, n_staged, n_rejected, n_collapsed) == (
        len(expected),
        len(staged),
        len(rejected),
        1,
    )
    assert balanced
    # The copy names the line it collapsed into: the same line of the first file.
    ((first_file, first_line),) = copy.query(
        "select first_source_file, first_line_number from staging.stg_transactions_copies"
    )
    assert (first_file, first_line) == ("orders/a.csv", 5)


def test_cancellations_are_returns_and_returns_only_customers_are_listed(dirty_build) -> None:
    copy, _, _ = dirty_build
    returns = copy.query(
        "select quantity, unit_price, line_value, is_return, is_purchase "
        "from staging.stg_transactions where order_id like 'C%' order by line_number"
    )
    assert [(r[3], r[4]) for r in returns] == [(True, False)] * 3
    assert [r[0] for r in returns] == [-2, 3, -1]
    for quantity, price, value, _, _ in returns:
        assert value == pytest.approx(-abs(quantity * price))
    ((reason, segment),) = copy.query(
        "select unsegmented_reason, segment_id from marts.dim_customers where customer_id = 2000"
    )
    assert reason == "returns only: no purchase order" and segment is None
    ((frequency, has_purchase),) = copy.query(
        "select frequency, has_purchase from intermediate.int_customer_orders "
        "where customer_id = 2000"
    )
    assert (frequency, has_purchase) == (0, False)


def test_rejected_reasons_reach_the_profile(dirty_build) -> None:
    copy, _, _ = dirty_build
    kinds = {
        r[0]: r[1]
        for r in copy.query(
            "select subject, value from marts.eda_profile where section = 'rejected order lines'"
        )
    }
    assert kinds["customer_id is missing"] == 3  # one line alone, one with zero quantity, a copy
    assert kinds["quantity is zero"] == 2


VARIANT_SOURCE = """
[sources.transactions]
files = ["orders/*.csv"]
date_format = "%Y%m%d"

[sources.transactions.columns]
order_date = ["Day"]
amount = ["Amount"]
customer_id = ["Client"]

[transactions]
snapshot_date = "2024-01-01"
"""


def test_date_format_amount_and_no_order_id_by_config_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 900
    frame = pd.DataFrame(
        {
            "Client": rng.integers(1, 80, n),
            "Day": [
                (datetime.date(2023, 1, 1) + datetime.timedelta(days=int(d))).strftime("%Y%m%d")
                for d in rng.integers(0, 365, n)
            ],
            "Amount": np.round(rng.gamma(2.0, 30.0, n) * rng.choice([1, 1, 1, 1, -1], n), 2),
        }
    )
    frame.loc[0, "Amount"] = 0.0  # neither a purchase nor a return
    rows = [[str(c), d, f"{a:.2f}"] for c, d, a in frame.itertuples(index=False)]
    rows.append(["5", "20240102", "10.00"])  # after the snapshot date: rejected
    rows.append(["5", "2023-01-02", "10.00"])  # not in the configured format
    copy = _project(
        tmp_path, WAREHOUSE + VARIANT_SOURCE + RFM_FEATURES.replace(', monetary = "log1p"', "")
    )
    text = "\n".join(",".join(r) for r in [["Client", "Day", "Amount"], *rows]) + "\n"
    _write(copy, "lines.csv", text)
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr

    rejected = copy.query(
        "select line_number, reason_text from staging.stg_transactions_rejected order by 1"
    )
    assert rejected == [
        (
            n + 2,
            "order_date 2024-01-02 00:00:00 is not before transactions.snapshot_date 2024-01-01",
        ),
        (n + 3, "order_date '2023-01-02' is not a date"),
    ]
    frame["date"] = pd.to_datetime(frame["Day"], format="%Y%m%d")
    lines = pd.DataFrame(
        {
            "customer_id": frame["Client"],
            "order_id": [f"orders/lines.csv:{i + 2}" for i in range(n)],
            "product": None,
            "order_date": frame["date"],
            "value": frame["Amount"],
            "quantity": np.nan,
            "is_return": frame["Amount"] < 0,
            "is_purchase": frame["Amount"] > 0,
            "is_non_product": False,
            "source_file": "orders/lines.csv",
            "line_number": np.arange(2, n + 2),
        }
    )
    columns = ["frequency", "monetary", "recency_days", "tenure_days", "unmatched_return_value"]
    written = copy.config.read_text()
    for frequency, unmatched in (("orders", "exclude"), ("purchase_days", "subtract")):
        config = written.replace(
            "[transactions]\n",
            f'[transactions]\nfrequency = "{frequency}"\nunmatched_returns = "{unmatched}"\n',
        )
        copy.config.write_text(config)
        done = copy.run("run", "-q", "--no-report")
        assert done.returncode == 0, done.stderr
        expected = customer_orders(
            lines,
            by_units=False,
            frequency=frequency,
            subtract=unmatched == "subtract",
            snapshot=pd.Timestamp("2024-01-01"),
        )
        got = copy.frame(
            f"select customer_id, {', '.join(columns)} "
            "from intermediate.int_customer_orders order by customer_id"
        ).set_index("customer_id")
        assert list(got.index) == list(expected.index)
        assert (got["frequency"].to_numpy() == expected["frequency"].to_numpy()).all()
        for column in columns[1:]:
            np.testing.assert_allclose(
                got[column].astype("float64"), expected[column].astype("float64"), rtol=1e-12
            )
        # Several lines of one client on one day are several orders, and one purchase day.
        assert (expected["orders"] > expected["purchase_days"]).any()
    # Returns dated before any purchase of their client are unmatched, and subtracted only when
    # configured so.
    assert expected["unmatched_return_value"].gt(0).sum() > 5
    # Without order ids every line is its own order: the order id says which line it was.
    ((order_id,),) = copy.query(
        "select order_id from staging.stg_transactions where line_number = 2"
    )
    assert order_id == "orders/lines.csv:2"
    ((products,),) = copy.query(
        "select count(distinct_products) from intermediate.int_customer_orders"
    )
    assert products == 0  # no product_id mapped: null, not zero


def _built_rejections(copy: ProjectCopy, rows: list[list[str]]) -> list[tuple]:
    """Write the variant export, run, and return (line, reason) of every rejected line."""
    text = "\n".join(",".join(r) for r in [["Client", "Day", "Amount"], *rows]) + "\n"
    _write(copy, "lines.csv", text)
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return copy.query(
        "select line_number, reason_text from staging.stg_transactions_rejected order by 1"
    )


def _filler() -> list[list[str]]:
    """Enough other customers to segment, with plain dates in January and February 2023."""
    rng = random.Random(11)
    return [
        [str(customer), f"202301{rng.randint(10, 28)}", f"{rng.uniform(5, 90):.2f}"]
        for customer in range(100, 160)
        for _ in range(rng.randint(1, 3))
    ]


def test_a_date_must_match_its_format_exactly(tmp_path: Path) -> None:
    """'%Y%m%d' is eight digits: DuckDB's strptime alone reads '2023013' as 2023-01-03."""
    copy = _project(tmp_path, WAREHOUSE + VARIANT_SOURCE + RFM_FEATURES)
    days = ["20230112", "2023013", "2023111", "202301120", "20230230", "20231105"]
    rows = [[str(1 + i % 2), day, "10.00"] for i, day in enumerate(days)] + _filler()
    assert _built_rejections(copy, rows) == [
        (line, f"order_date '{days[line - 2]}' is not a date") for line in (3, 4, 5, 6)
    ]
    staged = copy.query(
        "select line_number, order_date from staging.stg_transactions where line_number <= 7 "
        "order by 1"
    )
    assert staged == [
        (2, datetime.datetime(2023, 1, 12)),
        (7, datetime.datetime(2023, 11, 5)),
    ]


def test_an_implausible_order_date_is_rejected_and_moves_no_snapshot(tmp_path: Path) -> None:
    """A year typo (2997) must not become the snapshot that every recency counts to."""
    source = VARIANT_SOURCE.replace('snapshot_date = "2024-01-01"', 'min_order_date = "2000-01-01"')
    copy = _project(tmp_path, WAREHOUSE + source + RFM_FEATURES)
    rows = [
        ["1", "20230110", "10.00"],
        ["1", "20230301", "12.00"],
        ["2", "20230205", "30.00"],
        ["2", "29970112", "30.00"],  # line 5: a year typo
        ["2", "19970112", "30.00"],  # line 6: before the configured minimum
        *_filler(),
    ]
    today = datetime.datetime.now(datetime.UTC).date()
    assert _built_rejections(copy, rows) == [
        (
            5,
            f"order_date 2997-01-12 00:00:00 is after transactions.max_order_date {today} "
            "(default: the day of the run)",
        ),
        (6, "order_date 1997-01-12 00:00:00 is before transactions.min_order_date 2000-01-01"),
    ]
    assert copy.query(
        "select customer_id, snapshot_date, recency_days from intermediate.int_customer_orders "
        "where customer_id <= 2 order by 1"
    ) == [(1, datetime.date(2023, 3, 2), 1), (2, datetime.date(2023, 3, 2), 25)]


@pytest.mark.parametrize("setting", [None, "always"])
def test_identical_lines_without_order_ids_are_purchases(
    tmp_path: Path, setting: str | None
) -> None:
    """Without order ids (CDNOW: customer, day, value) two identical lines are plausibly two
    purchases: staged both, and counted, unless transactions.collapse_copies says otherwise."""
    source = VARIANT_SOURCE + (f'collapse_copies = "{setting}"\n' if setting else "")
    copy = _project(tmp_path, WAREHOUSE + source + RFM_FEATURES)
    twice = ["1", "20230110", "10.00"]
    rows = [twice, twice, ["1", "20230301", "12.00"], twice, *_filler()]
    assert _built_rejections(copy, rows) == []
    copies = 0 if setting else 2
    collapsed = 2 if setting else 0
    ((raw, staged, rejected, folded, staged_copies, balanced),) = copy.query(
        "select raw_rows, staged_rows, rejected_rows, collapsed_rows, staged_copy_rows, "
        "is_balanced from staging.stg_transactions_reconciliation"
    )
    assert (raw, rejected, folded, staged_copies, balanced) == (
        len(rows),
        0,
        collapsed,
        copies,
        True,
    )
    assert staged == len(rows) - collapsed
    ((frequency, monetary),) = copy.query(
        "select frequency, monetary from intermediate.int_customer_orders where customer_id = 1"
    )
    assert frequency == (4 if not setting else 2)
    assert monetary == (42.0 if not setting else 22.0)


def test_zero_value_lines_are_no_purchase_and_no_return(tmp_path: Path) -> None:
    """A customer whose only line is worth 0 has no returns: the reason must say what is true."""
    copy = _project(tmp_path, WAREHOUSE + VARIANT_SOURCE + RFM_FEATURES)
    rows = [["1", "20230110", "0.00"], ["2", "20230110", "-5.00"], *_filler()]
    assert _built_rejections(copy, rows) == []
    assert copy.query(
        "select customer_id, unsegmented_reason from intermediate.int_customer_profiles "
        "where customer_id <= 2 order by 1"
    ) == [(1, "no purchase: only lines of zero value"), (2, "returns only: no purchase order")]
    assert copy.query(
        "select customer_id, frequency, return_orders, order_lines "
        "from intermediate.int_customer_orders where customer_id <= 2 order by 1"
    ) == [(1, 0, 0, 1), (2, 0, 1, 1)]


JOINED = """
[sources.customers]
files = ["customers/*.csv"]
required = ["customer_id", "age"]

[sources.customers.columns]
customer_id = ["id"]
age = ["Age"]
region = ["Region"]

[sources.customers.kinds]
age = "integer"

[rules.ranges]
age = { min = 15, max = 100 }

[rules.accepted.region]
values = ["North", "South"]

[features]
columns = ["age", "recency_days", "monetary"]
"""


def test_order_lines_join_a_customers_source(tmp_path: Path) -> None:
    rng = random.Random(3)
    copy = _project(tmp_path, WAREHOUSE + LINES_SOURCE + JOINED)
    _write(copy, "a.csv", _csv(_clean_lines(rng, range(1, 151), 100)))
    people = [f"{i},{rng.randint(18, 80)},{rng.choice(['North', 'South'])}" for i in range(11, 171)]
    (copy.raw / "people.csv").write_text("id,Age,Region\n" + "\n".join(people) + "\n")
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr

    reasons = dict(copy.query("select customer_id, unsegmented_reason from marts.dim_customers"))
    assert len(reasons) == 170
    assert {c for c, r in reasons.items() if r is None} == set(range(11, 151))
    assert all(reasons[c] == "age is missing (not in the customers source)" for c in range(1, 11))
    assert all(
        reasons[c] == "recency_days is missing (no staged order lines)" for c in range(151, 171)
    )
    # Attributes of both sources reach the segmented customers; region gets its shares.
    columns = {r[0] for r in copy.query("describe intermediate.int_customer_features")}
    assert {"region", "country", "age_scaled", "recency_days_scaled"} <= columns
    ((attributes,),) = copy.query(
        "select count(distinct attribute) from marts.dim_segment_attributes"
    )
    assert attributes == 1


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


CONFIG_MISTAKES = {
    "no date": (LINES_SOURCE.replace('order_date = ["Date"]\n', ""), "must map ['order_date']"),
    "no value": (
        LINES_SOURCE.replace('unit_price = ["Price"]\n', ""),
        "must map 'amount' (a line's value), or both 'quantity' and 'unit_price'",
    ),
    "snapshot": (
        LINES_SOURCE + 'snapshot_date = "10/12/2011"\n',
        "key 'transactions.snapshot_date' = '10/12/2011' is not a date",
    ),
    "collapse": (
        LINES_SOURCE + 'collapse_copies = "sometimes"\n',
        "key 'transactions.collapse_copies' must be 'auto' or 'always' or 'never', got 'sometimes'",
    ),
    "max date": (
        LINES_SOURCE + 'max_order_date = "2011-13-01"\n',
        "key 'transactions.max_order_date' = '2011-13-01' is not a date",
    ),
    "min after max": (
        LINES_SOURCE + 'min_order_date = "2012-01-01"\nmax_order_date = "2011-12-31"\n',
        "key 'transactions.min_order_date' = 2012-01-01 is after "
        "'transactions.max_order_date' = 2011-12-31",
    ),
    "format": (
        LINES_SOURCE.replace(
            'files = ["orders/*.csv"]', 'files = ["orders/*.csv"]\ndate_format = "YYYYMMDD"'
        ),
        "key 'sources.transactions.date_format' = 'YYYYMMDD' has no format code",
    ),
    "rfm gap": (
        LINES_SOURCE + 'rfm_groups = [{ name = "All", recency = [1, 5], frequency = [1, 4] }]\n',
        "the cell recency 1, frequency 5 has no group",
    ),
    "rfm overlap": (
        LINES_SOURCE + 'rfm_groups = [{ name = "All", recency = [1, 5], frequency = [1, 5] }, '
        '{ name = "Top", recency = [5, 5], frequency = [5, 5] }]\n',
        "the cell recency 5, frequency 5 has 2 groups (['All', 'Top'])",
    ),
    "rfm score": (
        LINES_SOURCE + 'rfm_groups = [{ name = "All", recency = [0, 5], frequency = [1, 5] }]\n',
        "key 'transactions.rfm_groups[0].recency' must be [lowest, highest] scores within 1..5",
    ),
    "frequency": (
        LINES_SOURCE + 'frequency = "days"\n',
        "key 'transactions.frequency' must be 'orders' or 'purchase_days', got 'days'",
    ),
    "unmatched": (
        LINES_SOURCE + 'unmatched_returns = "keep"\n',
        "key 'transactions.unmatched_returns' must be 'exclude' or 'subtract', got 'keep'",
    ),
    "codes without products": (
        LINES_SOURCE.replace('product_id = ["Product"]\n', "").replace(
            'exclude_products = ["POST"]', 'non_product_codes = ["POST"]'
        ),
        "key 'transactions.non_product_codes' lists product codes, but "
        "'sources.transactions.columns' maps no 'product_id'",
    ),
    "role kind": (
        LINES_SOURCE + '\n[sources.transactions.kinds]\nquantity = "integer"\n',
        "'quantity' is a canonical transactions column, whose kind is fixed",
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIG_MISTAKES))
def test_transaction_config_mistakes_name_their_key(tmp_path: Path, name: str) -> None:
    source, message = CONFIG_MISTAKES[name]
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, WAREHOUSE + source + RFM_FEATURES))
    assert message in str(error.value)


def test_order_features_need_order_lines(tmp_path: Path) -> None:
    customers_only = """
[sources.customers]
[sources.customers.columns]
customer_id = ["id"]
age = ["Age"]
[rules.ranges]
age = { min = 0, max = 120 }
"""
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, WAREHOUSE + customers_only + RFM_FEATURES))
    assert "or order aggregates of sources.transactions" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(
            _config(
                tmp_path,
                WAREHOUSE
                + customers_only
                + "[transactions]\ncancellation_prefix = 'X'\n"
                + RFM_FEATURES,
            )
        )
    assert (
        "'transactions.cancellation_prefix' takes effect only with a 'sources.transactions'"
        in str(error.value)
    )


def test_generated_order_lines_are_accounted_for(tmp_path: Path) -> None:
    """The benchmark's generator: several files, five kinds of dirty line, each counted."""
    from benchmarks.generate_lines import lines_workspace

    made = lines_workspace(tmp_path / "w", 30_000, seed=11, dirty_rate=0.05, lines_per_file=12_000)
    assert len(made.files) == 3
    code = copy_project(tmp_path / "project")
    done = code.run("--config", str(tmp_path / "w" / "pipeline.toml"), "run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(tmp_path / "w" / "segments.duckdb"), read_only=True) as con:
        ((raw, staged, rejected, collapsed, balanced),) = con.sql(
            "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
            "from staging.stg_transactions_reconciliation"
        ).fetchall()
        reasons = dict(
            con.sql(
                "select reason, count(*) from staging.stg_transactions_rejected, "
                "unnest(reasons) as r(reason) group by all"
            ).fetchall()
        )
    assert (raw, staged, rejected, collapsed) == (
        made.raw_rows,
        made.staged_rows,
        made.rejected_rows,
        made.collapsed_rows,
    )
    assert balanced
    per_kind = made.no_customer
    assert reasons["customer_id is missing"] == per_kind
    assert reasons["order_date 'not a date' is not a date"] == per_kind
    assert reasons["quantity is zero"] == per_kind
    assert reasons["unit_price -1.25 is negative"] == per_kind
    assert sum(reasons.values()) == made.rejected_rows  # one reason per dirty line


def test_a_column_comes_from_one_source(tmp_path: Path) -> None:
    both = LINES_SOURCE.replace(
        'country = ["Country"]', 'country = ["Country"]\nregion = ["Region"]'
    )
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, WAREHOUSE + both + JOINED))
    assert "maps ['region'], which 'sources.customers.columns' maps too" in str(error.value)
    clash = LINES_SOURCE.replace('country = ["Country"]', 'monetary = ["Total"]')
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, WAREHOUSE + clash + RFM_FEATURES))
    assert "a source maps ['monetary'], which int_customer_orders computes" in str(error.value)


def test_what_counts_as_a_purchase_order(tmp_path: Path) -> None:
    """Issue 29's cases, worked by hand: an order cancelled in full is no purchase (and moves no
    recency), a partly returned one is; a return of something bought before the data is left out
    of monetary; postage alone is no order; an order of free items is none either."""
    source = LINES_SOURCE.replace('exclude_products = ["POST"]', 'non_product_codes = ["POST"]')
    copy = _project(tmp_path, WAREHOUSE + source + RFM_FEATURES)
    day = "2023-{}-{} 10:00:00"
    rows = [
        # 1: bought in March; bought 10 x P1 in June and cancelled all of it the same day.
        ["1001", "P2", "1", day.format("03", "01"), "5.00", "1", "UK", ""],
        ["1002", "P1", "10", day.format("06", "01"), "2.00", "1", "UK", ""],
        ["C1003", "P1", "-10", day.format("06", "01").replace("10:", "11:"), "2.00", "1", "UK", ""],
        # 2: bought 4 x P1 and 1 x P3 in May, returned 3 x P1 in July: the order stands.
        ["1004", "P1", "4", day.format("05", "02"), "2.00", "2", "UK", ""],
        ["1004", "P3", "1", day.format("05", "02"), "7.00", "2", "UK", ""],
        ["C1005", "P1", "-3", day.format("07", "02"), "2.00", "2", "UK", ""],
        # 3: returns 2 x P4 in January, bought nothing of it since; buys P5 twice on one day.
        ["C1006", "P4", "-2", day.format("01", "03"), "6.00", "3", "UK", ""],
        ["1007", "P5", "1", day.format("02", "03"), "9.00", "3", "UK", ""],
        ["1008", "P5", "1", day.format("02", "03").replace("10:", "15:"), "9.00", "3", "UK", ""],
        ["1008", "POST", "1", day.format("02", "03").replace("10:", "15:"), "3.50", "3", "UK", ""],
        # 4: postage alone; 5: free items alone.
        ["1009", "POST", "1", day.format("04", "04"), "3.50", "4", "UK", ""],
        ["1010", "P6", "2", day.format("04", "05"), "0.00", "5", "UK", ""],
    ]
    filler = _clean_lines(random.Random(29), range(100, 160), 500000)
    _write(copy, "a.csv", _csv(rows + filler))
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    got = copy.frame(
        "select customer_id, orders, purchase_days, cancelled_orders, monetary, "
        "last_purchase_date, unmatched_return_value, non_product_value, return_value "
        "from intermediate.int_customer_orders where customer_id <= 5 order by 1"
    ).set_index("customer_id")
    assert got["orders"].tolist() == [1, 1, 2, 0, 0]
    assert got["purchase_days"].tolist() == [1, 1, 1, 0, 0]
    assert got["cancelled_orders"].tolist() == [1, 0, 0, 0, 0]
    assert got["monetary"].tolist() == [5.0, 9.0, 18.0, 0.0, 0.0]
    assert got["return_value"].tolist() == [20.0, 6.0, 0.0, 0.0, 0.0]
    assert got["unmatched_return_value"].tolist() == [0.0, 0.0, 12.0, 0.0, 0.0]
    assert got["non_product_value"].tolist() == [0.0, 0.0, 3.5, 3.5, 0.0]
    assert got.loc[1, "last_purchase_date"] == datetime.date(2023, 3, 1)
    assert copy.query(
        "select customer_id, unsegmented_reason from intermediate.int_customer_profiles "
        "where customer_id <= 5 order by 1"
    ) == [
        (1, None),
        (2, None),
        (3, None),
        (4, "no purchase: only non-product lines (transactions.non_product_codes)"),
        (5, "no purchase: only lines of zero value"),
    ]


def test_an_export_configured_by_its_columns_alone_gets_readable_names(dirty_build) -> None:
    """No features.labels, no feature_words: names use the order aggregates' own words, never
    column names such as 'Low recency_days'."""
    copy, _, _ = dirty_build
    words = {
        "Recent", "Lapsed", "Occasional", "Frequent", "Low value", "High value", "Average",
    }  # fmt: skip
    names = [r[0] for r in copy.query("select segment_name from marts.dim_segments")]
    used = {w for name in names for w in name.split(" (segment")[0].split(" · ")}
    assert used <= words, names
    labels = dict(copy.query("select feature, label from config.features"))
    assert labels == {
        "recency_days": "Recency (days)",
        "frequency": "Purchases",
        "monetary": "Net value",
    }
