"""Every quality-data code the rules table can emit for --program mips-claims is one CMS's claims
single-source file lists for that measure, year, outcome category and combination (codes reported together),
for every year our rows cover. Skipped when ../shared/reference/cms-qpp is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_cat2.cli import main
from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.rules.measure_schema import CLAIMS_CATEGORIES
from fhir_cat2.sinks.base import NullSink
from fhir_cat2.sources.files import iter_input_files, read_file

from .conftest import ROOT, shared_path
from .support.cms_claims import FILES, JSON_FILES, listed_codes, load_csv, load_json, parse_rate

YEARS_REQUIRED = (2023, 2024, 2025)


@pytest.fixture(scope="module")
def cms_files():
    folder = shared_path("reference", "cms-qpp")
    return {year: load_csv(folder / name, year) for year, name in FILES.items() if (folder / name).exists()}


def _table_options():
    """(measure id, rate key, year, category, option codes) for every claims option of the shipped table."""
    out = []
    for measure in load_rules().table.measures:
        for group in measure.groups:
            if not group.claims:
                continue
            rate = parse_rate(group.mips_rate or measure.mips or "")
            for entry in group.claims:
                for year in entry.years:
                    for category in CLAIMS_CATEGORIES:
                        for option in entry.options(category):
                            out.append((measure.id, rate, year, category, frozenset(option.parsed())))
    return out


@pytest.mark.parametrize("year", sorted(JSON_FILES))
def test_csv_reading_agrees_with_the_cms_json(cms_files, year):
    """Our reading of the CSV grammar reproduces CMS's own JSON option groups (research §4.2)."""
    folder = shared_path("reference", "cms-qpp")
    from_json = load_json(folder / JSON_FILES[year])
    from_csv = cms_files[year]
    for key, categories in from_json.items():
        for category, options in categories.items():
            assert from_csv[key][category] == options, (year, key, category)


def test_every_claims_option_is_listed_by_cms_for_its_measure_year_and_category(cms_files):
    """Spec rule: CMS claims single source, per year: performanceMet / NotMet / Exclusion / Exception
    options."""
    checked = 0
    for measure_id, rate, year, category, codes in _table_options():
        assert year in cms_files, f"{measure_id}: no CMS claims file for {year} to check against"
        listed = cms_files[year].get(rate, {}).get(category, set())
        assert codes in listed, (
            f"{measure_id} MIPS {rate[0]}.{rate[1]} {year} {category}: {sorted(codes)} "
            "is not an option CMS lists"
            f" (listed: {sorted(sorted(o) for o in listed)})"
        )
        checked += 1
    assert checked > 100


def test_claims_rows_cover_2023_to_2025_for_every_claims_measure(cms_files):
    """Every measure group with claims codes has rows for 2023, 2024 and 2025 (the years CMS lists it)."""
    covered: dict[tuple[str, tuple[str, str]], set[int]] = {}
    for measure_id, rate, year, _, _ in _table_options():
        covered.setdefault((measure_id, rate), set()).add(year)
    assert covered
    for (measure_id, rate), years in covered.items():
        for year in YEARS_REQUIRED:
            if rate in cms_files[year]:
                assert year in years, (
                    f"{measure_id} MIPS {rate}: CMS lists it in {year} but our table has no row"
                )


def test_every_category_cms_lists_has_an_option_in_our_rows(cms_files):
    """Completeness: for each (measure, year) we cover, each outcome CMS reports has at least one of our
    options."""
    ours: dict[tuple[tuple[str, str], int], set[str]] = {}
    for _, rate, year, category, _ in _table_options():
        ours.setdefault((rate, year), set()).add(category)
    for (rate, year), categories in ours.items():
        listed = {c for c in cms_files[year].get(rate, {}) if c in CLAIMS_CATEGORIES}
        assert listed <= categories, (
            f"MIPS {rate} {year}: CMS lists {sorted(listed - categories)} we never report"
        )


def test_code_rules_for_mips_claims_name_a_measure_and_a_listed_code(cms_files):
    """Code rules (layer 1) for program mips-claims must be gated by a measure and use a code CMS lists for
    it."""
    ruleset = load_rules()
    mips_of = {m.id: m.mips for m in ruleset.table.measures}
    for rule in ruleset.table.code_rules:
        if "mips-claims" not in rule.programs:
            continue
        assert rule.measure is not None and mips_of.get(rule.measure), rule.id
        key = parse_rate(mips_of[rule.measure] or "")
        for year in rule.years:
            assert (rule.code, tuple(sorted(rule.modifiers))) in listed_codes(cms_files[year], key), (
                rule.id,
                year,
            )


@pytest.mark.parametrize("year", YEARS_REQUIRED)
def test_mips_claims_run_emits_only_codes_cms_lists_for_the_measure(tmp_path, cms_files, year):
    """End to end: --program mips-claims --period Y over our fixtures (re-dated to Y) emits, per measure, only
    codes CMS's file for Y lists for that measure; and the replay command writes them as Claim lines."""
    data = tmp_path / "in"
    data.mkdir()
    for path in sorted((ROOT / "fixtures" / "patients").glob("*.json")):
        (data / path.name).write_text(path.read_text().replace("2025-", f"{year}-"))
    ruleset = load_rules()
    rates = {
        m.id: {parse_rate(g.mips_rate or m.mips or "") for g in m.groups}
        for m in ruleset.table.measures
        if m.mips
    }
    pipeline = Pipeline(ruleset, RunOptions(program="mips-claims", period_year=year), _Discard())
    for file in iter_input_files([str(data)]):
        pipeline.ingest(read_file(file))
    emitted = 0
    for outcome in pipeline.outcomes():
        for code in outcome.codes:
            assert code.measure in rates, (
                f"{code.display_code} was emitted without a MIPS measure ({code.rule_id})"
            )
            allowed = set().union(*(listed_codes(cms_files[year], key) for key in rates[code.measure]))
            assert (code.code, tuple(sorted(code.modifiers))) in allowed, (
                f"{year} {code.measure}: {code.display_code} "
                f"is not listed by CMS for MIPS {rates[code.measure]}"
            )
            emitted += 1
    pipeline.close()
    assert emitted > 10
    out = tmp_path / "out"
    assert main(
        ["replay", str(data), "--out", str(out), "--program", "mips-claims", "--period", str(year)]
    ) in (0, 1)
    lines = sum(len(json.loads(line)["item"]) for line in (out / "Claim.ndjson").read_text().splitlines())
    assert lines == emitted


class _Discard(NullSink):
    pass


def test_hedis_only_codes_never_reach_mips_claims(tmp_path, monkeypatch):
    """The HEDIS BP bands 3074F-3080F are payer codes: CMS's MIPS 236 never lists them (domain.md §1.0)."""
    folder = Path(shared_path("reference", "cms-qpp"))
    files = {year: load_csv(folder / FILES[year], year) for year in YEARS_REQUIRED}
    for year, options in files.items():
        assert not {c for c, _ in listed_codes(options, ("236", "00"))} & {
            "3074F",
            "3075F",
            "3077F",
            "3078F",
        }, year
