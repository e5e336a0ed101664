"""The HTML report, opened in a real headless Chromium: images decode, no console errors, and the
headline numbers on the page are the warehouse's."""

from __future__ import annotations

import base64
import re

import pytest
from page_checks import open_at
from selenium import webdriver

from conftest import ProjectCopy


@pytest.fixture
def page(built_sample: ProjectCopy, browser: webdriver.Chrome) -> webdriver.Chrome:
    report = built_sample.warehouse.with_name("report.html")
    assert report.exists(), "a successful run writes the report"
    open_at(browser, report.as_uri(), 1400)
    return browser


def test_every_image_decodes_and_the_console_is_clean(page: webdriver.Chrome) -> None:
    images = page.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);"
    )
    assert len(images) >= 8
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert broken == []
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert page.execute_script("return document.querySelectorAll('img[src^=\"http\"]').length") == 0


def _headline(page: webdriver.Chrome, key: str) -> str:
    return page.execute_script(
        "return document.querySelector(`[data-key='${arguments[0]}']`).textContent;", key
    )


def test_headline_numbers_equal_the_warehouse(
    page: webdriver.Chrome, built_sample: ProjectCopy
) -> None:
    (staged,) = built_sample.query("select count(*) from staging.stg_customers")[0]
    assert _headline(page, "customers_staged") == f"{staged:,}"
    (k,) = built_sample.query("select k from ml.segment_model_selection where is_chosen")[0]
    assert _headline(page, "chosen_k") == str(k)
    (importance,) = built_sample.query(
        "select importance from ml.feature_importance "
        "where scope = 'all' and method = 'permutation' order by rank limit 1"
    )[0]
    assert float(_headline(page, "top_feature_importance")) == pytest.approx(importance, abs=0.005)
    (fidelity,) = built_sample.query(
        "select nested_cv_fidelity from ml.surrogate_fidelity where is_chosen and scope = 'all'"
    )[0]
    assert float(_headline(page, "surrogate_fidelity").rstrip("%")) == pytest.approx(
        100 * fidelity, abs=0.05
    )
    for experiment, decision, source in built_sample.query(
        "select experiment, decision, source from marts.ab_experiment_summary"
    ):
        assert _headline(page, f"ab_decision_{experiment}") == decision
        # A simulated experiment's decision says so in the value itself.
        assert decision.startswith("simulated: ") == (source == "simulation")
    (passed,) = built_sample.query(
        "select count(*) filter (where success) from meta.expectation_results"
    )[0]
    assert _headline(page, "expectations_passed") == f"{passed:,}"


def test_report_command_rewrites_the_report(built_sample: ProjectCopy, tmp_path) -> None:
    output = tmp_path / "again.html"
    done = built_sample.run("report", "--output", str(output))
    assert done.returncode == 0, done.stderr
    text = output.read_text()
    assert text.startswith("<!doctype html>") and "data:image/png;base64," in text


def test_figures_drawn_by_forked_workers_give_the_page_drawn_in_one_process(
    built_sample: ProjectCopy, tmp_path
) -> None:
    """The figures are drawn side by side after the page asks for them: each must land in its
    own place, the same bytes as drawing it here on its own."""
    from reporting import figures
    from reporting.report import read_tables, render, write_report
    from reporting.story import feature_labels

    forked = write_report(built_sample.warehouse, tmp_path / "forked.html", workers=2)
    t = read_tables(built_sample.warehouse)
    in_one_process = render(t)
    assert forked.read_text() == in_one_process
    images = r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"'
    drawn = dict(re.findall(images, in_one_process))
    experiments = sorted(t["ab"]["experiment"].unique())
    assert len(experiments) >= 2, "the sample simulates two experiments"
    on_its_own = {
        "k selection curves": figures.k_selection(t["selection"]),
        "feature importances": figures.importances(t["importance"], feature_labels(t)),
        "run history": figures.run_history(t["runs"]),
    } | {f"forest plot {e}": figures.forest_plot(t["ab"], e) for e in experiments}
    assert len(drawn) >= 8
    for alt, png in on_its_own.items():
        assert base64.b64decode(drawn[alt]) == png, alt


def test_at_1400px_no_table_overflows_and_the_run_is_the_latest(
    page: webdriver.Chrome, built_sample: ProjectCopy
) -> None:
    width, overflowing, headings = page.execute_script(
        "const w = document.documentElement.clientWidth;"
        "const tables = Array.from(document.querySelectorAll('table'));"
        "return [w,"
        " tables.filter(t => t.getBoundingClientRect().right > w)"
        "  .map(t => t.outerHTML.slice(0, 80)),"
        " Array.from(document.querySelectorAll('th')).map(th => th.textContent)];"
    )
    assert width > 1300
    assert overflowing == []
    assert page.execute_script("return document.documentElement.scrollWidth") <= width
    assert headings and not [h for h in headings if "_" in h]  # words, not column names
    (latest,) = built_sample.query(
        "select run_id from meta.runs where status = 'success' order by started_at desc limit 1"
    )[0]
    assert _headline(page, "run_id") == latest


