"""Explanations: why a patient earned each code and each population membership, as text or JSON."""

from __future__ import annotations

from typing import Any

from .findings import MeasureResult, Trail
from .pipeline import PatientOutcome
from .rules.loader import RuleSet

_MARK = {True: "[x]", False: "[ ]"}


def outcome_to_json(outcome: PatientOutcome, ruleset: RuleSet, measure_ids: list[str] | None) -> dict[str, Any]:
    measures = []
    for measure_id, result in outcome.measure_results.items():
        if measure_ids and measure_id not in measure_ids:
            continue
        measures.append(_measure_json(result, ruleset))
    return {
        "patient": f"Patient/{outcome.ctx.patient_id}",
        "codes": [c.to_json() for c in outcome.codes if not measure_ids or c.measure in (None, *measure_ids)],
        "measures": measures,
        "ignored_observations": [{"ref": ref, "why": why} for ref, why in outcome.readings.ignored],
        "quarantined": [{"ref": p.ref, "reason": p.reason} for p in outcome.readings.problems],
    }


def _measure_json(result: MeasureResult, ruleset: RuleSet) -> dict[str, Any]:
    measure = ruleset.measure(result.measure_id)
    return {
        "measure": measure.id,
        "title": measure.title,
        "url": measure.url,
        "outcome": result.outcome(),
        "groups": [
            {
                "id": group.id,
                "populations": [
                    {
                        "population": p.code,
                        "id": p.id,
                        "member": p.member,
                        "note": p.note,
                        "trail": p.trail.to_json() if p.trail else None,
                    }
                    for p in group.populations
                ],
            }
            for group in result.groups
        ],
    }


def outcome_to_text(outcome: PatientOutcome, ruleset: RuleSet, measure_ids: list[str] | None) -> str:
    lines = [f"Patient/{outcome.ctx.patient_id}"]
    codes = [c for c in outcome.codes if not measure_ids or c.measure in (None, *measure_ids)]
    lines.append("")
    lines.append(f"Codes earned ({len(codes)}):")
    if not codes:
        lines.append("  none")
    for code in codes:
        lines.append(f"  {code.display_code:<9} {code.label}  [{code.encounter_ref}, {code.serviced.isoformat()}]")
        lines.append(f"            rule {code.rule_id}: {code.because}")
        for evidence in code.evidence:
            lines.append(f"            evidence {evidence.ref}: {evidence.note}")
    for measure_id, result in outcome.measure_results.items():
        if measure_ids and measure_id not in measure_ids:
            continue
        measure = ruleset.measure(measure_id)
        lines.append("")
        lines.append(f"{measure.id} ({measure.title}): {result.outcome().upper()}")
        for group in result.groups:
            if len(result.groups) > 1:
                lines.append(f"  group {group.id}")
            for population in group.populations:
                lines.append(f"  {_MARK[population.member]} {population.code}")
                if population.trail is None:
                    lines.append(f"        not evaluated: {population.note}")
                    continue
                if population.note:
                    lines.append(f"        note: {population.note}")
                _trail_lines(population.trail, lines, depth=2)
    if outcome.readings.ignored:
        lines.append("")
        lines.append("Observations that did not count:")
        for ref, why in outcome.readings.ignored:
            lines.append(f"  {ref}: {why}")
    if outcome.readings.problems:
        lines.append("")
        lines.append("Quarantined:")
        for problem in outcome.readings.problems:
            lines.append(f"  {problem.ref}: {problem.reason}")
    return "\n".join(lines) + "\n"


def _trail_lines(trail: Trail, lines: list[str], depth: int) -> None:
    pad = "    " * depth
    lines.append(f"{pad}{_MARK[trail.met]} {trail.label}: {trail.because}")
    for evidence in trail.evidence:
        lines.append(f"{pad}      - {evidence.ref}: {evidence.note}")
    for child in trail.children:
        _trail_lines(child, lines, depth + 1)
