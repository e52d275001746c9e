"""fhir-cat2 export qpp: the MIPS quality submission body, from a run's summary MeasureReports."""

from __future__ import annotations

import copy
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_cat2.cli import main
from fhir_cat2.errors import ConfigError
from fhir_cat2.quality.qpp import (
    Export,
    build_submission,
    npi_check_digit_ok,
    qpp_measures,
    validate_submission,
)
from fhir_cat2.quality.rundir import RunFolderError, read_summaries
from fhir_cat2.rules.loader import read_table
from tests.conftest import ROOT, shared_path

TIN = "123456789"
NPI = "1234567893"  # CMS's worked example of the NPI check digit


@pytest.fixture(scope="module")
def fixtures_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert (
        main(["replay", str(ROOT / "fixtures"), "--out", str(out), "--report", "both", "--period", "2025"])
        == 0
    )
    return out


def _summaries(run: Path) -> list[dict[str, Any]]:
    lines = (run / "MeasureReport.ndjson").read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r["type"] == "summary"]


def _count(populations: list[dict[str, Any]], code: str) -> int:
    return sum(p["count"] for p in populations if p["code"]["coding"][0]["code"] == code)


def test_fixtures_file_validates_and_equals_the_summary_reports(fixtures_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "qpp.json"
    code = main(
        [
            "export",
            "qpp",
            str(fixtures_run),
            "--performance-year",
            "2025",
            "--tin",
            TIN,
            "--npi",
            NPI,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    document = json.loads(out.read_text())
    facts = qpp_measures(2025)
    assert validate_submission(document, facts) == []
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert document["entityType"] == "individual" and document["performanceYear"] == 2025
    (measurement_set,) = document["measurementSets"]
    assert measurement_set["category"] == "quality"
    assert (measurement_set["performanceStart"], measurement_set["performanceEnd"]) == (
        "2025-01-01",
        "2025-12-31",
    )
    catalogue = {m.url: m for m in read_table().measures if m.url}
    by_mips = {m["measureId"]: m["value"] for m in measurement_set["measurements"]}
    checked = 0
    for report in _summaries(fixtures_run):
        measure = catalogue[report["measure"].split("|")[0]]
        denominators = sum(_count(g["population"], "denominator") for g in report["group"])
        if denominators == 0:
            assert measure.mips not in by_mips  # nothing to submit
            continue
        value = by_mips[measure.mips]
        groups = report["group"]
        if "strata" in value:  # multi performance rate: one stratum per eCQM group, in order
            assert len(value["strata"]) == len(groups)
            pairs = [(s, g["population"]) for s, g in zip(value["strata"], groups, strict=True)]
        else:
            merged = [p for g in groups for p in g["population"]]
            pairs = [(value, merged)]
        for counts, populations in pairs:
            denominator = _count(populations, "denominator")
            exclusions = _count(populations, "denominator-exclusion")
            exceptions = _count(populations, "denominator-exception")
            numerator = _count(populations, "numerator")
            assert counts["eligiblePopulation"] == denominator
            assert counts["performanceMet"] == numerator
            assert counts["eligiblePopulationExclusion"] == exclusions
            assert counts["eligiblePopulationException"] == exceptions
            assert counts["performanceNotMet"] == denominator - exclusions - exceptions - numerator
        checked += 1
    assert checked == len(by_mips) >= 10
    assert [s["stratum"] for s in by_mips["226"]["strata"]] == [
        "reporting",
        "performance",
        "combinedPopulations",
    ]


def test_group_submission_without_npi(fixtures_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "qpp.json"
    assert (
        main(
            [
                "export",
                "qpp",
                str(fixtures_run),
                "--performance-year",
                "2025",
                "--tin",
                TIN,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    document = json.loads(out.read_text())
    assert document["entityType"] == "group" and "nationalProviderIdentifier" not in document


def test_default_output_is_in_the_run_folder(fixtures_run: Path) -> None:
    assert main(["export", "qpp", str(fixtures_run), "--performance-year", "2025", "--tin", TIN]) == 0
    assert (fixtures_run / "qpp-submission-2025.json").is_file()


def _export(run: Path, **kwargs: Any) -> Export:
    return build_submission(
        read_summaries(run), read_table().measures, qpp_measures(2025), year=2025, tin=TIN, npi=NPI, **kwargs
    )


def _rewrite(run: Path, tmp_path: Path, change: Any) -> Path:
    """A copy of the run folder whose summary reports went through ``change(report)``."""
    folder = tmp_path / "changed"
    folder.mkdir()
    lines = []
    for line in (run / "MeasureReport.ndjson").read_bytes().splitlines():
        resource = orjson.loads(line)
        if resource["type"] == "summary":
            resource = copy.deepcopy(resource)
            change(resource)
        lines.append(orjson.dumps(resource))
    (folder / "MeasureReport.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def _set(report: dict[str, Any], code: str, count: int, group: int = 0) -> None:
    for population in report["group"][group]["population"]:
        if population["code"]["coding"][0]["code"] == code:
            population["count"] = count


CMS165 = "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR"


def test_counts_that_do_not_add_up_are_refused_and_left_out(fixtures_run: Path, tmp_path: Path) -> None:
    def too_many_met(report: dict[str, Any]) -> None:
        if report["measure"].startswith(CMS165 + "|"):
            _set(report, "numerator", 999)

    run = _rewrite(fixtures_run, tmp_path, too_many_met)
    export = _export(run)
    assert any(line.startswith("CMS165 (MIPS 236): numerator 999") for line in export.refused), export.refused
    assert export.document is not None
    ids = [m["measureId"] for m in export.document["measurementSets"][0]["measurements"]]
    assert "236" not in ids and "001" in ids
    out = tmp_path / "qpp.json"
    args = ["export", "qpp", str(run), "--performance-year", "2025", "--tin", TIN, "--out", str(out)]
    assert main(args) == 1  # written without it, and the exit code says a person has to look
    assert out.is_file()


def test_denominator_above_initial_population_is_refused(fixtures_run: Path, tmp_path: Path) -> None:
    def inflated(report: dict[str, Any]) -> None:
        if report["measure"].startswith(CMS165 + "|"):
            _set(report, "denominator", 10_000)

    export = _export(_rewrite(fixtures_run, tmp_path, inflated))
    assert any("larger than the initial population" in line for line in export.refused)


def test_multi_rate_measure_without_matching_strata_is_refused(fixtures_run: Path, tmp_path: Path) -> None:
    """CMS159 (MIPS 370): CMS lists adolescents and adults strata; the 2025 eCQM has no stratifier logic."""
    cms159 = next(m for m in read_table().measures if m.id == "CMS159")

    def with_patients(report: dict[str, Any]) -> None:
        if report["measure"].startswith(str(cms159.url) + "|"):
            for code, count in (("initial-population", 5), ("denominator", 5), ("numerator", 2)):
                _set(report, code, count)

    export = _export(_rewrite(fixtures_run, tmp_path, with_patients))
    assert any(
        line.startswith("CMS159 (MIPS 370): CMS lists strata adolescents, adults") for line in export.refused
    )


def test_registry_method_leaves_out_ehr_only_measures(fixtures_run: Path) -> None:
    export = _export(fixtures_run, method="registry")
    assert export.document is not None
    ids = {m["measureId"] for m in export.document["measurementSets"][0]["measurements"]}
    assert "318" not in ids  # CMS139: electronicHealthRecord only
    assert any(line.startswith("CMS139 (MIPS 318): not submittable as registry") for line in export.skipped)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tin", "12345"], "--tin must be 9 digits"),
        (["--tin", TIN, "--npi", "1234567890"], "--npi must be 10 digits with a valid check digit"),
        (["--tin", TIN, "--performance-year", "2024"], "no QPP measures data for performance year 2024"),
    ],
)
def test_bad_arguments_stop_before_any_file(
    fixtures_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "qpp.json"
    args = ["export", "qpp", str(fixtures_run), "--performance-year", "2025", "--out", str(out), *argv]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_run_of_another_year_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run2024"
    assert main(
        ["replay", str(ROOT / "fixtures"), "--out", str(out), "--report", "summary", "--period", "2024"]
    ) in (0, 1)
    with pytest.raises(ConfigError, match="is not performance year 2025"):
        _export(out)


def test_run_folder_without_summaries_says_how_to_get_them(fixtures_run: Path, tmp_path: Path) -> None:
    individual = tmp_path / "individual"
    individual.mkdir()
    lines = [
        line
        for line in (fixtures_run / "MeasureReport.ndjson").read_bytes().splitlines()
        if orjson.loads(line)["type"] == "individual"
    ]
    (individual / "MeasureReport.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ConfigError, match="--report summary or both"):
        _export(individual)
    with pytest.raises(RunFolderError, match=r"no MeasureReport\.ndjson"):
        read_summaries(tmp_path)


def test_a_broken_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "MeasureReport.ndjson").write_text(
        '{"resourceType": "MeasureReport", "type": "summary"}\n{oops\n'
    )
    with pytest.raises(
        RunFolderError, match=r"MeasureReport.ndjson line 1: MeasureReport.measure is missing"
    ):
        read_summaries(tmp_path)


def test_npi_check_digit() -> None:
    assert npi_check_digit_ok("1234567893")
    assert not npi_check_digit_ok("1234567890")
    assert npi_check_digit_ok("1245319599")


def _valid() -> dict[str, Any]:
    return {
        "entityType": "individual",
        "taxpayerIdentificationNumber": TIN,
        "nationalProviderIdentifier": NPI,
        "performanceYear": 2025,
        "measurementSets": [
            {
                "category": "quality",
                "submissionMethod": "electronicHealthRecord",
                "programName": "mips",
                "performanceStart": "2025-01-01",
                "performanceEnd": "2025-12-31",
                "measurements": [
                    {
                        "measureId": "236",
                        "value": {
                            "isEndToEndReported": False,
                            "performanceMet": 5,
                            "performanceNotMet": 3,
                            "eligiblePopulationExclusion": 1,
                            "eligiblePopulationException": 0,
                            "eligiblePopulation": 9,
                        },
                    },
                    {
                        "measureId": "226",
                        "value": {
                            "isEndToEndReported": False,
                            "strata": [
                                {
                                    "stratum": name,
                                    **dict.fromkeys(("performanceMet", "performanceNotMet"), 1),
                                    "eligiblePopulationExclusion": 0,
                                    "eligiblePopulationException": 0,
                                    "eligiblePopulation": 2,
                                }
                                for name in ("reporting", "performance", "combinedPopulations")
                            ],
                        },
                    },
                ],
            }
        ],
    }


def _measurement(document: dict[str, Any], index: int) -> dict[str, Any]:
    return document["measurementSets"][0]["measurements"][index]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d.pop("nationalProviderIdentifier"),
            "individual submission needs nationalProviderIdentifier",
        ),
        (lambda d: d.update(taxpayerIdentificationNumber="12-345"), "taxpayerIdentificationNumber"),
        (lambda d: _measurement(d, 0)["value"].update(performanceMet=-1), "performanceMet"),
        (lambda d: _measurement(d, 0)["value"].update(performanceMet=10), "larger than eligiblePopulation"),
        (lambda d: _measurement(d, 0).update(measureId="999"), "not a quality measure of 2025"),
        (lambda d: _measurement(d, 1)["value"]["strata"][0].update(stratum="overall"), "are not CMS's"),
        (lambda d: d["measurementSets"][0].update(performanceEnd="2026-01-31"), "outside 2025"),
        (lambda d: d["measurementSets"][0].update(category="pi"), "category"),
        (lambda d: _measurement(d, 0)["value"].pop("isEndToEndReported"), "isEndToEndReported"),
    ],
)
def test_validator_names_each_problem(change: Any, problem: str) -> None:
    facts = qpp_measures(2025)
    assert validate_submission(_valid(), facts) == []
    document = _valid()
    change(document)
    problems = validate_submission(document, facts)
    assert any(problem in p for p in problems), problems


def test_shipped_qpp_facts_are_what_the_tool_extracts(tmp_path: Path) -> None:
    source = shared_path("reference", "cms-qpp", "2025_measures-data.json")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_qpp_measures.py"),
            "--measures-data",
            str(source),
            "--year",
            "2025",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    shipped = ROOT / "fhir_cat2" / "data" / "qpp" / "measures-2025.json"
    assert (tmp_path / "measures-2025.json").read_text() == shipped.read_text()
