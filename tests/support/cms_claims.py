"""Read CMS's claims single-source files (../shared/reference/cms-qpp) into quality-data-code options.

Test support only: the project never reads these files at run time; its own rules table carries the codes.
Grammar of DATA ELEMENT NAME (research/measure-logic.md §4.2, checked against the 2024/2025 JSON):

    (CPT_II|G_CODE)[_<combination>]_(PD|PN|DENOM_CODE)[_(Exe|Exl|X)][_<rate>]

PN = performance met, PN_X = not met, PD_Exl = denominator exclusion, PD_Exe = denominator exception,
PD = met or not met (redundant), DENOM_CODE = a code that is itself a denominator requirement. Rows of one
(sub-)measure, category and combination number are codes reported together.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

FILES = {
    2019: "2019_Claims_SingleSource_v2.0.csv",
    2020: "2020_Claims_SingleSource_v1.4.csv",
    2021: "2021_Claims_SingleSource_v1.3.csv",
    2022: "2022_Claims_SingleSource_v6.0_08-12-2022.csv",
    2023: "2023_Claims_SingleSource_v7.0_1.29.24.csv",
    2024: "2024_Claims_SingleSource_v8.csv",
    2025: "2025_Claims_SingleSource.csv",
}
JSON_FILES = {2024: "2024_qpp-single-source.json", 2025: "2025_qpp-single-source.json"}

_ELEMENT = re.compile(
    r"^(CPT_II|G_CODE)(?:_(\d+))?_(PD|PN|DENOM_CODE)(?:_(Exe|Exl|X))?(?:_(\d+))?$", re.IGNORECASE
)
CATEGORY = {
    ("PN", None): "met",
    ("PN", "X"): "not_met",
    ("PD", "EXL"): "exclusion",
    ("PD", "EXE"): "exception",
    ("PD", None): "performance",
    ("DENOM_CODE", None): "denominator",
}
JSON_CATEGORY = {
    "performanceMet": "met",
    "performanceNotMet": "not_met",
    "eligiblePopulationExclusion": "exclusion",
    "eligiblePopulationException": "exception",
}

Qdc = tuple[str, tuple[str, ...]]
Option = frozenset[Qdc]
Options = dict[tuple[str, str], dict[str, set[Option]]]
"""(measure '001', sub-rate '00'/'01'/'02') -> category -> options (codes reported together)."""


def measure_key(raw: str) -> tuple[str, str]:
    """'1' -> ('001', '00'); '226.01' -> ('226', '01'); '113ᵻ' -> ('113', '00')."""
    cleaned = re.sub(r"[^0-9.]", "", raw)
    base, _, sub = cleaned.partition(".")
    return base.zfill(3), (sub or "00").zfill(2)


def parse_rate(text: str) -> tuple[str, str]:
    """Our group's MIPS rate: '226' -> ('226', '00'), '226.01' -> ('226', '01')."""
    return measure_key(text)


def _modifiers(raw: str) -> tuple[str, ...]:
    required = raw.split("\u2260")[0]  # 2019/2020: 'required, ≠ forbidden'
    return tuple(sorted(m.strip() for m in required.split(",") if m.strip()))


def load_csv(path: Path, year: int) -> Options:
    groups: dict[tuple[str, str, str, str], set[Qdc]] = defaultdict(set)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    multi_rate = {measure_key(r["Measure ID"])[0] for r in rows if "." in (r.get("Measure ID") or "")}
    for index, row in enumerate(rows):
        element = (row.get("DATA ELEMENT NAME") or "").strip()
        match = _ELEMENT.match(element)
        if not match:
            continue
        base, sub = measure_key(row["Measure ID"])
        combo, rate = match.group(2), match.group(5)
        if year <= 2020 and rate is None and combo and base in multi_rate and int(combo) == int(sub) + 1:
            combo = None  # 2019/2020 wrote the rate index in the combination slot
        kind = match.group(3).upper()
        suffix = match.group(4).upper() if match.group(4) else None
        category = CATEGORY[(kind, suffix)]
        code = (row.get("CODE") or "").strip()
        if not code:
            continue
        slot = combo if combo is not None else f"row{index}"
        groups[(base, sub, category, slot)].add((code, _modifiers(row.get("MODIFIER") or "")))
    options: Options = defaultdict(lambda: defaultdict(set))
    for (base, sub, category, _), codes in groups.items():
        options[(base, sub)][category].add(frozenset(codes))
    return options


def load_json(path: Path) -> Options:
    data = json.loads(path.read_text(encoding="utf-8"))
    options: Options = defaultdict(lambda: defaultdict(set))
    for measure_id, measure in data.items():
        for option in measure.get("performanceOptions") or []:
            category = JSON_CATEGORY.get(option.get("optionType"))
            if category is None:
                continue
            codes = frozenset(
                (q["code"], tuple(sorted(q.get("modifiers") or ()))) for q in option.get("qualityCodes") or []
            )
            options[(measure_id.zfill(3), option.get("optionGroup", "00"))][category].add(codes)
    return options


def listed_codes(options: Options, key: tuple[str, str]) -> set[Qdc]:
    """Every (code, modifiers) the file lists for a (sub-)measure, in any category."""
    out: set[Qdc] = set()
    for category_options in options.get(key, {}).values():
        for option in category_options:
            out |= option
    return out