def test_the_order_lines_report_fits_and_shows_the_rfm_cross_tab(
    built_example: ProjectCopy, browser: webdriver.Chrome
) -> None:
    open_at(browser, (built_example.root / "warehouse" / "report.html").as_uri(), 1400)
    width, overflowing, sections = browser.execute_script(
        "const w = document.documentElement.clientWidth;"
        "return [w,"
        " Array.from(document.querySelectorAll('table'))"
        "  .filter(t => t.getBoundingClientRect().right > w).map(t => t.outerHTML.slice(0, 80)),"
        " Array.from(document.querySelectorAll('h2')).map(h => h.textContent)];"
    )
    assert (
        overflowing == []
        and browser.execute_script("return document.documentElement.scrollWidth") <= width
    )
    assert "RFM groups" in sections
    ((staged,),) = built_example.query(
        "select staged_rows from staging.stg_transactions_reconciliation"
    )
    assert _headline(browser, "lines_staged") == f"{staged:,}"  # thousands separated
    ((unsegmented,),) = built_example.query(
        "select count(*) from intermediate.int_customer_profiles where not is_segmented"
    )
    assert _headline(browser, "customers_unsegmented") == f"{unsegmented:,}"
    champions = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr')).map(r => r.textContent)"
        ".filter(t => t.trim().startsWith('Champions')).length"
    )
    assert champions == 2  # its row in the group table and in the cross-tab
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_the_run_history_leaves_no_op_refreshes_out(project: ProjectCopy) -> None:
    """A no-op refresh took no build time: drawn at 0 s it made a dip no build had."""
    from reporting.figures import timed_builds

    assert project.run("run", "-q", "--no-report").returncode == 0
    assert "no-op" in project.run("run", "-q", "--no-report").stdout
    runs = project.frame("select run_id, status, started_at, seconds from meta.runs")
    assert sorted(runs["status"]) == ["no-op", "success"]
    plotted = timed_builds(runs)
    assert list(plotted["status"]) == ["success"]
    assert (plotted["seconds"] > 0).all()


def test_the_scatter_draws_the_largest_segment_first_so_none_is_hidden() -> None:
    import pandas as pd

    from reporting.figures import draw_order

    customers = pd.DataFrame(
        {"segment_name": ["Small"] * 5 + ["Average"] * 40 + ["Big spenders"] * 12 + ["Tiny"] * 5}
    )
    assert draw_order(customers) == ["Average", "Big spenders", "Small", "Tiny"]


def test_expectations_are_one_line_and_only_the_ones_that_did_not_pass() -> None:
    import pandas as pd

    from reporting.report import expectations_section

    checks = pd.DataFrame(
        {
            "table_name": ["staging.a"] * 3 + ["marts.b"] * 2,
            "column_name": ["x", "y", "z", "w", "v"],
            "expectation_type": ["expect_column_values_to_not_be_null"] * 5,
            "severity": ["error", "error", "warning", "error", "error"],
            "success": [True, True, False, True, True],
            "observed_value": [None, None, "200", None, None],
        }
    )
    page = expectations_section(checks)
    assert "5 expectations on 2 tables: 4 passed, 1 warned, 0 failed." in page
    assert page.count("</tr>") == 2  # the header and the one warned expectation
    assert ">z</td>" in page and ">x</td>" not in page
    assert "<table" not in expectations_section(checks.assign(success=True))


def test_skewed_features_are_drawn_on_a_log_scale_with_readable_ticks() -> None:
    from reporting.figures import _readable, log_ticks

    assert log_ticks(1, 280_000) == [1, 10, 100, 1_000, 10_000, 100_000]
    assert log_ticks(0, 950) == [0, 1, 10, 100]
    assert log_ticks(3.5, 99) == [10]
    assert [_readable(v) for v in (100_000, 150_000, 2.5, 0)] == ["100,000", "150,000", "2.5", "0"]


def test_the_scatter_says_which_features_it_cannot_show(
    browser: webdriver.Chrome, built_sample: ProjectCopy
) -> None:
    """The sample has three features and the scatter two: the one left out is named, so that
    'Younger' and 'Older' lying on top of each other is not read as one group."""
    open_at(browser, built_sample.warehouse.with_name("report.html").as_uri(), 1400)
    shown = [
        r[0]
        for r in built_sample.query(
            "select feature from ml.feature_importance where scope = 'all' and "
            "method = 'permutation' order by rank, feature limit 2"
        )
    ]
    labels = dict(built_sample.query("select feature, label from config.features"))
    hidden = [labels[f] for f in labels if f not in shown]
    text = browser.execute_script("return document.body.textContent;")
    assert f"Not shown: {', '.join(hidden)}; segments that differ on it overlap here." in text
    assert f"Customers by {labels[shown[1]]} against {labels[shown[0]]}" in text


def test_lifts_read_in_percentage_points_or_the_amounts_unit() -> None:
    from reporting.tables import count, decimal, lift, percent

    assert lift(0.0516, "share") == "+5.16 pp"
    assert lift(-0.003, "share") == "−0.30 pp"
    assert lift(3.34, "$") == "+$3.34" and lift(-3.34, "£") == "−£3.34"
    assert lift(2.5, "points") == "+2.5 points" and lift(1.25, "") == "+1.25"
    assert [count(401604), percent(0.4705), decimal(5108.23), decimal(3.67e-32)] == [
        "401,604",
        "47.0%",
        "5,108",
        "< 0.0001",
    ]
