"""Unrecognised codes: the codes in the data that no value set, rule or site map knows, and drafts of the
ConceptMap that would make them count (``fhir-cat2 codes suggest``).

Counted at ingest, on the elements rules read (the ingest screen's code element per resource type, an
Encounter's type, a Condition's code), for resources none of whose codes is known: exactly what was left out
for its codes. Codes and counts only: no display, no id, no value.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conceptmaps import DRAFT_MARK, ConceptMaps
from .errors import ConfigError
from .sinks.files import write_private
from .sources.fields import CODE_ELEMENT
from .sources.records import Code
from .terminology import CVX, KNOWN_SYSTEMS, LOINC, RXNORM, normalise_system

log = logging.getLogger("fhir_cat2.codes")

CSV_NAME = "unrecognised-codes.csv"
CSV_COLUMNS = ("resource_type", "element", "system", "code", "count")
REPORT_TOP = 20
"""Codes per element listed in run-report.json (the CSV has them all)."""

ELEMENTS: dict[str, str] = {**CODE_ELEMENT, "Encounter": "type"}
"""The element whose codes are counted, per resource type."""

_TARGET_SYSTEMS = {
    "Observation": LOINC,
    "MedicationRequest": RXNORM,
    "MedicationAdministration": RXNORM,
    "Immunization": CVX,
}
"""The system a draft map suggests as target where one is usual; elsewhere (visit types, diagnoses,
procedures: several systems serve) a person names it."""


def count_codes(concept: Any, unrecognised: Counter[tuple[str, str, str]], resource_type: str) -> None:
    """Count the codes of a code element (a concept, or a list of them) as unrecognised: (resource type,
    system as sent, code)."""
    for each in concept if isinstance(concept, list) else [concept]:
        codings = each.get("coding") if isinstance(each, dict) else None
        for coding in codings if isinstance(codings, list) else ():
            if isinstance(coding, dict):
                code = coding.get("code")
                if code and isinstance(code, str):
                    system = coding.get("system")
                    unrecognised[resource_type, system if isinstance(system, str) else "", code] += 1


@dataclass(frozen=True, slots=True)
class UnrecognisedCode:
    resource_type: str
    element: str
    system: str
    code: str
    count: int

    def row(self) -> tuple[str, str, str, str, str]:
        return self.resource_type, self.element, self.system, self.code, str(self.count)


def unrecognised_codes(
    counts: Mapping[tuple[str, str, str], int],
    known: Mapping[str, frozenset[Code]],
    maps: ConceptMaps,
) -> list[UnrecognisedCode]:
    """Ingest's raw counts ((resource type, system as sent, code) -> count) merged under normalised systems,
    without what a map lists or a rule knows; by count, most first, then by key (deterministic)."""
    merged: Counter[tuple[str, str, str]] = Counter()
    for (resource_type, system, code), count in counts.items():
        normalised = normalise_system(system)
        pair = (normalised, code)
        if pair in maps.listed or pair in known.get(resource_type, ()):
            continue
        merged[resource_type, normalised, code] += count
    rows = [
        UnrecognisedCode(resource_type, ELEMENTS.get(resource_type, "code"), system, code, count)
        for (resource_type, system, code), count in merged.items()
    ]
    rows.sort(key=lambda r: (-r.count, r.resource_type, r.element, r.system, r.code))
    return rows


def csv_bytes(rows: Iterable[UnrecognisedCode]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row.row())
    return buffer.getvalue().encode()


def write_csv(folder: str | Path, rows: Iterable[UnrecognisedCode]) -> Path:
    path = Path(folder) / CSV_NAME
    write_private(path, csv_bytes(rows))
    return path


def report_section(rows: list[UnrecognisedCode]) -> dict[str, Any]:
    """The run report's summary: per element, how many distinct codes and resources, and the top ones."""
    by_element: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_element.setdefault(
            f"{row.resource_type}.{row.element}", {"codes": 0, "resources": 0, "top": []}
        )
        entry["codes"] += 1
        entry["resources"] += row.count
        if len(entry["top"]) < REPORT_TOP:
            entry["top"].append({"system": row.system, "code": row.code, "count": row.count})
    return {
        "file": CSV_NAME,
        "codes": len(rows),
        "resources": sum(row.count for row in rows),
        "by_element": dict(sorted(by_element.items())),
    }


def read_csv(source: str | Path) -> list[UnrecognisedCode]:
    """An unrecognised-codes.csv, or the run folder holding one."""
    path = Path(source)
    if path.is_dir():
        path = path / CSV_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != CSV_COLUMNS:
        raise ConfigError(f"{path}: not an {CSV_NAME} (expected the columns {','.join(CSV_COLUMNS)})")
    rows = []
    for number, fields in enumerate(reader, start=2):
        if len(fields) != len(CSV_COLUMNS) or not fields[3] or not fields[4].isdigit():
            raise ConfigError(f"{path}:{number}: expected {len(CSV_COLUMNS)} columns and a whole count")
        rows.append(UnrecognisedCode(fields[0], fields[1], fields[2], fields[3], int(fields[4])))
    return rows


def worth_mapping(row: UnrecognisedCode) -> bool:
    """A local code (of a code system no rule uses), or a visit type: what a site map is usually for. Standard
    codes no rule reads (a heart rate) are most of any export and need no map."""
    return row.system not in KNOWN_SYSTEMS or row.resource_type == "Encounter"


def draft_concept_map(
    rows: Iterable[UnrecognisedCode], *, name: str = "SiteCodeMappingsDraft"
) -> dict[str, Any]:
    """A valid R4 ConceptMap with every unrecognised code as a source element, its target left for a person:
    equivalence ``unmatched`` and a comment saying where the code was seen. Loaded as is, it applies nothing
    and the codes stay in the report; filling in a target code and an applied equivalence makes them count.
    One group per source system and usual target system (see ``_TARGET_SYSTEMS``)."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        if not row.system:
            continue  # a coding without a system cannot be mapped: a ConceptMap group names its source system
        target_system = _TARGET_SYSTEMS.get(row.resource_type, "")
        elements = groups.setdefault((row.system, target_system), {})
        element = elements.get(row.code)
        where = f"{row.resource_type}.{row.element} ({row.count} time{'' if row.count == 1 else 's'})"
        if element is None:
            elements[row.code] = {
                "code": row.code,
                "target": [{"equivalence": "unmatched", "comment": where}],
            }
        else:
            element["target"][0]["comment"] += f", {where}"
    out_groups = []
    for (source, target), elements in sorted(groups.items()):
        group: dict[str, Any] = {"source": source}
        if target:
            group["target"] = target
        group["element"] = [elements[code] for code in sorted(elements)]
        for element in group["element"]:
            comment = element["target"][0]["comment"]
            element["target"][0]["comment"] = (
                f"{DRAFT_MARK} seen in {comment}. To map it, set code (a code of the group's target system"
                f"{'' if target else ', which you name in group.target'}) and equivalence: equivalent, equal,"
                " wider or subsumes are applied."
            )
        out_groups.append(group)
    return {
        "resourceType": "ConceptMap",
        "name": name,
        "title": "Site code mappings (draft by fhir-cat2 codes suggest)",
        "status": "draft",
        "description": (
            "Local codes seen in the data that no value set or rule of fhir-cat2 knows. Fill in each target"
            " a local code stands for, or leave it unmatched (and remove the draft comment) to mark the code"
            " reviewed; load with --concept-maps DIR."
        ),
        "group": out_groups,
    }
