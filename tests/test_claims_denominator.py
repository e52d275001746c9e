"""--program mips-claims: a visit is eligible by CMS's claims denominator rows of the year (encounter code,
diagnosis, age at the date of service, sex, modifiers, place of service), not by the eCQM's value sets and
full-period populations. Spec: CMS claims single source, per year (fhir_cat2/data/claims/<year>.json)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fhir_cat2.measures.evaluate import MeasureEvaluator
from fhir_cat2.rules.claims_denominators import load_claims_year
from fhir_cat2.rules.loader import load_rules, read_table

from .conftest import (
    CPT,
    HCPCS,
    ICD10,
    ROOT,
    SNOMED,
    bp_panel,
    condition,
    encounter,
    patient,
    run_resources,
    shared_path,
)

# measure, year, required diagnosis (a Condition active on the visit), a code only the claims rows list,
# a code (system, code) only the eCQM (or our own MIPS047 rules) counts as a qualifying visit
CASES = [
    ("CMS165", 2025, "I10", "98000", (CPT, "98966")),
    ("CMS122", 2025, "E11.9", "97802", (CPT, "98966")),
    ("CMS138", 2025, None, "92622", (CPT, "98966")),
    ("CMS2", 2025, None, "98000", (CPT, "99404")),
    ("CMS69", 2025, None, "99341", (CPT, "96159")),
    ("CMS22", 2025, None, "92622", (SNOMED, "185463005")),
    ("CMS125", 2025, None, "98000", (CPT, "98966")),
    ("CMS130", 2025, None, "98000", (CPT, "98966")),
    ("MIPS047", 2025, None, "90791", (CPT, "98966")),
    ("CMS131", 2022, "E11.9", "99343", (CPT, "98966")),
    ("CMS68", 2022, None, "99318", (CPT, "92547")),
    ("CMS143", 2020, "H40.10X0", "99201", (CPT, "99315")),
]


def _system(code: str) -> str:
    return HCPCS if code[0].isalpha() else CPT


def _visits(year, code, system, *, birth=None, gender="female", dx=None, klass="AMB"):
    """A patient of 70 at the visits (two, so the eCQM's visit counts are met) with ``dx`` active."""
    resources = [
        patient(birth=birth or f"{year - 70}-01-01", gender=gender),
        encounter("e1", f"{year}-03-04T09:00:00Z", cpt=code, system=system, klass=klass),
        encounter("e2", f"{year}-09-04T09:00:00Z", cpt=code, system=system, klass=klass),
    ]
    if dx:
        resources.append(condition("dx", dx, onset=f"{year - 3}-01-01"))
    return resources


def _run(measure, year, resources):
    run = run_resources(resources, load_rules(), period=year, program="mips-claims", measures=(measure,))
    qualifying = run.outcomes[0].measure_results[measure].qualifying_encounters
    return "Encounter/e1" in qualifying, run.measure_codes(measure, "e1")


@pytest.fixture(scope="module")
def ruleset_once():
    return load_rules()


def test_cases_cover_every_claims_measure(ruleset_once):
    """Each measure with claims rows has a case in both directions."""
    with_claims = {m.id for m in ruleset_once.table.measures if any(g.claims for g in m.groups)}
    assert {case[0] for case in CASES} == with_claims


@pytest.mark.parametrize(("measure", "year", "dx", "claims_code", "ecqm_code"), CASES)
def test_a_visit_the_claims_rows_list_gets_codes_though_the_ecqm_does_not_count_it(
    measure, year, dx, claims_code, ecqm_code
):
    qualifies, codes = _run(measure, year, _visits(year, claims_code, _system(claims_code), dx=dx))
    assert not qualifies, f"premise: the eCQM does not count a {claims_code} visit for {measure}"
    assert codes, f"{measure} {year}: {claims_code} is in the claims denominator"


@pytest.mark.parametrize(("measure", "year", "dx", "claims_code", "ecqm_code"), CASES)
def test_a_visit_only_the_ecqm_counts_gets_no_codes(measure, year, dx, claims_code, ecqm_code):
    system, code = ecqm_code
    qualifies, codes = _run(measure, year, _visits(year, code, system, dx=dx))
    assert qualifies, f"premise: the eCQM counts a {code} visit for {measure}"
    assert codes == [], f"{measure} {year}: {code} is not in the claims denominator"


# ---------------------------------------------------------------- age, sex, diagnosis, modifiers, place


def test_age_is_taken_at_the_date_of_service():
    """MIPS 236 AGE 18 - 85 on the date of service: 85 in March, 86 in September (the eCQM, taking the age at
    the end of the period, counts neither)."""
    resources = _visits(2025, "99213", CPT, birth="1939-06-01", dx="I10")
    run = run_resources(resources, load_rules(), period=2025, program="mips-claims", measures=("CMS165",))
    assert run.measure_codes("CMS165", "e1") == ["G8756"]
    assert run.measure_codes("CMS165", "e2") == []
    assert not run.outcomes[0].measure_results["CMS165"].qualifying_encounters


@pytest.mark.parametrize(("birth", "expected"), [("1984-03-05", []), ("1984-03-04", ["G9900"])])
def test_lower_age_bound_on_the_visit_day(birth, expected):
    """MIPS 112 (2025) AGE 41 - 74: 41 on the visit day (4 March 2025) is in, the day before the birthday
    is out."""
    _, codes = _run("CMS125", 2025, _visits(2025, "99213", CPT, birth=birth))
    assert codes == expected


@pytest.mark.parametrize(("gender", "expected"), [("female", ["G9900"]), ("male", []), ("unknown", [])])
def test_sex_restricted_rows_need_that_sex(gender, expected):
    """MIPS 112 GENDER F: only women; a row listing 'M, F' would admit any."""
    _, codes = _run("CMS125", 2025, _visits(2025, "99213", CPT, gender=gender))
    assert codes == expected


def test_rows_listing_both_sexes_admit_an_unknown_sex():
    _, codes = _run("CMS130", 2025, _visits(2025, "99213", CPT, gender="unknown"))
    assert codes == ["3017F-8P"]


def test_a_listed_diagnosis_is_required_where_the_measure_lists_any():
    """MIPS 236 DX_CODE I10: no hypertension, no claim line for the measure."""
    _, codes = _run("CMS165", 2025, _visits(2025, "99213", CPT))
    assert codes == []


def test_the_encounter_reason_code_is_a_diagnosis_of_the_line():
    resources = _visits(2025, "99213", CPT)
    resources[1]["reasonCode"] = [{"coding": [{"system": ICD10, "code": "I10"}]}]
    _, codes = _run("CMS165", 2025, resources)
    assert codes == ["G8756"]


def test_the_encounter_diagnosis_is_a_diagnosis_of_the_line():
    """A Condition the encounter names, even one recorded without an onset."""
    resources = _visits(2025, "99213", CPT)
    resources[1]["diagnosis"] = [{"condition": {"reference": "Condition/dx"}}]
    resources.append(condition("dx", "I10", onset=None, status=None))
    _, codes = _run("CMS165", 2025, resources)
    assert codes == ["G8756"]


@pytest.mark.parametrize(
    ("onset", "abatement", "status", "expected"),
    [
        ("2025-01-01", None, "active", ["G8756"]),
        ("2025-03-05", None, "active", []),  # diagnosed the day after the visit
        ("2020-01-01", "2025-03-01", "resolved", []),  # resolved before the visit
        ("2020-01-01", None, "inactive", []),
    ],
)
def test_a_condition_counts_when_active_on_the_date_of_service(onset, abatement, status, expected):
    resources = [
        *_visits(2025, "99213", CPT),
        condition("htn", "I10", onset=onset, abatement=abatement, status=status),
    ]
    _, codes = _run("CMS165", 2025, resources)
    assert codes == expected


@pytest.mark.parametrize(
    ("measure", "year", "klass", "expected"),
    [
        ("CMS22", 2025, "AMB", ["G8785"]),
        ("CMS22", 2025, "VR", []),  # 317: MODIFIER ≠GQ, GT, FQ, 93; POS ≠02, 10 (virtual -> POS 02)
        ("CMS2", 2025, "VR", ["G8432"]),  # 134 forbids no modifier or place: telehealth is fine
        ("CMS2", 2023, "HH", []),  # 134 (2023): POS ≠12 (home health -> POS 12)
        ("CMS2", 2025, "HH", ["G8432"]),
        ("MIPS047", 2025, "EMER", []),  # 047: POS ≠23 (emergency -> POS 23)
        ("MIPS047", 2025, "AMB", ["1123F-8P"]),
    ],
)
def test_forbidden_modifiers_and_places_of_service(measure, year, klass, expected):
    resources = _visits(year, "99213", CPT, klass=klass)
    run = run_resources(resources, load_rules(), period=year, program="mips-claims", measures=(measure,))
    assert run.measure_codes(measure, "e1") == expected


@pytest.mark.parametrize(
    ("year", "dx", "expected"),
    [
        (2025, "F31.9", ["G9717"]),  # bipolar: listed every year
        (2023, "F32.9", ["G9717"]),  # depression: listed up to 2023
        (2025, "F32.9", ["G8432"]),  # 2024-2025 list bipolar only
    ],
)
def test_a_listed_exclusion_diagnosis_picks_the_exclusion_code(year, dx, expected):
    """MIPS 134 DX_CODE_PD_Exl: the line's diagnosis puts it in the denominator exclusion (G9717)."""
    _, codes = _run("CMS2", year, _visits(year, "99213", CPT, dx=dx))
    assert codes == expected


def test_no_judging_for_a_patient_whose_visits_carry_no_claims_encounter_code(monkeypatch):
    """Performance: a measure is judged only for visits its rows list (set look-ups before any criterion)."""
    judged: list[str] = []
    original = MeasureEvaluator.judge_visit

    def spy(self, measure, *args, **kwargs):
        judged.append(measure.id)
        return original(self, measure, *args, **kwargs)

    monkeypatch.setattr(MeasureEvaluator, "judge_visit", spy)
    run_resources(
        _visits(2025, "185463005", SNOMED, dx="I10"), load_rules(), period=2025, program="mips-claims"
    )
    assert judged == []
    run_resources(_visits(2025, "92002", CPT, dx="I10"), load_rules(), period=2025, program="mips-claims")
    assert "CMS22" in judged  # 317 lists the eye visit 92002
    assert "CMS165" not in judged and "CMS122" not in judged  # 236 and 001 do not


# ---------------------------------------------------------------- the shipped data


def test_every_year_of_the_rules_table_has_denominator_rows(ruleset_once):
    """A (rate, year) the table reports must have rows, or it would silently report nothing."""
    for measure in ruleset_once.table.measures:
        for group in measure.groups:
            rate = group.mips_rate or measure.mips or ""
            base, _, sub = rate.partition(".")
            key = base.zfill(3) + (f".{sub.zfill(2)}" if sub and int(sub) else "")
            for entry in group.claims:
                for year in entry.years:
                    denominator = load_claims_year(year).get(key)
                    assert denominator is not None and denominator.encounter, (measure.id, rate, year)


def _tool():
    spec = importlib.util.spec_from_file_location(
        "build_claims_denominators", ROOT / "tools" / "build_claims_denominators.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_data_is_what_the_tool_extracts_from_the_cms_files():
    """fhir_cat2/data/claims/<year>.json == tools/build_claims_denominators.py over ../shared (skipped when
    absent)."""
    folder = Path(shared_path("reference", "cms-qpp"))
    tool = _tool()
    extracted = tool.extract(folder, read_table())
    shipped = {int(p.stem): p for p in (ROOT / "fhir_cat2" / "data" / "claims").glob("*.json")}
    assert sorted(extracted) == sorted(shipped)
    for year, data in extracted.items():
        assert shipped[year].read_text(encoding="utf-8") == tool.render(data), year
        assert json.loads(tool.render(data))["source"]["file"] == tool.FILES[year][0]


def test_shipped_data_carries_code_numbers_only():
    """Licensing: no descriptor text, only codes, ages, sexes, modifiers and places."""
    for path in (ROOT / "fhir_cat2" / "data" / "claims").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for kinds in data["measures"].values():
            for rows in kinds.values():
                for row in rows:
                    assert set(row) == {"age_min", "age_max", "genders", "not_modifiers", "not_pos", "codes"}
                    assert all(" " not in code and len(code) <= 8 for code in row["codes"]), path.name


def test_the_outcome_is_judged_on_the_record_at_the_end_of_the_visit():
    """A visit past midnight: the line's date of service is its first day, the BP taken after midnight
    counts."""
    resources = [
        patient(birth="1955-01-01"),
        condition("htn", "I10", onset="2020-01-01"),
        encounter("e1", "2025-03-04T22:00:00Z", end="2025-03-05T02:00:00Z"),
        bp_panel("bp", 150, 95, "2025-03-05T01:00:00Z", eid="e1"),
    ]
    run = run_resources(resources, load_rules(), period=2025, program="mips-claims", measures=("CMS165",))
    assert run.measure_codes("CMS165", "e1") == ["G8753", "G8755"]
    assert {c.serviced.isoformat() for o in run.outcomes for c in o.codes} == {"2025-03-04"}


FRAILTY_LISTS_UNUSED = {("001", 2021), ("112", 2021), ("117", 2021), ("236", 2021)}
"""2021's frailty diagnoses/procedures: one line's frailty code does not say which frailty exclusion applies
(README, mips-claims by year: limits); the eCQM frailty criteria choose it."""


def test_every_listed_exclusion_list_has_its_option_or_is_documented_unused(ruleset_once):
    for measure in ruleset_once.table.measures:
        for group in measure.groups:
            rate = group.mips_rate or measure.mips or ""
            for entry in group.claims:
                for year in entry.years:
                    denominator = load_claims_year(year).get(rate)
                    marked = any(o.listed_exclusion for o in entry.exclusion)
                    if denominator is None or not denominator.exclusion:
                        assert not marked, (measure.id, year, "marked, but the year lists no diagnosis")
                    else:
                        assert marked or (rate, year) in FRAILTY_LISTS_UNUSED, (measure.id, rate, year)
