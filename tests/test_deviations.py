"""Named deviations from the published measure logic: off by default, each switchable, reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_cat2.deviations import ALL, DEVIATIONS, parse
from fhir_cat2.errors import ConfigError, RulesError
from fhir_cat2.rules.loader import load_rules

from .conftest import ICD10, a1c, bp_panel, coded_obs, condition, encounter, patient, run_resources

ROOT = Path(__file__).resolve().parent.parent


def hypertensive_with(*resources):
    return [patient(birth="1960-05-01"), condition("htn", "I10", system=ICD10), encounter(), *resources]


def test_parse_refuses_unknown_names_and_accepts_all():
    assert parse(["all"]) == ALL
    assert parse(["phq-totals", " "]) == {"phq-totals"}
    with pytest.raises(ConfigError, match=r"unknown deviation.*bp-panel"):
        parse(["bp-panel"])


def test_every_deviation_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in DEVIATIONS:
        assert f"| `{name}` |" in readme, name


def test_a_55284_4_panel_is_no_blood_pressure_for_cms165_by_default(ruleset):
    """The QI-Core bp profile fixes 85354-9: a 55284-4 panel is not retrieved by the CQL."""
    resources = hypertensive_with(bp_panel("bp", 120, 70, code="55284-4"))
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is False
    on = run_resources(resources, ruleset, deviations=frozenset({"bp-panel-55284-4"}))
    assert on.population("CMS165")["numerator"] is True


def test_hedis_code_rules_keep_their_own_reading(ruleset):
    """With every deviation off for the measures, the CPT II BP codes still read the 55284-4 panel."""
    run = run_resources(hypertensive_with(bp_panel("bp", 120, 70, code="55284-4")), ruleset)
    assert "3074F" in run.codes("e1") and "3078F" in run.codes("e1")


def test_mips_claims_codes_follow_the_measure_logic(ruleset):
    """Claims report the measure: no BP by the spec (G8756), controlled with the deviation on (G8752)."""
    resources = hypertensive_with(bp_panel("bp", 120, 70, code="55284-4"))
    spec = run_resources(resources, ruleset, program="mips-claims", measures=("CMS165",))
    assert spec.measure_codes("CMS165") == ["G8756"]
    on = run_resources(
        resources,
        ruleset,
        program="mips-claims",
        measures=("CMS165",),
        deviations=frozenset({"bp-panel-55284-4"}),
    )
    assert on.measure_codes("CMS165") == ["G8752", "G8754"]


def test_separate_observations_count_only_with_their_deviation(ruleset):
    from .conftest import quantity_obs

    resources = hypertensive_with(
        quantity_obs("s", "8480-6", 120, "mm[Hg]", category="vital-signs"),
        quantity_obs("d", "8462-4", 70, "mm[Hg]", category="vital-signs"),
    )
    assert run_resources(resources, ruleset).population("CMS165")["numerator"] is False
    on = run_resources(resources, ruleset, deviations=frozenset({"bp-separate-observations"}))
    assert on.population("CMS165")["numerator"] is True
    reading = on.outcomes[0].readings.of("systolic_bp")[0]
    assert reading.deviation == "bp-separate-observations"
    assert "counted through deviation bp-separate-observations" in reading.describe()


def test_a_panel_and_its_standalone_copy_keep_the_spec_reading(ruleset):
    """The same value sent as a standalone Observation and as a bp panel component: the panel's reading
    (no deviation) is the one kept, whichever came first."""
    from .conftest import quantity_obs

    standalone = quantity_obs("s", "8480-6", 120, "mm[Hg]", category="vital-signs")
    resources = hypertensive_with(standalone, bp_panel("bp", 120, 70))
    run = run_resources(resources, ruleset, deviations=ALL)
    (reading,) = run.outcomes[0].readings.of("systolic_bp")
    assert reading.deviation == "" and reading.via_panel


def test_hba1c_in_mmol_mol_by_ucum_or_by_the_ifcc_equation(ruleset):
    """86 mmol/mol: 8.6 % by UCUM (not above 9: not in the inverse numerator), 10.0 % by IFCC."""
    resources = [
        patient(birth="1965-05-01"),
        condition("dm", "E11.9", system=ICD10, onset="2019-01-01"),
        encounter(),
        a1c("a", 86, unit="mmol/mol"),
    ]
    assert run_resources(resources, ruleset).population("CMS122")["numerator"] is False
    on = run_resources(resources, ruleset, deviations=frozenset({"unit-conversion"}))
    assert on.population("CMS122")["numerator"] is True
    assert on.outcomes[0].readings.of("hba1c")[0].deviation == "unit-conversion"


def test_phq_totals_are_screenings_only_with_their_deviation(ruleset):
    resources = [
        patient(birth="1980-05-01"),
        encounter(cpt="99213"),
        coded_obs("s", "44261-6", "2025-03-04T09:10:00Z", value=4, category="survey"),
    ]
    assert run_resources(resources, ruleset).population("CMS2")["numerator"] is False
    on = run_resources(resources, ruleset, deviations=frozenset({"phq-totals"}))
    assert on.population("CMS2")["numerator"] is True


def test_refuted_conditions_count_unless_the_deviation_is_on(ruleset):
    refuted = {
        **condition("htn", "I10", system=ICD10),
        "verificationStatus": {"coding": [{"code": "refuted"}]},
    }
    resources = [patient(birth="1960-05-01"), refuted, encounter()]
    assert run_resources(resources, ruleset).population("CMS165")["initial-population"] is True
    on = run_resources(resources, ruleset, deviations=frozenset({"ignore-refuted-conditions"}))
    assert on.population("CMS165")["initial-population"] is False


def test_a_rules_table_naming_an_unknown_deviation_is_refused(tmp_path):
    text = (ROOT / "fhir_cat2" / "data" / "rules.yaml").read_text()
    shutil.copytree(ROOT / "fhir_cat2" / "data" / "measures", tmp_path / "measures")
    bad = tmp_path / "rules.yaml"
    bad.write_text(
        text.replace("bp-separate-observations: {standalone: true}", "bp-loose: {standalone: true}", 1)
    )
    with pytest.raises(RulesError) as caught:
        load_rules(bad)
    assert "unknown deviation(s) bp-loose" in str(caught.value)
    assert "measurements.systolic_bp.deviations" in str(caught.value)


def _replay(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "in"
    data.mkdir(exist_ok=True)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in hypertensive_with(bp_panel("bp", 120, 70, code="55284-4"))],
    }
    (data / "p.json").write_text(json.dumps(bundle))
    out = tmp_path / "out"
    return subprocess.run(
        [sys.executable, "-m", "fhir_cat2", "replay", str(data), "--out", str(out), "--no-progress", *extra],
        capture_output=True,
        text=True,
        check=False,
    )


def test_replay_reports_the_deviations_on(tmp_path):
    done = _replay(tmp_path, "--deviation", "phq-totals,bp-panel-55284-4")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["deviations"] == ["bp-panel-55284-4", "phq-totals"]
    reports = [
        json.loads(line) for line in (tmp_path / "out" / "MeasureReport.ndjson").read_text().splitlines()
    ]
    cms165 = next(r for r in reports if "ControllingHighBloodPressure" in r["measure"])
    numerator = next(
        p for p in cms165["group"][0]["population"] if p["code"]["coding"][0]["code"] == "numerator"
    )
    assert numerator["count"] == 1


def test_an_unknown_deviation_stops_the_run_before_any_work(tmp_path):
    done = _replay(tmp_path, "--deviation", "bp-loose")
    assert done.returncode == 2
    assert "--deviation: unknown deviation(s) bp-loose" in done.stderr
    assert not (tmp_path / "out" / "MeasureReport.ndjson").exists()


def test_config_logic_deviations_is_validated(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("logic:\n  deviations: [phq-total]\n")
    done = _replay(tmp_path, "--config", str(config))
    assert done.returncode == 2
    assert "logic.deviations" in done.stderr and "phq-total" in done.stderr


def test_explain_says_why_a_separate_systolic_observation_does_not_count(ruleset):
    from .conftest import quantity_obs

    resources = hypertensive_with(quantity_obs("s", "8480-6", 120, "mm[Hg]", category="vital-signs"))
    ignored = dict(run_resources(resources, ruleset).outcomes[0].readings.ignored)
    assert ignored["Observation/s"] == (
        "systolic_bp: the published logic reads it only as a component of loinc.org#85354-9"
        " (a separate Observation counts with deviation bp-separate-observations)"
    )
