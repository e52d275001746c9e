"""Warnings about what the data says of a run (in the log and the run report's ``warnings``): no encounter in
the measurement period, a period defaulted to the current year early in it (sync), a measure's empty
initial population although patients of its ages exist."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses

from fhir_cat2.cli import main
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.run_warnings import age_range, period_warnings

from .conftest import ROOT, bp_panel, condition, encounter, patient, quantity_obs
from .test_sync_offline import BASE, FakeServer
from .test_sync_offline import data as sync_data


def replay(tmp_path: Path, source: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "out"
    assert main(["replay", str(source), "--out", str(out), *extra]) in (0, 1)
    return json.loads((out / "run-report.json").read_text())  # type: ignore[no-any-return]


def test_a_period_without_encounters_warns_in_the_log_and_the_report(tmp_path, capsys):
    report = replay(tmp_path, ROOT / "fixtures", "--period", "2019")
    expected = "no encounter in the measurement period 2019 (the input's encounters are in 2025)"
    assert any(w.startswith(expected) and "--period" in w for w in report["warnings"])
    assert expected in capsys.readouterr().err
    assert report["codes_emitted"] == 0


def test_the_data_s_own_period_does_not_warn(tmp_path):
    report = replay(tmp_path, ROOT / "fixtures" / "patients")
    assert not any("measurement period" in w or "initial population" in w for w in report["warnings"])


def one_patient(tmp_path: Path, *resources: dict[str, Any]) -> Path:
    source = tmp_path / "in.json"
    source.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        )
    )
    return source


def test_an_empty_initial_population_with_patients_of_its_ages_warns(tmp_path):
    source = one_patient(tmp_path, patient("p1", birth="1980-02-02"), encounter("e1", "2025-03-04T09:00:00Z"))
    report = replay(tmp_path, source, "--measure", "CMS122")
    assert report["measure_populations"] == {}
    (warning,) = [w for w in report["warnings"] if w.startswith("CMS122")]
    assert "no patient in the initial population although 1 patient(s) aged 18-75 in 2025" in warning
    assert "unrecognised-codes.csv" in warning


def test_no_population_warning_when_nobody_has_its_ages_or_someone_is_in_it(tmp_path):
    child = one_patient(tmp_path, patient("p1", birth="2020-02-02"), encounter("e1", "2025-03-04T09:00:00Z"))
    assert not [w for w in replay(tmp_path, child, "--measure", "CMS122")["warnings"] if "CMS122" in w]
    diabetic = one_patient(
        tmp_path,
        patient("p1", birth="1970-02-02"),
        encounter("e1", "2025-03-04T09:00:00Z"),
        condition("c1", "E11.9"),
    )
    report = replay(tmp_path, diabetic, "--measure", "CMS122")
    assert report["measure_populations"]["CMS122"]["initial-population"] == 1
    assert not [w for w in report["warnings"] if "CMS122" in w]


def test_measure_age_ranges_come_from_the_initial_population():
    ruleset = load_rules()
    library = ruleset.table.library
    assert age_range(ruleset.measure("CMS122"), library) == (18, 75)
    assert age_range(ruleset.measure("CMS165"), library) == (18, 85)


@pytest.mark.parametrize(
    ("defaulted_on", "warns"),
    [(date(2026, 1, 10), True), (date(2026, 3, 31), True), (date(2026, 4, 1), False), (None, False)],
)
def test_a_period_defaulted_to_the_current_year_warns_in_its_first_quarter(defaulted_on, warns):
    period = (date(2026, 1, 1), date(2026, 12, 31))
    found = [w for w in period_warnings(period, {(2026, 2026): 3}, defaulted_on) if "defaulted" in w]
    assert bool(found) is warns
    if warns:
        assert f"it is only {defaulted_on.isoformat()}" in found[0] and "--period 2025" in found[0]


def test_sync_without_a_period_in_january_warns(tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(sync_data()).install(rsps)  # the data is of 2025; the run's "now" is --until
        argv = [
            "sync",
            "--base-url",
            BASE,
            "--state",
            str(tmp_path / "s.sqlite"),
            "--out",
            str(tmp_path / "out"),
        ]
        assert main([*argv, "--dry-run", "--until", "2026-01-10T10:00:00Z"]) == 0
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["period"]["start"] == "2026-01-01"
    warnings = report["warnings"]
    assert any("defaulted to 2026, the current year, and it is only 2026-01-10" in w for w in warnings)
    assert any(w.startswith("no encounter in the measurement period 2026") for w in warnings)
    assert (tmp_path / "out" / "unrecognised-codes.csv").read_text().startswith("resource_type,element")


def test_an_encounter_with_a_placeholder_end_counts_once_and_covers_the_period(tmp_path):
    """EHRs write 9999-12-31 for 'no end': the span is counted once (before: one count per year touched,
    ~8,000 per such encounter at ingest) and still covers the measurement period."""
    from fhir_cat2.pipeline import Pipeline, RunOptions
    from fhir_cat2.sources.files import iter_input_files, read_file

    from .conftest import MemorySink

    source = one_patient(
        tmp_path, patient("p1"), encounter("e1", "2020-03-04T09:00:00Z", end="9999-12-31T00:00:00Z")
    )
    pipeline = Pipeline(load_rules(), RunOptions(period_year=2025), MemorySink())
    pipeline.ingest(item for path in iter_input_files([str(source)]) for item in read_file(path))
    assert dict(pipeline.stats.encounter_spans) == {(2020, 9999): 1}
    assert period_warnings((date(2025, 1, 1), date(2025, 12, 31)), pipeline.stats.encounter_spans, None) == []
    assert period_warnings((date(2019, 1, 1), date(2019, 12, 31)), {(2020, 9999): 1, (2020, 2020): 2}, None)[
        0
    ].startswith("no encounter in the measurement period 2019 (the input's encounters are in 2020)")


def test_without_measures_selected_only_an_all_empty_catalogue_warns(tmp_path):
    """Every measure runs: a diagnosis-specific measure (CMS133 cataract surgery) with nobody in it is
    normal when other measures have patients; when every measure is empty, each says so."""
    diabetic = one_patient(
        tmp_path,
        patient("p1", birth="1970-02-02"),
        encounter("e1", "2025-03-04T09:00:00Z"),
        condition("c1", "E11.9"),
    )
    report = replay(tmp_path, diabetic)
    assert not [w for w in report["warnings"] if "no patient in the initial population" in w]
    nobody = one_patient(
        tmp_path, patient("p1", birth="1980-02-02"), encounter("e1", "2025-03-04T09:00:00Z", cpt="00000")
    )
    warned = [w for w in replay(tmp_path, nobody)["warnings"] if "no patient in the initial population" in w]
    assert any(w.startswith("CMS122") for w in warned) and any(w.startswith("CMS133") for w in warned)


def _left_out(report: dict[str, Any]) -> list[str]:
    return [w for w in report["warnings"] if "were left out: only the deviation" in w]


def test_evidence_only_a_deviation_reads_is_counted_in_a_warning(tmp_path):
    """Synthea writes BP as LOINC 55284-4 panels; by the spec they do not count (CMS165 reads 85354-9):
    the run says how many were left out and which deviation would read them."""
    source = one_patient(
        tmp_path,
        patient("p1", birth="1960-01-01"),
        encounter("e1"),
        condition("htn", "I10"),
        bp_panel("panel", 120, 70, code="55284-4"),
        bp_panel("panel2", 118, 72, "2025-05-04T09:10:00Z", code="55284-4"),
        quantity_obs("sbp", "8480-6", 121, "mm[Hg]", category="vital-signs"),
    )
    (first, second) = sorted(_left_out(replay(tmp_path, source)))
    assert first.startswith("1 Observation(s) were left out: only the deviation bp-separate-observations")
    assert second.startswith("2 Observation(s) were left out: only the deviation bp-panel-55284-4 reads them")
    assert "--deviation bp-panel-55284-4" in second
    assert _left_out(replay(tmp_path / "on", source, "--deviation", "all")) == []
