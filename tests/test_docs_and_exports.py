"""Lineage docs, table and column comments in DuckDB, and file exports of the marts."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from engine.warehouse.exports import export_layer

from conftest import ProjectCopy


def test_every_table_carries_its_description_for_bi_tools(built_sample: ProjectCopy) -> None:
    missing = built_sample.query(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where comment is null or comment = ''"
    )
    assert missing == []
    (comment,) = built_sample.query(
        "select comment from duckdb_columns() "
        "where schema_name = 'marts' and table_name = 'dim_segments' and column_name = 'segment_id'"
    )[0]
    assert "stable" in comment.lower()


def test_every_published_column_carries_a_description(built_sample: ProjectCopy) -> None:
    assert built_sample.undescribed_columns() == []
    comments = dict(
        built_sample.query(
            "select table_name || '.' || column_name, comment from duckdb_columns() "
            "where schema_name in ('ml', 'marts', 'staging')"
        )
    )
    # Generated per column from the declaration and the template, not one text for all.
    assert comments["stg_customers_checked.age"].startswith(
        "age, typed (integer from 15.0 to 100.0, required, a feature)"
    )
    assert comments["dim_segments.annual_income_k_q3"] == (
        "Third quartile of Annual income (k$) in the segment"
    )
    # A column passed through keeps the description it had upstream.
    assert comments["stg_customers.age"] == comments["stg_customers_checked.age"]


def test_docs_list_every_model_with_lineage_expectations_and_last_run(
    built_sample: ProjectCopy, tmp_path
) -> None:
    done = built_sample.run("docs", "--output", str(tmp_path / "docs"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text())["models"]
    assert len(manifest) == built_sample.model_count()
    customers = manifest["marts.dim_customers"]
    profile = "intermediate.int_customer_profiles"
    assert customers["columns"]["customer_id"]["lineage"] == [f"{profile}.customer_id"]
    assert customers["columns"]["segment_id"]["lineage"] == ["ml.customer_segments.segment_id"]
    assert set(customers["inputs"]) == {
        profile,
        "ml.customer_segments",
        "ml.customer_value_predictions",
        "marts.rfm_scores",
    }
    assert customers["columns"]["rfm_group"]["lineage"] == ["marts.rfm_scores.rfm_group"]
    assert customers["columns"]["customer_lifetime_value"]["lineage"] == [
        "ml.customer_value_predictions.customer_lifetime_value"
    ]
    assert set(manifest[profile]["columns"]["customer_id"]["lineage"]) == {
        "staging.stg_customers.customer_id",
        "intermediate.int_customer_orders.customer_id",
    }
    assert (
        "staging.stg_customers" in manifest["raw.customers"]["outputs"]
        or manifest["raw.customers"]["outputs"]
    )
    assert any(e["type"] == "expect_column_values_to_be_unique" for e in customers["expectations"])
    assert customers["last_run"]["status"] == "success"
    assert customers["last_run"]["rows"] == 200
    unresolved = [
        (table, column, source)
        for table, model in manifest.items()
        for column, facts in model["columns"].items()
        for source in facts.get("lineage", [])
        if source.split(".")[0] not in {"config", "raw", "staging", "intermediate", "ml", "marts"}
    ]
    assert unresolved == []
    reconciliation = manifest["staging.stg_customers_reconciliation"]["columns"]
    assert reconciliation["raw_rows"]["lineage"] == ["raw.customers.*"]  # a count of its rows
    results = manifest["ml.ab_segment_results"]["columns"]
    assert len(results) > 40 and all(c["description"] for c in results.values())
    page = (tmp_path / "docs" / "index.html").read_text()
    assert "data:image/png;base64," in page and "id='marts.dim_customers'" in page


def test_exports_equal_the_marts_and_leave_no_partial_files(
    built_sample: ProjectCopy, tmp_path
) -> None:
    for file_format in ("parquet", "csv"):
        folder = tmp_path / file_format
        done = built_sample.run("export", "--format", file_format, "--output", str(folder))
        assert done.returncode == 0, done.stderr
        marts = {
            r[0]
            for r in built_sample.query(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            )
        }
        assert {p.stem for p in folder.iterdir()} == marts
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]
        with duckdb.connect(str(built_sample.warehouse), read_only=True) as con:
            expected = con.sql("select * from marts.dim_segments order by segment_id").df()
        if file_format == "parquet":
            actual = pd.read_parquet(folder / "dim_segments.parquet")
        else:
            actual = pd.read_csv(folder / "dim_segments.csv")
        pd.testing.assert_frame_equal(
            actual.sort_values("segment_id").reset_index(drop=True),
            expected,
            check_dtype=False,
        )


def test_an_export_is_sorted_whatever_order_the_table_is_stored_in(tmp_path) -> None:
    """Two warehouses holding the same rows in different orders export the same files."""
    exported = []
    for name, order in (("ascending", "x"), ("shuffled", "hash(x)")):
        warehouse = tmp_path / f"{name}.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create schema marts")
            con.execute(
                "create table marts.t as select x, x % 7 as y from range(5000) as r(x) "
                f"order by {order}"
            )
        folder = tmp_path / name
        export_layer(warehouse, "marts", "csv", folder)
        exported.append((folder / "t.csv").read_text())
    assert exported[0] == exported[1]
    assert pd.read_csv(tmp_path / "shuffled" / "t.csv")["x"].tolist() == list(range(5000))
