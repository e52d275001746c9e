"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) opens it from disk, with no
network, and the page must render without an error, with every chart drawn, and the rates the summary
MeasureReports give.

``FHIR_CAT2_UPDATE_SCREENSHOT=1`` rewrites docs/report-fixtures.png (the README's screenshot) from the
fixtures' report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_cat2.cli import main
from fhir_cat2.rules.loader import read_table
from tests.conftest import ROOT, shared_path
from tests.support.chromium import Browser, require_chromium

SCREENSHOT = ROOT / "docs" / "report-fixtures.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    instance = Browser(require_chromium())
    yield instance
    instance.close()


def _run_and_report(source: Path, folder: Path, *extra: str) -> tuple[Path, Path]:
    run = folder / "run"
    assert main(["replay", str(source), "--out", str(run), "--report", "both", *extra]) in (0, 1)
    page = folder / "report.html"
    assert main(["report", str(run), "--html", str(page)]) == 0
    return run, page


def _summary_scores(run: Path) -> dict[tuple[str, str], float | None]:
    catalogue = {m.url: m.id for m in read_table().measures if m.url}
    scores: dict[tuple[str, str], float | None] = {}
    for line in (run / "MeasureReport.ndjson").read_bytes().splitlines():
        report: dict[str, Any] = orjson.loads(line)
        if report["type"] != "summary":
            continue
        measure = catalogue[report["measure"].split("|")[0]]
        for group in report["group"]:
            scores[(measure, group["id"])] = group.get("measureScore", {}).get("value")
    return scores


def _check_page(browser: Browser, run: Path, page: Path) -> dict[str, Any]:
    browser.open(page)
    assert browser.errors == []  # no console error, no exception, no blocked load
    state: dict[str, Any] = browser.evaluate(
        """(() => {
          const charts = [...document.querySelectorAll('figure.chart')].map(f => {
            const svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : null;
            return {id: f.dataset.chart, drawn: !!box && box.width > 100 && box.height > 50,
                    bars: svg ? svg.querySelectorAll('.rect, .line, .dot').length : 0};
          });
          const sections = [...document.querySelectorAll('section.measure')].map(s => s.id);
          const rates = [...document.querySelectorAll('td.rate')].map(
            td => [td.dataset.measure, td.dataset.group, td.textContent.trim()]);
          return {charts, sections, rates, title: document.title};
        })()"""
    )
    scores = _summary_scores(run)
    measures = {measure for measure, _ in scores}
    assert set(state["sections"]) == measures
    charts = {chart["id"]: chart for chart in state["charts"]}
    assert charts["overview"]["drawn"]
    for measure in measures:
        assert charts[f"trend-{measure}"]["drawn"], measure
    for chart in state["charts"]:
        assert chart["drawn"], chart["id"]
    shown: dict[tuple[str, str], set[str]] = {}
    for measure, group, text in state["rates"]:
        shown.setdefault((measure, group), set()).add(text)
    for key, score in scores.items():
        expected = "no rate" if score is None else f"{100 * score:.1f}%"
        assert shown[key] == {expected}, key
    return state


def test_fixtures_report_in_chromium(browser: Browser, tmp_path: Path) -> None:
    run, page = _run_and_report(ROOT / "fixtures", tmp_path, "--period", "2025")
    state = _check_page(browser, run, page)
    assert len(state["sections"]) >= 25
    assert browser.print_pdf().startswith(b"%PDF")  # it prints
    if os.environ.get("FHIR_CAT2_UPDATE_SCREENSHOT") == "1":
        browser.screenshot(SCREENSHOT, height=1500)


def test_synthea_report_in_chromium_stratified_by_clinician(browser: Browser, tmp_path: Path) -> None:
    corpus = shared_path("corpus", "smart-synthea-r4")
    run, page = _run_and_report(corpus, tmp_path)
    _check_page(browser, run, page)
    text = browser.evaluate("document.body.innerText")
    assert "by clinician" in text and "by organization" in text  # Synthea records both on its encounters


def test_screenshot_is_committed() -> None:
    assert SCREENSHOT.is_file() and SCREENSHOT.read_bytes().startswith(b"\x89PNG")
    assert "docs/report-fixtures.png" in (ROOT / "README.md").read_text()
