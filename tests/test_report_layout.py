"""The reports and the docs page as a reader sees them, in headless Chromium at a desktop and a
phone width: nothing runs out of its box or over other text, no chart is wider than the page,
every chart draws its text whole, and values come with the units config declares. Screenshots
of each are kept in page_checks.SCREENSHOTS."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from page_checks import WIDTHS, figure_text_problems, layout_problems, open_at, screenshot
from selenium import webdriver

from engine.project import units
from reporting import figures, report

from conftest import ProjectCopy

REPORTS = ("sample", "online_retail", "cdnow")


@pytest.fixture(params=REPORTS)
def built(request: pytest.FixtureRequest) -> tuple[str, ProjectCopy]:
    fixture = {"sample": "built_sample", "online_retail": "built_example", "cdnow": "built_cdnow"}
    return request.param, request.getfixturevalue(fixture[request.param])


def _report(project: ProjectCopy) -> Path:
    return project.warehouse.with_name("report.html")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_report_reads_at_desktop_and_phone_width(
    built: tuple[str, ProjectCopy], width: int, browser: webdriver.Chrome
) -> None:
    name, project = built
    open_at(browser, _report(project).as_uri(), width)
    # The page declares its viewport, so a phone lays it out at its own width.
    assert browser.execute_script("return document.documentElement.clientWidth") <= width
    problems = layout_problems(browser)
    shot = screenshot(browser, f"report-{name}-{width}px")
    assert problems == [], f"see {shot}"
    h2 = browser.execute_script(
        "return [...document.querySelectorAll('h2')].map(h => h.textContent)"
    )
    assert h2[0] == "In short" and "Run history" in h2  # the story first, the detail after


@pytest.mark.parametrize("width", WIDTHS)
def test_the_docs_page_reads_at_desktop_and_phone_width(
    built_sample: ProjectCopy, width: int, browser: webdriver.Chrome, tmp_path_factory
) -> None:
    folder = tmp_path_factory.mktemp("docs")
    assert built_sample.run("docs", "--output", str(folder)).returncode == 0
    open_at(browser, (folder / "index.html").as_uri(), width)
    assert browser.execute_script("return document.documentElement.clientWidth") <= width
    problems = layout_problems(browser)
    shot = screenshot(browser, f"docs-{width}px")
    assert problems == [], f"see {shot}"


def test_every_chart_draws_its_text_whole_and_apart(
    built: tuple[str, ProjectCopy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each figure as the report renders it: no text cut at its edge, no two texts on each
    other (tick labels, leaf boxes of the tree, legends, titles)."""
    found: list[tuple[str, list[str]]] = []
    render_png = figures._png

    def checked(figure: plt.Figure) -> bytes:
        figure.tight_layout()
        titles = " / ".join(a.get_title() or a.get_xlabel() for a in figure.axes)
        found.append((titles, figure_text_problems(figure)))
        return render_png(figure)

    monkeypatch.setattr(figures, "_png", checked)
    report.render(report.read_tables(built[1].warehouse))
    assert len(found) >= 7
    assert [(title, p) for title, p in found if p] == []


def test_values_carry_the_unit_config_declares(
    built: tuple[str, ProjectCopy], browser: webdriver.Chrome
) -> None:
    """Every segment mean of a feature with a unit is written with it, in the story and in the
    segments table; the CDNOW and Online Retail value tables are in their currency."""
    name, project = built
    open_at(browser, _report(project).as_uri(), 1400)
    declared = {
        label: unit
        for label, unit in project.query("select label, unit from config.features where unit <> ''")
    }
    assert declared, "each shipped project declares a unit for some feature"
    cells = browser.execute_script(
        "const out = {};"
        "for (const table of document.querySelectorAll('table')) {"
        "  const heads = [...table.querySelectorAll('th')].map(h => h.textContent);"
        "  for (const row of table.querySelectorAll('tbody tr')) {"
        "    [...row.children].forEach((c, i) => {"
        "      (out[heads[i]] = out[heads[i]] || []).push(c.textContent); }); } }"
        "return out;"
    )
    for label, unit in declared.items():
        means = cells[f"{label}: mean"]
        assert means and all(unit in value for value in means), (label, means)
    for text in cells["what sets it apart (mean)"]:
        for label, unit in declared.items():
            bare = label.removesuffix(f"({unit})").strip()
            if f"{bare} " in text:
                part = text.split(f"{bare} ", 1)[1].split(";")[0]
                assert part.count(unit) == 2, (label, text)  # the segment's and everyone's
    if name != "sample":
        money = [u for u in declared.values() if units.is_money(u)]
        assert money and all(money[0] in v for v in cells["total lifetime value"])


LAYOUT_FAULTS = """<!doctype html><html><head>
<meta name='viewport' content='width=device-width, initial-scale=1'></head><body>
<p style="position:relative">First label<span style="position:absolute;left:10px;top:2px">
Second label</span></p>
<div style="width:100px;white-space:nowrap;overflow:hidden">a line that cannot fit</div>
<table style="width:900px"><tr><td>a wide table outside a scroll box</td></tr></table>
<div class="scroll" style="overflow-x:auto"><table style="width:2000px"><tr><td>scrolls</td>
</tr></table></div></body></html>"""


def test_the_layout_check_finds_overlap_overflow_and_a_page_too_wide(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    page = tmp_path / "faults.html"
    page.write_text(LAYOUT_FAULTS)
    open_at(browser, page.as_uri(), 1400)
    desktop = layout_problems(browser)
    assert any("overlaps" in p and "Second label" in p for p in desktop)
    assert any("a line that cannot fit" in p and "100px box" in p for p in desktop)
    assert not any("scrolls" in p for p in desktop)  # inside a scroll box: fine
    open_at(browser, page.as_uri(), 390)
    phone = layout_problems(browser)
    assert any(p.startswith("the page is") for p in phone)
    assert any("a wide table outside a scroll box reaches" in p for p in phone)


def test_the_chart_check_finds_cut_and_overlapping_text() -> None:
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.text(0.5, 0.5, "one label", transform=axis.transAxes)
    axis.text(0.52, 0.52, "another label", transform=axis.transAxes)
    figure.text(0.8, 0.5, "runs off the right edge of the figure")
    axis.set_xlim(0, 10)
    figure.tight_layout()
    problems = figure_text_problems(figure)
    plt.close(figure)
    assert "'one label' overlaps 'another label'" in problems
    assert "'runs off the right edge of the figure' is cut at the figure's edge" in problems
    assert not [p for p in problems if "'10'" in p or "'0'" in p]  # the ticks are fine
