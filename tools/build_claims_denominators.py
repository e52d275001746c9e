"""Write the claims denominators shipped in the package: fhir_cat2/data/claims/<year>.json.

Usage: python tools/build_claims_denominators.py [--rules fhir_cat2/data/rules.yaml]
       [--cms ../shared/reference/cms-qpp] [--out fhir_cat2/data/claims]

For every year and MIPS rate the rules table has ``claims:`` for, keeps the denominator rows of CMS's claims
single-source CSV of that year (CMSgov/qpp-measures-data, claims-related/data): encounter CPT/HCPCS codes,
required diagnoses, the diagnoses and procedures that put the line in the denominator exclusion, each with the
row's AGE, GENDER, forbidden MODIFIERs and forbidden PLACE OF SERVICE. Code numbers only (no descriptors).
Rows that share their constraints are merged; everything is sorted, so rebuilding is reproducible.

DATA ELEMENT NAME of a denominator row (the quality-data code rows, CPT_II_* and G_CODE_*, are not kept):

    ENCOUNTER_CODE[_<n>]   the line's encounter CPT/HCPCS code (226 lists one set per rate: _1, _2, _3)
    DX_CODE                the line carries one of these diagnoses (where a measure lists any)
    DX_CODE_PD_Exl         a diagnosis that puts the line in the denominator exclusion (2019: DX_CODE_Exl)
    PROC_CODE_PD_Exl       a procedure code that does the same (2021: frailty services)

Any other denominator element for a rate we keep (PROC_CODE, DX_CODE_1/_2 combinations...) stops the tool:
its meaning has to be decided before a measure that uses it gets claims rows.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_cat2.rules.loader import read_table  # noqa: E402
from fhir_cat2.rules.schema import RulesTable  # noqa: E402

FILES = {
    2019: ("2019_Claims_SingleSource_v2.0.csv", "v2.0"),
    2020: ("2020_Claims_SingleSource_v1.4.csv", "v1.4"),
    2021: ("2021_Claims_SingleSource_v1.3.csv", "v1.3"),
    2022: ("2022_Claims_SingleSource_v6.0_08-12-2022.csv", "v6.0"),
    2023: ("2023_Claims_SingleSource_v7.0_1.29.24.csv", "v7.0"),
    2024: ("2024_Claims_SingleSource_v8.csv", "v8"),
    2025: ("2025_Claims_SingleSource.csv", "V9.1"),
}
"""The CSV of each year (shared/reference/cms-qpp/SOURCE.md: 2025 is 2025_Claims_SingleSource_V9.1.csv)."""

ELEMENTS = {
    "ENCOUNTER_CODE": "encounter",
    "DX_CODE": "dx",
    "DX_CODE_PD_EXL": "exclusion_dx",
    "DX_CODE_EXL": "exclusion_dx",
    "PROC_CODE_PD_EXL": "exclusion_proc",
}
_QUALITY_CODE = re.compile(r"^(CPT_II|G_CODE)_", re.IGNORECASE)
_ENCOUNTER_N = re.compile(r"^ENCOUNTER_CODE_\d+$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d+)\s*(?:-|to|thru)\s*(\d+)$")
_AT_LEAST = re.compile(r"^(≥|>)\s*(\d+)$")


def rate_key(raw: str) -> str:
    """'1' -> '001', '226.01' -> '226.01', '113ᵻ' -> '113' (the rules table's mips / mips_rate spelling)."""
    cleaned = re.sub(r"[^0-9.]", "", raw)
    base, _, sub = cleaned.partition(".")
    return base.zfill(3) + (f".{sub.zfill(2)}" if sub and int(sub) else "")


def parse_age(text: str) -> list[int | None]:
    """'18 - 75', '18 thru 75', '18 to 85' -> [18, 75]; '≥12' -> [12, None]; '> 65' -> [66, None]."""
    text = text.strip()
    match = _RANGE.match(text)
    if match:
        return [int(match.group(1)), int(match.group(2))]
    match = _AT_LEAST.match(text)
    if match:
        low = int(match.group(2))
        return [low + 1 if match.group(1) == ">" else low, None]
    raise ValueError(f"AGE {text!r}: not a range or lower bound in years")


def _forbidden(text: str) -> list[str]:
    """'≠GQ, GT, 95' -> ['95', 'GQ', 'GT']; '' -> []. A row that requires a value is not one we keep."""
    text = text.strip()
    if not text:
        return []
    if not text.startswith("≠"):
        raise ValueError(f"{text!r}: a required modifier or place of service on a denominator row")
    return sorted({part.strip() for part in re.split(r",|\bor\b", text[1:]) if part.strip()})


def wanted_rates(table: RulesTable) -> dict[int, set[str]]:
    """Per year, the MIPS rates ('001', '226.01') the rules table has claims codes for."""
    out: dict[int, set[str]] = defaultdict(set)
    for measure in table.measures:
        for group in measure.groups:
            rate = group.mips_rate or measure.mips
            for entry in group.claims:
                for year in entry.years:
                    assert rate, f"{measure.id}: claims rows without a MIPS number"
                    out[year].add(rate_key(rate))
    return dict(out)


def extract_year(path: Path, version: str, rates: set[str]) -> dict[str, Any]:
    """One year's file reduced to the denominator rows of ``rates``."""
    raw = path.read_bytes()
    merged: dict[str, dict[str, dict[tuple[Any, ...], set[str]]]] = {
        rate: defaultdict(lambda: defaultdict(set)) for rate in sorted(rates)
    }
    rows = csv.DictReader(raw.decode("utf-8-sig").splitlines())
    for line, row in enumerate(rows, start=2):
        rate = rate_key(row.get("Measure ID") or "")
        element = (row.get("DATA ELEMENT NAME") or "").strip().upper()
        code = (row.get("CODE") or "").strip()
        if rate not in rates or not code or _QUALITY_CODE.match(element):
            continue
        kind = ELEMENTS.get("ENCOUNTER_CODE" if _ENCOUNTER_N.match(element) else element)
        if kind is None:
            raise ValueError(
                f"{path.name} line {line}: MIPS {rate} uses {element}, which this tool cannot read"
            )
        age = parse_age(row.get("AGE") or "")
        genders = tuple(sorted(g.strip() for g in (row.get("GENDER") or "").split(",") if g.strip()))
        constraint = (
            age[0],
            age[1],
            genders,
            tuple(_forbidden(row.get("MODIFIER") or "")),
            tuple(_forbidden(row.get("PLACE OF SERVICE") or "")),
        )
        merged[rate][kind][constraint].add(code)
    measures: dict[str, Any] = {}
    for rate, kinds in merged.items():
        if not kinds.get("encounter"):
            continue  # not in this year's file (the rules table's years are checked by the tests)
        measures[rate] = {
            kind: [
                {
                    "age_min": low,
                    "age_max": high,
                    "genders": list(genders),
                    "not_modifiers": list(modifiers),
                    "not_pos": list(places),
                    "codes": sorted(codes),
                }
                for (low, high, genders, modifiers, places), codes in sorted(
                    constraints.items(), key=lambda item: repr(item[0])
                )
            ]
            for kind, constraints in sorted(kinds.items())
        }
    return {
        "source": {
            "file": path.name,
            "version": version,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "publisher": "CMS claims single source (CMSgov/qpp-measures-data, claims-related/data)",
        },
        "measures": measures,
    }


def extract(cms_folder: Path, table: RulesTable) -> dict[int, dict[str, Any]]:
    """Every year the rules table needs, from the files in ``cms_folder``."""
    out = {}
    for year, rates in sorted(wanted_rates(table).items()):
        name, version = FILES[year]
        out[year] = extract_year(cms_folder / name, version, rates)
    return out


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", default=str(ROOT / "fhir_cat2" / "data" / "rules.yaml"))
    parser.add_argument("--cms", default=str(ROOT.parent / "shared" / "reference" / "cms-qpp"))
    parser.add_argument("--out", default=str(ROOT / "fhir_cat2" / "data" / "claims"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = set()
    for year, data in extract(Path(args.cms), read_table(args.rules)).items():
        name = f"{year}.json"
        (out / name).write_text(render(data), encoding="utf-8")
        written.add(name)
        print(f"{name}: {len(data['measures'])} measures from {data['source']['file']}")
    for stale in sorted(p for p in out.glob("*.json") if p.name not in written):
        stale.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
