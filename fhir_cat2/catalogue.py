"""The measures catalogue, from the rules table itself: what ``fhir-cat2 measures list`` prints and what the
README's catalogue table is generated from (``tools/readme_catalogue.py``; a test keeps them equal).

Per measure: its id, MIPS quality number (and sub-rates), the published Measure's name and version, its
groups, basis, what it counts and its key logic (``what`` / ``logic`` in the table), the submission methods
CMS lists for the MIPS number (the QPP measures data shipped), and the quality-data codes per program:
``hedis`` (the code rules naming the measure) and ``mips-claims`` (per years, from CMS's claims
single-source files, as the table's ``claims:`` entries cite them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from .rules.measure_schema import CLAIMS_CATEGORIES
from .rules.schema import RulesTable

QPP_YEAR = 2025


@dataclass(frozen=True)
class ClaimsCodes:
    years: str
    """'2021' or '2022-2025'."""
    codes: tuple[str, ...]


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    mips: str | None
    rates: tuple[str, ...]
    """The MIPS (sub-)rates its groups report (226, 226.01, 226.02), when more than the measure's number."""
    title: str
    name: str | None
    """The published Measure's name (last part of its canonical URL); None for a claims-only measure."""
    version: str | None
    groups: int
    basis: str
    inverse: bool
    what: str
    logic: str
    methods: tuple[str, ...]
    """The submission methods CMS lists for the MIPS number in the QPP measures data."""
    hedis: tuple[str, ...]
    claims: tuple[ClaimsCodes, ...] = field(default=())


def _years_text(years: Sequence[int]) -> str:
    ordered = sorted(years)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(str(y) for y in ordered)


def _qpp_methods() -> dict[str, tuple[str, ...]]:
    path = resources.files("fhir_cat2") / "data" / "qpp" / f"measures-{QPP_YEAR}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {mid: tuple(facts["submissionMethods"]) for mid, facts in data["measures"].items()}


def catalogue(table: RulesTable) -> list[CatalogueEntry]:
    methods = _qpp_methods()
    entries = []
    for measure in table.measures:
        hedis = sorted(
            {
                rule.code + "".join(f"-{m}" for m in rule.modifiers)
                for rule in table.code_rules
                if rule.measure == measure.id and "hedis" in rule.programs
            }
        )
        by_years: dict[tuple[int, ...], set[str]] = {}
        for group in measure.groups:
            for entry in group.claims:
                codes = by_years.setdefault(tuple(entry.years), set())
                for category in CLAIMS_CATEGORIES:
                    for option in entry.options(category):
                        codes.update(option.codes)
        claims = tuple(
            ClaimsCodes(_years_text(years), tuple(sorted(codes))) for years, codes in sorted(by_years.items())
        )
        rates = tuple(sorted({g.mips_rate for g in measure.groups if g.mips_rate}))
        entries.append(
            CatalogueEntry(
                id=measure.id,
                mips=measure.mips,
                rates=rates if rates and rates != (measure.mips,) else (),
                title=measure.title,
                name=measure.url.rstrip("/").rsplit("/", 1)[-1] if measure.url else None,
                version=measure.version,
                groups=len(measure.groups),
                basis=measure.basis,
                inverse=measure.improvement_notation == "decrease",
                what=measure.what or measure.title,
                logic=measure.logic or "",
                methods=methods.get(measure.mips or "", ()),
                hedis=tuple(hedis),
                claims=claims,
            )
        )
    return entries


def hedis_codes(table: RulesTable) -> tuple[str, ...]:
    """The CPT II codes of ``--program hedis``: its code rules are payers' HEDIS readings, not tied to one
    eCQM (README "CPT II codes (program hedis)")."""
    return tuple(sorted({rule.code for rule in table.code_rules if "hedis" in rule.programs}))


def as_json(entries: Sequence[CatalogueEntry], hedis: Sequence[str] = ()) -> dict[str, Any]:
    return {"measures": [asdict(entry) for entry in entries], "hedis_codes": list(hedis)}


_METHOD_SHORT = {"claims": "claims", "electronicHealthRecord": "EHR", "registry": "registry"}


def _mips_text(entry: CatalogueEntry) -> str:
    number = ", ".join(entry.rates) if entry.rates else (entry.mips or "")
    methods = "/".join(_METHOD_SHORT.get(m, m) for m in entry.methods)
    return f"{number} ({methods})" if methods else number


def _codes_text(entry: CatalogueEntry, separator: str) -> str:
    parts = []
    if entry.hedis:
        parts.append(f"hedis: {', '.join(entry.hedis)}")
    for claims in entry.claims:
        parts.append(f"mips-claims {claims.years}: {', '.join(claims.codes)}")
    return separator.join(parts) if parts else "none"


def as_text(entries: Sequence[CatalogueEntry], hedis: Sequence[str] = ()) -> str:
    lines = []
    for entry in entries:
        published = f"{entry.name} {entry.version}" if entry.name else "no eCQM (claims only)"
        inverse = ", inverse" if entry.inverse else ""
        lines.append(
            f"{entry.id}  MIPS {_mips_text(entry)}  {published}  "
            f"{entry.groups} group{'s' if entry.groups != 1 else ''}, {entry.basis} basis{inverse}"
        )
        lines.append(f"    {entry.title}")
        lines.append(f"    codes: {_codes_text(entry, '; ')}")
    if hedis:
        lines.append(f"program hedis (code rules not tied to one eCQM): {', '.join(hedis)}")
    return "\n".join(lines) + "\n"


def as_markdown(entries: Sequence[CatalogueEntry]) -> str:
    """The README's catalogue table."""
    rows = [
        "| Measure | MIPS (2025 methods) | What | Basis | Groups | Key logic | Quality-data codes |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in entries:
        published = f"`{entry.name}` {entry.version}" if entry.name else "(no eCQM)"
        basis = entry.basis if entry.basis == "patient" else f"**{entry.basis}**"
        cells = [
            f"{entry.id} {published}",
            _mips_text(entry),
            entry.what,
            basis,
            str(entry.groups),
            entry.logic,
            _codes_text(entry, "<br>"),
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
