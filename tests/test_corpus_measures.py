"""Measure rates over the public corpora in ../shared/corpus (skipped when absent): no crash, plausible rates
for every measure, and population counts that agree with an independent count taken straight from the raw JSON
(plain loops over the bundles and the shipped value-set files; none of our engine)."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_cat2.cli import main

from .conftest import ROOT, shared_path

pytestmark = pytest.mark.corpus
VALUESETS = ROOT / "fhir_cat2" / "data" / "valuesets"
ADULT_OUTPATIENT = [
    "2.16.840.1.113883.3.464.1003.101.12.1001",
    "2.16.840.1.113883.3.526.3.1240",
    "2.16.840.1.113883.3.464.1003.101.12.1025",
    "2.16.840.1.113883.3.464.1003.101.12.1023",
    "2.16.840.1.113883.3.464.1003.101.12.1016",
    "2.16.840.1.113883.3.464.1003.101.12.1089",
    "2.16.840.1.113883.3.464.1003.101.12.1080",
]
CASES = [
    ("smart-synthea-r4", 2019),
    ("smart-synthea-r4", 2020),
    ("generated-pysynthea", 2022),
    ("bulk-10-patients", 2022),
]


def codes_of(*oids: str) -> set[str]:
    """Plain code values of shipped value sets (codes are unique enough across the systems used here)."""
    out: set[str] = set()
    for oid in oids:
        for codes in json.loads((VALUESETS / f"{oid}.json").read_text())["codes"].values():
            out.update(codes)
    return out


def resources(folder: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(folder.iterdir()):
        raw = (
            gzip.decompress(path.read_bytes())
            if path.name.endswith(".gz")
            else path.read_bytes()
            if path.is_file()
            else b""
        )
        name = path.name.removesuffix(".gz")
        if name.endswith(".ndjson"):
            out += [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        elif name.endswith(".json"):
            data = orjson.loads(raw)
            out += (
                [e["resource"] for e in data.get("entry", [])]
                if data.get("resourceType") == "Bundle"
                else [data]
            )
    return out


def patient_of(resource: dict[str, Any]) -> str | None:
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.split(":")[-1].split("/")[-1] or None


def age(birth: str, on: date) -> int:
    b = date.fromisoformat(birth[:10])
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text if len(text) > 10 else text + "T00:00:00+00:00")


class Corpus:
    def __init__(self, folder: Path, year: int) -> None:
        self.year = year
        self.items = resources(folder)
        self.births = {
            r["id"]: r["birthDate"]
            for r in self.items
            if r.get("resourceType") == "Patient" and r.get("birthDate")
        }

    def encounters(
        self, oids: list[str], statuses: set[str], exclude_virtual: bool = False
    ) -> list[dict[str, Any]]:
        wanted = codes_of(*oids)
        out = []
        for r in self.items:
            if r.get("resourceType") != "Encounter" or r.get("status") not in statuses:
                continue
            if exclude_virtual and (r.get("class") or {}).get("code") == "VR":
                continue
            types = {c.get("code") for t in r.get("type", []) for c in t.get("coding", [])}
            period = r.get("period") or {}
            start, end = period.get("start", ""), period.get("end") or period.get("start", "")
            if types & wanted and start[:4] == str(self.year) and end[:4] == str(self.year):
                out.append(r)
        return out

    def bp_readings(self, pid: str) -> list[tuple[datetime, float, float]]:
        if not hasattr(self, "_bp"):
            self._bp: dict[str, list[tuple[datetime, float, float]]] = {}
            for r in self.items:
                if r.get("resourceType") != "Observation" or r.get("status") not in (
                    "final",
                    "amended",
                    "corrected",
                ):
                    continue
                if not {c.get("code") for c in r["code"].get("coding", [])} & {"85354-9", "55284-4"}:
                    continue
                values = {
                    c["code"]["coding"][0]["code"]: c.get("valueQuantity", {}).get("value")
                    for c in r.get("component", [])
                }
                if (
                    values.get("8480-6") is not None
                    and values.get("8462-4") is not None
                    and r.get("effectiveDateTime")
                ):
                    reading = (instant(r["effectiveDateTime"]), values["8480-6"], values["8462-4"])
                    self._bp.setdefault(patient_of(r) or "", []).append(reading)
        return self._bp.get(pid, [])


def replay(folder: Path, year: int, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["replay", str(folder), "--out", str(out), "--period", str(year), "--emit", "measure-report"]
    code = main([*argv, *extra])
    assert code in (0, 1)
    return json.loads((out / "run-report.json").read_text())


@pytest.mark.parametrize(("name", "year"), CASES)
def test_rates_are_plausible_and_counts_agree(tmp_path, name, year):
    folder = shared_path("corpus", name)
    # Synthea writes blood pressures as 55284-4 panels, which the QI-Core bp profile does not retrieve: with
    # the deviation on, CMS22 reads them and the counts below can be checked against the corpus.
    report = replay(folder, year, tmp_path / "out", "--deviation", "bp-panel-55284-4")
    corpus = Corpus(folder, year)
    populations = report["measure_populations"]
    # Plausible rates for every measure evaluated:
    # 0 <= numerator <= denominator - exclusions <= initial population.
    for measure, counts in populations.items():
        assert counts["denominator"] <= counts["initial-population"], measure
        assert 0 <= counts["numerator"] <= counts["denominator"] - counts.get("denominator-exclusion", 0), (
            measure
        )

    # CMS22 (encounter-based): qualifying encounters of adults are the episodes.
    start = date(year, 1, 1)
    episodes = [
        e
        for e in corpus.encounters(["2.16.840.1.113883.3.600.1920"], {"finished"}, exclude_virtual=True)
        if patient_of(e) in corpus.births and age(corpus.births[patient_of(e)], start) >= 18
    ]
    assert populations.get("CMS22", {}).get("initial-population", 0) == len(episodes)
    # With no BP follow-up orders in these corpora, the numerator is the episodes whose last BP is normal.
    assert not [r for r in corpus.items if r.get("resourceType") == "ServiceRequest"]
    normal = 0
    for e in episodes:
        lo, hi = instant(e["period"]["start"]), instant(e["period"].get("end") or e["period"]["start"])
        inside = sorted(r for r in corpus.bp_readings(patient_of(e)) if lo <= r[0] <= hi)
        if inside and 1 <= inside[-1][1] < 120 and 1 <= inside[-1][2] < 80:
            normal += 1
    assert populations.get("CMS22", {}).get("numerator", 0) == normal

    # CMS69: patients with a qualifying BMI encounter at 18 or older.
    cms69 = {
        patient_of(e)
        for e in corpus.encounters(["2.16.840.1.113883.3.600.1.1751"], {"finished"}, exclude_virtual=True)
        if patient_of(e) in corpus.births
        and age(corpus.births[patient_of(e)], instant(e["period"]["start"]).date()) >= 18
    }
    assert populations.get("CMS69", {}).get("initial-population", 0) == len(cms69)

    # CMS2: patients 12 or older at the period start with a finished qualifying encounter.
    cms2_oids = [
        "2.16.840.1.113883.3.600.1916",
        "2.16.840.1.113883.3.526.3.1022",
        "2.16.840.1.113883.3.464.1003.101.12.1080",
    ]
    cms2 = {
        patient_of(e)
        for e in corpus.encounters(cms2_oids, {"finished"})
        if patient_of(e) in corpus.births and age(corpus.births[patient_of(e)], start) >= 12
    }
    assert populations.get("CMS2", {}).get("initial-population", 0) == len(cms2)

    # CMS165/CMS122/CMS130 need an adult outpatient encounter code; Synthea codes visits with SNOMED
    # 185349003, which is not in those value sets, so their initial populations are as small as this
    # independent count says.
    outpatient = {
        patient_of(e)
        for e in corpus.encounters(
            ADULT_OUTPATIENT, {"finished", "arrived", "triaged", "in-progress", "onleave"}
        )
    }
    for measure in ("CMS165", "CMS122", "CMS130"):
        assert populations.get(measure, {}).get("initial-population", 0) <= len(outpatient), measure
