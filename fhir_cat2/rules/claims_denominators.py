"""CMS's claims denominators (data/claims/<year>.json, written by tools/build_claims_denominators.py) and
the claim line of a visit they are matched against.

A claim line is in a MIPS measure's claims denominator when, for that year, its encounter code is one
the measure lists (``ENCOUNTER_CODE``) on a row whose AGE (at the date of service), GENDER, forbidden
MODIFIERs and forbidden PLACE OF SERVICE the line satisfies, and, where the measure lists diagnoses
(``DX_CODE``), the line carries one of them on a row it satisfies too. ``DX_CODE_PD_Exl`` /
``PROC_CODE_PD_Exl`` list what puts the line in the denominator exclusion. Matching is set look-ups keyed by
code; no clinical judgement is made here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

GENDER_OF = {"male": "M", "female": "F"}
"""Patient.gender as the claims files spell it; other values match only rows listing both sexes."""


def icd_key(code: str) -> str:
    """ICD-10-CM codes compared without the dot: 'E11.9' and 'E119' are the same diagnosis."""
    return code.replace(".", "").upper()


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """What a visit's claim line would say, as far as the FHIR record tells (see measures/claims.py)."""

    encounter_ref: str
    day: date
    """Date of service: the encounter's first day."""
    codes: frozenset[str]
    """CPT/HCPCS codes of Encounter.type (with ConceptMap additions)."""
    diagnoses: frozenset[str]
    """ICD-10-CM codes (``icd_key``) of the line."""
    procedures: frozenset[str]
    """CPT/HCPCS codes of procedures done on the date of service."""
    age: int | None
    gender: str | None
    """'M', 'F' or None."""
    modifiers: frozenset[str]
    places: frozenset[str]
    """Place-of-service codes the record implies ('02' for a virtual visit...)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One set of denominator rows sharing their constraints."""

    age_min: int
    age_max: int | None
    genders: frozenset[str]
    not_modifiers: frozenset[str]
    not_pos: frozenset[str]

    def admits(self, line: ClaimLine) -> bool:
        if line.age is None or line.age < self.age_min:
            return False
        if self.age_max is not None and line.age > self.age_max:
            return False
        if self.genders != {"F", "M"} and line.gender not in self.genders:
            return False
        return not (line.modifiers & self.not_modifiers or line.places & self.not_pos)

    @property
    def words(self) -> str:
        age = f"{self.age_min}-{self.age_max}" if self.age_max is not None else f"{self.age_min}+"
        return age if self.genders == {"F", "M"} else f"{age} {'/'.join(sorted(self.genders))}"


CodeRows = dict[str, tuple[Row, ...]]
"""Code -> the rows listing it."""


def _first_admitting(rows: CodeRows, codes: frozenset[str], line: ClaimLine) -> str | None:
    for code in sorted(codes & rows.keys()):
        if any(row.admits(line) for row in rows[code]):
            return code
    return None


@dataclass(frozen=True)
class ClaimsDenominator:
    """One MIPS rate's denominator rows for one year."""

    rate: str
    encounter: CodeRows
    dx: CodeRows | None
    """None: the measure lists no diagnosis."""
    exclusion: CodeRows
    """DX_CODE_PD_Exl diagnoses (``icd_key``) and PROC_CODE_PD_Exl procedure codes."""

    def eligible(self, line: ClaimLine) -> tuple[str, str | None] | None:
        """(encounter code, diagnosis) that put the line in the denominator, or None."""
        encounter_code = _first_admitting(self.encounter, line.codes, line)
        if encounter_code is None:
            return None
        if self.dx is None:
            return encounter_code, None
        diagnosis = _first_admitting(self.dx, line.diagnoses, line)
        return None if diagnosis is None else (encounter_code, diagnosis)

    def excluded_by(self, line: ClaimLine) -> str | None:
        """The listed exclusion diagnosis or procedure the line carries (within its row's age band)."""
        return _first_admitting(self.exclusion, line.diagnoses | line.procedures, line)


@dataclass(frozen=True)
class ClaimsYear:
    year: int
    source: str
    """File and version the rows come from."""
    measures: dict[str, ClaimsDenominator]
    encounter_codes: frozenset[str]
    """Every encounter code of any measure: a visit with none of them is on no measure's claim."""

    def get(self, rate: str) -> ClaimsDenominator | None:
        return self.measures.get(rate)


def _rows(entries: list[dict[str, Any]], key: Any = str) -> CodeRows:
    out: dict[str, list[Row]] = {}
    for entry in entries:
        row = Row(
            entry["age_min"],
            entry["age_max"],
            frozenset(entry["genders"]),
            frozenset(entry["not_modifiers"]),
            frozenset(entry["not_pos"]),
        )
        for code in entry["codes"]:
            out.setdefault(key(code), []).append(row)
    return {code: tuple(rows) for code, rows in out.items()}


def parse_year(year: int, data: dict[str, Any]) -> ClaimsYear:
    measures = {}
    for rate, kinds in data["measures"].items():
        exclusion = _rows(kinds.get("exclusion_dx", []), icd_key)
        exclusion.update(_rows(kinds.get("exclusion_proc", [])))
        measures[rate] = ClaimsDenominator(
            rate,
            _rows(kinds["encounter"]),
            _rows(kinds["dx"], icd_key) if "dx" in kinds else None,
            exclusion,
        )
    source = data["source"]
    return ClaimsYear(
        year,
        f"{source['file']} ({source['version']})",
        measures,
        frozenset(code for m in measures.values() for code in m.encounter),
    )


def load_claims_year(year: int) -> ClaimsYear:
    """The shipped denominators of ``year``; a year without a file has no claims denominators."""
    path = resources.files("fhir_cat2") / "data" / "claims" / f"{year}.json"
    if not path.is_file():
        return ClaimsYear(year, "", {}, frozenset())
    return parse_year(year, json.loads(path.read_text(encoding="utf-8")))
