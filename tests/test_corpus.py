"""Replay over public corpora in ../shared/corpus (skipped when absent): no crash, every output valid,
and code counts that agree with an independent count taken straight from the raw JSON."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_cat2.cli import main
from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.sinks.base import NullSink
from fhir_cat2.sources.files import iter_input_files, read_file

from .conftest import shared_path

pytestmark = pytest.mark.corpus


def _replay(corpus: Path, out: Path, *extra: str) -> dict[str, Any]:
    code = main(["replay", str(corpus), "--out", str(out), *extra])
    assert code in (0, 1), f"replay exited {code}"
    for line in (out / "Claim.ndjson").read_text().splitlines():
        Claim.model_validate_json(line)
    for line in (out / "MeasureReport.ndjson").read_text().splitlines():
        MeasureReport.model_validate_json(line)
    report = json.loads((out / "run-report.json").read_text())
    assert (
        "other" not in report["quarantine_reasons"]
        and "output-validation" not in report["quarantine_reasons"]
    )
    return report


def _bundles(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".json"):
            out.append(json.loads(path.read_text()))
        elif path.name.endswith(".json.gz"):
            out.append(json.loads(gzip.decompress(path.read_bytes())))
    return out


def _band_bp(systolic: float, diastolic: float) -> list[str]:
    sbp = "3074F" if systolic < 130 else "3075F" if systolic < 140 else "3077F"
    dbp = "3078F" if diastolic < 80 else "3079F" if diastolic < 90 else "3080F"
    return [sbp, dbp]


def _band_a1c(value: float) -> str:
    return "3044F" if value < 7 else "3051F" if value < 8 else "3052F" if value <= 9 else "3046F"


def _band_ldl(value: float) -> str:
    return "3048F" if value < 100 else "3049F" if value < 130 else "3050F"


def _components(resource: dict[str, Any]) -> dict[str, float]:
    return {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
        for c in resource.get("component", [])
        if "valueQuantity" in c
    }


def test_generated_carebundle_matches_an_independent_count(tmp_path):
    """One visit per patient with a BP panel and an HbA1c: every code can be counted from the raw JSON."""
    corpus = shared_path("corpus", "generated-carebundle")
    expected: Counter[str] = Counter()
    for bundle in _bundles(corpus):
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] != "Observation" or resource.get("status") not in (
                "final",
                "amended",
                "corrected",
            ):
                continue
            codes = {c.get("code") for c in resource["code"].get("coding", [])}
            if "85354-9" in codes:
                values = _components(resource)
                expected.update(_band_bp(values["8480-6"], values["8462-4"]))
            if "4548-4" in codes and resource["valueQuantity"]["unit"] == "%":
                expected[_band_a1c(resource["valueQuantity"]["value"])] += 1
            if "13457-7" in codes and resource["valueQuantity"]["unit"] == "mg/dL":
                expected[_band_ldl(resource["valueQuantity"]["value"])] += 1  # LDL, HEDIS bands
            if "39156-5" in codes and resource["valueQuantity"]["value"] > 0:
                expected["3008F"] += 1  # BMI documented at the visit
    report = _replay(corpus, tmp_path / "out")
    assert sum(expected.values()) > 50
    assert report["codes"] == dict(sorted(expected.items()))
    assert report["quarantined"] == 0


def test_smart_synthea_matches_an_independent_count(tmp_path):
    """Synthea sends BP as 55284-4 panels linked to their encounter; count lowest-of-latest-day per visit."""
    corpus = shared_path("corpus", "smart-synthea-r4")
    year = "2020"
    readings: dict[str, list[tuple[str, float, float]]] = {}
    in_period: set[str] = set()
    for bundle in _bundles(corpus):
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            if (
                resource["resourceType"] == "Encounter"
                and resource["period"]["start"][:4] == year
                and resource["status"] not in ("cancelled", "entered-in-error")
            ):
                in_period.add(entry["fullUrl"])
            if (
                resource["resourceType"] == "Observation"
                and resource["code"]["coding"][0]["code"] == "55284-4"
            ):
                values = _components(resource)
                readings.setdefault(resource["encounter"]["reference"], []).append(
                    (resource["effectiveDateTime"][:10], values["8480-6"], values["8462-4"])
                )
    expected: Counter[str] = Counter()
    for encounter, items in readings.items():
        if encounter not in in_period:
            continue
        latest = max(day for day, _, _ in items)
        expected.update(
            _band_bp(min(s for d, s, _ in items if d == latest), min(v for d, _, v in items if d == latest))
        )
    report = _replay(corpus, tmp_path / "out", "--period", year)
    ours = {
        code: n
        for code, n in report["codes"].items()
        if code in {"3074F", "3075F", "3077F", "3078F", "3079F", "3080F"}
    }
    assert sum(expected.values()) > 20
    assert ours == dict(sorted(expected.items()))
    # HbA1c in this corpus is 4548-4 in %: every coded result lies in a plausible band.
    assert report["patients"] == 26


def test_us_core_examples_run_clean(tmp_path):
    corpus = shared_path("corpus", "us-core-examples")
    report = _replay(corpus, tmp_path / "out")
    assert report["resources_read"] > 200


@pytest.mark.parametrize(
    "name", ["hl7-fhir-r4-core-examples", "generated-pysynthea", "bulk-10-patients", "davinci-deqm-examples"]
)
def test_other_corpora_do_not_crash(tmp_path, name):
    """Both layers run: the CPT II rules and, through mips-claims, the measures' claims codes."""
    report = _replay(shared_path("corpus", name), tmp_path / "out", "--program", "mips-claims")
    assert report["resources_read"] > 0


def test_mips_claims_over_pysynthea_years():
    """mips-claims for 2023-2025 over one parse of the corpus: no HEDIS BP bands, only measure-gated codes."""
    corpus = shared_path("corpus", "generated-pysynthea")
    items = [item for path in iter_input_files([str(corpus)]) for item in read_file(path)]
    ruleset = load_rules()
    for year in (2023, 2024, 2025):
        pipeline = Pipeline(
            ruleset,
            RunOptions(program="mips-claims", period_year=year, emit=frozenset({"claim"})),
            _Discard(),
        )
        pipeline.ingest(items)
        stats = pipeline.run()
        assert stats.patients == 10
        assert not any(
            code[:4] in {"3074", "3075", "3077", "3078", "3079", "3080"} for code in stats.codes
        ), year


class _Discard(NullSink):
    def write(self, resource: dict[str, Any]) -> None:
        Claim.model_validate(resource)

    def quarantine(self, entry: Any) -> None:
        pass
