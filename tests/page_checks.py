"""A page looked at as a reader would, in headless Chromium: at a desktop and a phone width,
every collapsible section opened, anything that runs out of its box or over other text named.

Used by the report and docs tests; screenshots go to SCREENSHOTS for a reviewer to look at."""

from __future__ import annotations

import base64
import os
from itertools import combinations
from pathlib import Path
from typing import Any
from unittest import mock

from matplotlib.figure import Figure
from matplotlib.text import Text
from selenium import webdriver

WIDTHS = (1400, 390)  # a desktop browser and a phone
# Screenshots a reviewer can open after the run (the CI log names the folder).
SCREENSHOTS = Path(
    os.environ.get("REPORT_SCREENSHOTS", Path(__file__).parent.parent / "test-output")
)
# Taller pages are cut: the top is what a reader sees first.
SCREENSHOT_HEIGHT = 8000

PROBLEMS = """
const width = document.documentElement.clientWidth;
const problems = [];
const name = (el) => el.tagName.toLowerCase() + ': ' + (el.textContent || el.alt || '')
    .trim().slice(0, 60);
if (document.documentElement.scrollWidth > width + 1) {
  problems.push(`the page is ${document.documentElement.scrollWidth}px wide at ${width}px`);
}
for (const el of document.querySelectorAll('body *')) {
  const inBox = el.parentElement.closest('.scroll, pre');
  if (inBox) continue;  // a box that scrolls sideways clips what it holds, by design
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;
  if (box.right > width + 1) problems.push(`${name(el)} reaches ${Math.round(box.right)}px`);
  const overflow = getComputedStyle(el).overflowX;
  if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 &&
      !['auto', 'scroll'].includes(overflow)) {
    problems.push(`${name(el)}: its text is ${el.scrollWidth}px in a ${el.clientWidth}px box`);
  }
}
// Every line of every text, as the browser laid it out; two that share pixels overlap.
const lines = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.textContent.trim()) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  for (const r of range.getClientRects()) {
    if (r.width > 0 && r.height > 0) lines.push({r, node});
  }
}
lines.sort((a, b) => a.r.top - b.r.top);
for (let i = 0; i < lines.length; i++) {
  const a = lines[i].r;
  for (let j = i + 1; j < lines.length && lines[j].r.top < a.bottom - 1; j++) {
    const b = lines[j].r;
    if (lines[i].node === lines[j].node) continue;
    const across = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const down = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (across > 1 && down > 1) {
      problems.push(`"${lines[i].node.textContent.trim().slice(0, 40)}" overlaps ` +
                    `"${lines[j].node.textContent.trim().slice(0, 40)}"`);
    }
  }
}
return problems;
"""


def open_at(driver: webdriver.Chrome, url: str, width: int) -> None:
    """The page as a device of this width shows it (a phone honours the page's viewport), with
    every collapsible section open."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800},
    )
    driver.get(url)
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")


def layout_problems(driver: webdriver.Chrome) -> list[str]:
    return driver.execute_script(PROBLEMS)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    height = min(
        driver.execute_script("return document.documentElement.scrollHeight"), SCREENSHOT_HEIGHT
    )
    width = driver.execute_script("return document.documentElement.clientWidth")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def drawn_text(figure: Figure) -> list[Text]:
    """The texts a draw of the figure really draws (matplotlib keeps tick labels it skips)."""
    drawn: list[Text] = []
    draw = Text.draw

    def recording(text: Text, renderer: Any) -> None:
        drawn.append(text)
        draw(text, renderer)

    with mock.patch.object(Text, "draw", recording):
        figure.canvas.draw()
    return drawn


def figure_text_problems(figure: Figure) -> list[str]:
    """Text a figure cuts at its edge or draws over other text, from the boxes the renderer
    lays out."""
    texts = [t for t in drawn_text(figure) if t.get_visible() and t.get_text().strip()]
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    edge = figure.bbox
    problems = [
        f"{said!r} is cut at the figure's edge"
        for said, box in boxes
        if box.x0 < edge.x0 - 1
        or box.x1 > edge.x1 + 1
        or box.y0 < edge.y0 - 1
        or box.y1 > edge.y1 + 1
    ]
    for (said, box), (other, second) in combinations(boxes, 2):
        across = min(box.x1, second.x1) - max(box.x0, second.x0)
        down = min(box.y1, second.y1) - max(box.y0, second.y0)
        if across > 1 and down > 1:
            problems.append(f"{said!r} overlaps {other!r}")
    return problems
