"""fhir-cat2 report: the quality team's HTML page, read as text (tests/test_report_browser.py opens it in
Chromium)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_cat2.cli import main
from fhir_cat2.rules.loader import read_table
from tests.conftest import ROOT, bp_panel, condition, encounter, patient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def replay(source: Path, out: Path, *extra: str) -> Path:
    code = main(["replay", str(source), "--out", str(out), "--report", "both", *extra])
    assert code in (0, 1)
    return out


@pytest.fixture(scope="module")
def fixtures_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replay(ROOT / "fixtures", tmp_path_factory.mktemp("run") / "2025", "--period", "2025")


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replay(ROOT / "fixtures", tmp_path_factory.mktemp("run") / "2024", "--period", "2024")


def report(tmp_path: Path, *runs: Path, extra: tuple[str, ...] = ()) -> str:
    out = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "--html", str(out), *extra]) == 0
    return out.read_text(encoding="utf-8")


def summaries(run: Path) -> list[dict[str, Any]]:
    lines = (run / "MeasureReport.ndjson").read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r["type"] == "summary"]


def shown_rates(page: str) -> dict[tuple[str, str], list[str]]:
    """Every rate cell of the page: (measure, group id) -> the texts shown (overview and measure section)."""
    found: dict[tuple[str, str], list[str]] = {}
    for measure, group, text in re.findall(
        r'<td class="rate" data-measure="([^"]+)" data-group="([^"]+)">([^<]*)</td>', page
    ):
        found.setdefault((measure, group), []).append(text)
    return found


def expected_text(score: float | None) -> str:
    return "no rate" if score is None else f"{100 * score:.1f}%"


def test_every_measure_with_the_rates_of_the_summary_reports(fixtures_run: Path, tmp_path: Path) -> None:
    page = report(tmp_path, fixtures_run)
    rates = shown_rates(page)
    catalogue = {m.url: m for m in read_table().measures if m.url}
    checked = 0
    for summary in summaries(fixtures_run):
        measure = catalogue[summary["measure"].split("|")[0]]
        assert f'<section class="measure" id="{measure.id}"' in page
        assert f'data-chart="trend-{measure.id}"' in page
        for group in summary["group"]:
            score = group.get("measureScore", {}).get("value")
            assert rates[(measure.id, group["id"])] == [expected_text(score)] * 2, measure.id
            checked += 1
    assert checked >= 25
    # the formula is written out next to the rate: CMS165 in the fixtures is 3 / (6 - 2 - 0)
    assert "3 / (6 \u2212 2 \u2212 0) = 75.0%" in page


def test_inverse_measures_are_marked(fixtures_run: Path, tmp_path: Path) -> None:
    page = report(tmp_path, fixtures_run)
    section = page[page.index('<section class="measure" id="CMS122"') :]
    section = section[: section.index("</section>")]
    assert "lower is better" in section
    cms165 = page[page.index('<section class="measure" id="CMS165"') :]
    assert "lower is better" not in cms165[: cms165.index("</section>")]


def test_self_contained_and_the_same_bytes_for_the_same_runs(fixtures_run: Path, tmp_path: Path) -> None:
    first = report(tmp_path, fixtures_run)
    second = report(tmp_path, fixtures_run)
    assert first == second
    assert "<script" not in first.lower()
    assert not re.search(r'(?:src|href)="(?!#)', first)  # nothing loads, every link is inside the page
    assert "default-src 'none'" in first
    assert "@media print" in first


def test_runs_become_a_trend_and_codes_say_what_changed(
    fixtures_run: Path, earlier_run: Path, tmp_path: Path
) -> None:
    page = report(tmp_path, fixtures_run, earlier_run)  # given newest first: ordered by period
    assert page.index("<li>2024:") < page.index("<li>2025:")
    trend = page[page.index('data-chart="trend-CMS165"') :]
    trend = trend[: trend.index("</figure>")]
    assert ">2024<" in trend and ">2025<" in trend
    codes = page[page.index('<h2 id="codes">') :]
    codes = codes[: codes.index("</table>")]
    assert "Since 2024" in codes
    now = json.loads((fixtures_run / "run-report.json").read_text())["codes"]
    before = json.loads((earlier_run / "run-report.json").read_text())["codes"]
    for code in set(now) | set(before):
        delta = now.get(code, 0) - before.get(code, 0)
        cell = f"{delta:+d}" if delta else "no change"
        row = rf"<td>{re.escape(code)}</td><td>hedis</td><td>{now.get(code, 0)}</td>"
        assert re.search(row + rf"<td[^>]*>{re.escape(cell)}</td>", codes)


def test_patient_detail_by_default_and_none_when_asked(fixtures_run: Path, tmp_path: Path) -> None:
    page = report(tmp_path, fixtures_run)
    assert '<h2 id="patients">' in page and "Patient/" in page
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o600
    shared = report(tmp_path, fixtures_run, extra=("--no-patient-detail",))
    assert '<h2 id="patients">' not in shared
    assert "Patient/" not in shared
    assert "Patient-level detail left out" in shared
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


def test_data_quality_section(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "in", [patient("p1", birth="1960-01-01"), encounter("e1")])
    (folder / "broken.json").write_text("{not json")
    unknown = bp_panel("bp1", 120, 70)
    unknown["code"]["coding"][0] = {"system": "http://example.org/local", "code": "BP-LOCAL"}
    (folder / "local.json").write_text(json.dumps(unknown))
    run = replay(folder, tmp_path / "run", "--period", "2025")
    page = report(tmp_path, run)
    section = page[page.index('<h2 id="data-quality">') :]
    reasons = json.loads((run / "run-report.json").read_text())["quarantine_reasons"]
    assert reasons
    for reason, count in reasons.items():
        assert f"<tr><td>{reason}</td><td>{count}</td></tr>" in section
    assert "BP-LOCAL" in section  # the run's unrecognised local code


def write_bundle(folder: Path, resources: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    entries = [{"resource": r} for r in resources]
    (folder / "bundle.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    return folder


def _attributed_patients(tmp_path: Path, count: int) -> Path:
    """``count`` hypertensive patients seen by Practitioner/dr-a at Organization/clinic; half controlled."""
    resources: list[dict[str, Any]] = []
    for index in range(count):
        pid = f"p{index:02d}"
        visit = encounter(f"e{index}", "2025-06-02T09:00:00Z", pid=pid)
        visit["participant"] = [{"individual": {"reference": "Practitioner/dr-a"}}]
        visit["serviceProvider"] = {"reference": "Organization/clinic"}
        high = index % 2 == 0
        resources += [
            patient(pid, birth="1960-01-01"),
            visit,
            condition(f"htn{index}", "I10", pid=pid),
            bp_panel(
                f"bp{index}",
                150 if high else 120,
                95 if high else 70,
                "2025-06-02T09:10:00Z",
                pid=pid,
                eid=f"e{index}",
            ),
        ]
    return write_bundle(tmp_path / "attributed", resources)


def test_strata_by_clinician_with_small_number_suppression(tmp_path: Path) -> None:
    run = replay(_attributed_patients(tmp_path, 12), tmp_path / "run", "--period", "2025")
    attribution = json.loads((run / "run-report.json").read_text())["measure_attribution"]["CMS165"][0]
    assert attribution["practitioner"]["Practitioner/dr-a"]["initial-population"] == 12
    assert attribution["organization"]["Organization/clinic"]["numerator"] == 6
    page = report(tmp_path, run)
    section = page[page.index('<section class="measure" id="CMS165"') :]
    section = section[: section.index("</section>")]
    assert "CMS165 by clinician" in section and "Practitioner/dr-a" in section
    assert 'data-chart="practitioner-CMS165-1"' in section
    assert (
        "<td>Practitioner/dr-a</td><td>12</td><td>12</td><td>0</td><td>0</td><td>6</td><td>50.0%</td>"
        in section
    )
    hidden = report(tmp_path, run, extra=("--min-stratum", "13"))
    section = hidden[hidden.index('<section class="measure" id="CMS165"') :]
    section = section[: section.index("</section>")]
    assert "fewer than 13 patients: not shown" in section
    assert 'data-chart="practitioner-CMS165-1"' not in section  # no chart of suppressed strata


def test_a_folder_without_summaries_is_refused(
    fixtures_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "individual-only"
    replay(ROOT / "fixtures", folder, "--period", "2025")
    lines = [
        line
        for line in (folder / "MeasureReport.ndjson").read_bytes().splitlines()
        if orjson.loads(line)["type"] == "individual"
    ]
    (folder / "MeasureReport.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    assert main(["report", str(folder), "--html", str(tmp_path / "r.html")]) == 2
    assert "--report summary or both" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_attribution_is_the_latest_qualifying_encounter(tmp_path: Path) -> None:
    """Two visits by two clinicians: the later one is credited, and only what the data names."""
    first = encounter("e1", "2025-02-03T09:00:00Z")
    first["participant"] = [{"individual": {"reference": "Practitioner/early"}}]
    second = encounter("e2", "2025-09-03T09:00:00Z")
    second["participant"] = [{"individual": {"reference": "Practitioner/late"}}]
    second["location"] = [{"location": {"reference": "Location/north"}}]
    resources = [patient("p1", birth="1960-01-01"), first, second, condition("htn", "I10")]
    run = replay(write_bundle(tmp_path / "in", resources), tmp_path / "out", "--period", "2025")
    groups = json.loads((run / "run-report.json").read_text())["measure_attribution"]["CMS165"]
    assert set(groups[0]["practitioner"]) == {"Practitioner/late"}
    assert set(groups[0]["location"]) == {"Location/north"}
    assert "organization" not in groups[0]


def test_open_care_gaps_are_listed_when_the_run_wrote_them(tmp_path: Path) -> None:
    run = replay(
        ROOT / "fixtures", tmp_path / "run", "--period", "2025", "--emit", "claim,measure-report,gaps"
    )
    rows = (run / "gaps.csv").read_text().splitlines()
    assert any(",open-gap," in r for r in rows) and any(",closed-gap," in r for r in rows)
    page = report(tmp_path, run)
    section = page[page.index("<h3>Open care gaps (gaps.csv)</h3>") :]
    section = section[: section.index("</table>")]
    assert "by 2025-12-31 closes it" in section
    assert "closed-gap" not in section and "open-gap" not in section  # open ones only, no status column
    assert "Open care gaps" not in report(tmp_path, run, extra=("--no-patient-detail",))
