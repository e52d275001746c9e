"""Explanations: why a patient earned each code and each population membership, as text or JSON.

Each measure (and each group or episode) opens with its outcome and the deciding criteria, so a quality
analyst can answer "why did this patient miss the numerator" from the first lines; the trail below shows every
criterion with the resources, values and dates that decided it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .conceptmaps import CodeMapping
from .findings import GroupResult, MeasureResult, PopulationResult, Trail, deciding
from .measures.gaps import CareGap, group_gap
from .pipeline import PatientOutcome
from .rules.loader import RuleSet
from .rules.measure_schema import MeasureDef
from .sources.records import ResourceRecord

_MARK = {True: "[x]", False: "[ ]"}
_HEADLINE = {
    "met": "MET",
    "not-met": "NOT MET",
    "excluded": "EXCLUDED",
    "exception": "EXCEPTION",
    "not-in-population": "NOT IN THE INITIAL POPULATION",
}


def _population(group: GroupResult, code: str) -> PopulationResult | None:
    for population in group.populations:
        if population.code == code:
            return population
    return None


def why(group: GroupResult) -> tuple[str, list[Trail]]:
    """(outcome, the criteria that decided it) for one group of one patient (or one episode)."""
    outcome = group.outcome()
    code = {
        "met": "numerator",
        "not-met": "numerator",
        "excluded": "denominator-exclusion",
        "exception": "denominator-exception",
        "not-in-population": "initial-population",
    }[outcome]
    population = _population(group, code)
    if outcome == "not-in-population" and population is not None and population.member:
        population = _population(group, "denominator")
    if population is None or population.trail is None:
        return outcome, []
    return outcome, deciding(population.trail)


def _why_json(group: GroupResult) -> dict[str, Any]:
    outcome, reasons = why(group)
    return {
        "outcome": outcome,
        "because": [
            {
                "criterion": t.label,
                "met": t.met,
                "because": t.because,
                "evidence": [e.to_json() for e in t.evidence],
            }
            for t in reasons
        ],
    }


def outcome_to_json(
    outcome: PatientOutcome,
    ruleset: RuleSet,
    measure_ids: list[str] | None,
    *,
    period_end: date | None = None,
) -> dict[str, Any]:
    """The explanation as JSON; with ``period_end``, each group also says its care gap (``gap``)."""
    measures = []
    for measure_id, result in outcome.measure_results.items():
        if measure_ids and measure_id not in measure_ids:
            continue
        measures.append(_measure_json(result, ruleset, period_end))
    return {
        "patient": f"Patient/{outcome.ctx.patient_id}",
        "codes": [c.to_json() for c in outcome.codes if not measure_ids or c.measure in (None, *measure_ids)],
        "measures": measures,
        "mapped_codes": [
            {"ref": ref, "source": m.source_text, "target": m.target_text, "map": m.map}
            for ref, m in _mapped(outcome)
        ],
        "ignored_observations": [{"ref": ref, "why": why} for ref, why in outcome.readings.ignored],
        "quarantined": [{"ref": p.ref, "reason": p.reason} for p in outcome.readings.problems],
    }


def _gap_json(gap: CareGap | None) -> dict[str, Any] | None:
    if gap is None:
        return None
    return {"status": gap.status, "need": gap.need, "close": gap.close, "by": gap.by.isoformat()}


def _groups_json(
    groups: list[GroupResult],
    measure: MeasureDef,
    period_end: date | None,
    episode: str | None = None,
) -> list[dict[str, Any]]:
    return [
        {
            "id": group.id,
            "summary": _why_json(group),
            **(
                {"gap": _gap_json(group_gap(measure, index, group, period_end, episode))}
                if period_end is not None
                else {}
            ),
            "populations": [
                {
                    "population": p.code,
                    "id": p.id,
                    "member": p.member,
                    "count": p.tally,
                    "note": p.note,
                    "trail": p.trail.to_json() if p.trail else None,
                }
                for p in group.populations
            ],
        }
        for index, group in enumerate(groups)
    ]


def _measure_json(result: MeasureResult, ruleset: RuleSet, period_end: date | None) -> dict[str, Any]:
    measure = ruleset.measure(result.measure_id)
    data: dict[str, Any] = {
        "measure": measure.id,
        "mips": measure.mips,
        "title": measure.title,
        "url": measure.url,
        "outcome": result.outcome(),
        "groups": _groups_json(result.groups, measure, period_end)
        if result.episodes is None
        else [
            {
                "id": g.id,
                "populations": [{"population": p.code, "id": p.id, "count": p.tally} for p in g.populations],
            }
            for g in result.groups
        ],
    }
    if result.episodes is not None:
        data["episodes"] = [
            {
                "encounter": e.encounter_ref,
                "day": e.day.isoformat(),
                "groups": _groups_json(e.groups, measure, period_end, e.encounter_ref),
            }
            for e in result.episodes
        ]
    return data


def outcome_to_text(
    outcome: PatientOutcome,
    ruleset: RuleSet,
    measure_ids: list[str] | None,
    *,
    full: bool = False,
    period_end: date | None = None,
) -> str:
    """The explanation as text; with ``period_end``, each group also says its care gap."""
    lines = [f"Patient/{outcome.ctx.patient_id}"]
    codes = [c for c in outcome.codes if not measure_ids or c.measure in (None, *measure_ids)]
    lines.append("")
    lines.append(f"Codes earned ({len(codes)}):")
    if not codes:
        lines.append("  none")
    for code in codes:
        lines.append(
            f"  {code.display_code:<9} {code.label}  [{code.encounter_ref}, {code.serviced.isoformat()}]"
        )
        lines.append(f"            rule {code.rule_id}: {code.because}")
        for evidence in code.evidence:
            lines.append(f"            evidence {evidence.ref}: {evidence.note}")
    for measure_id, result in outcome.measure_results.items():
        if measure_ids and measure_id not in measure_ids:
            continue
        measure = ruleset.measure(measure_id)
        lines.append("")
        name = f"{measure.id}" + (f" / MIPS {measure.mips}" if measure.mips else "")
        if result.episodes is not None:
            lines.append(f"{name} ({measure.title}): {result.outcome()} (one result per {measure.basis})")
            for episode in result.episodes:
                lines.append(f"  episode {episode.encounter_ref} on {episode.day.isoformat()}")
                for index, group in enumerate(episode.groups):
                    gap = _gap(measure, index, group, period_end, episode.encounter_ref)
                    if len(episode.groups) == 1:
                        _group_lines(group, lines, full, indent="    ", gap=gap)
                        continue
                    # several groups (CMS157): name each, as a patient-based measure's groups are
                    lines.append(f"    {_group_heading(measure, index, group)}")
                    _group_lines(group, lines, full, indent="      ", gap=gap)
            continue
        if measure.improvement_notation == "decrease":
            name += " [inverse measure: the numerator is the poor outcome]"
        if len(result.groups) == 1:
            lines.append(f"{name} ({measure.title})")
            gap = _gap(measure, 0, result.groups[0], period_end, None)
            _group_lines(result.groups[0], lines, full, indent="  ", gap=gap)
        else:
            lines.append(f"{name} ({measure.title}): {len(result.groups)} groups")
            for index, group in enumerate(result.groups):
                lines.append(f"  {_group_heading(measure, index, group)}")
                gap = _gap(measure, index, group, period_end, None)
                _group_lines(group, lines, full, indent="    ", gap=gap)
    mapped = _mapped(outcome)
    if mapped:
        lines.append("")
        lines.append("Codes counted through a site ConceptMap:")
        for ref, mapping in mapped:
            lines.append(f"  {ref}: {mapping.describe()}")
    if outcome.readings.ignored:
        lines.append("")
        lines.append("Observations that did not count:")
        for ref, reason in outcome.readings.ignored:
            lines.append(f"  {ref}: {reason}")
    if outcome.readings.problems:
        lines.append("")
        lines.append("Quarantined:")
        for problem in outcome.readings.problems:
            lines.append(f"  {problem.ref}: {problem.reason}")
    return "\n".join(lines) + "\n"


def _group_heading(measure: MeasureDef, index: int, group: GroupResult) -> str:
    """'group 2 (<the Measure's group id>, MIPS 226.02)': one group of a measure that has several."""
    rate = measure.groups[index].mips_rate
    return f"group {index + 1} ({group.id}{', MIPS ' + rate if rate else ''})"


def _mapped(outcome: PatientOutcome) -> list[tuple[str, CodeMapping]]:
    """(record reference, mapping) of every code a site ConceptMap added to this patient's records."""
    ctx = outcome.ctx
    records: list[ResourceRecord] = [*ctx.encounters, *ctx.observations, *ctx.conditions]
    for events in ctx.events.values():
        records.extend(events)
    return sorted(
        ((record.ref, mapping) for record in records for mapping in record.mappings),
        key=lambda pair: (pair[0], pair[1]),
    )


def _gap(
    measure: MeasureDef, index: int, group: GroupResult, period_end: date | None, episode: str | None
) -> CareGap | None:
    return None if period_end is None else group_gap(measure, index, group, period_end, episode)


def _group_lines(
    group: GroupResult, lines: list[str], full: bool, indent: str, gap: CareGap | None = None
) -> None:
    outcome, reasons = why(group)
    headline = _HEADLINE[outcome]
    lines.append(f"{indent}{headline}")
    if gap is not None:
        lines.append(f"{indent}  {gap.line()}")
    lead = {
        "met": "in the numerator because",
        "not-met": "missed the numerator because",
        "excluded": "excluded because",
        "exception": "a denominator exception because",
        "not-in-population": "not in the measure because",
    }[outcome]
    lines.append(f"{indent}  {lead}:")
    for trail in reasons:
        lines.append(f"{indent}    - {trail.label}: {trail.because}")
        for evidence in _unique(trail.evidence)[:5]:
            lines.append(f"{indent}        {evidence.ref}: {evidence.note}")
    lines.append(f"{indent}  trail:")
    for population in group.populations:
        lines.append(f"{indent}  {_MARK[population.member]} {population.code}")
        if population.trail is None:
            lines.append(f"{indent}        not evaluated: {population.note}")
            continue
        if population.note:
            lines.append(f"{indent}        note: {population.note}")
        # Exclusions that did not apply are summarised one level deep unless --full.
        depth_limit = None if full or population.member or population.code != "denominator-exclusion" else 1
        _trail_lines(population.trail, lines, pad=indent + "      ", limit=depth_limit, full=full)


def _trail_lines(
    trail: Trail, lines: list[str], pad: str, limit: int | None, level: int = 0, full: bool = False
) -> None:
    lines.append(f"{pad}{_MARK[trail.met]} {trail.label}: {trail.because}")
    for evidence in _unique(trail.evidence):
        lines.append(f"{pad}      - {evidence.ref}: {evidence.note}")
    if limit is not None and level >= limit:
        return
    for child in trail.children:
        # Alternatives that did not apply, beside one that did, get one line each unless --full.
        quiet = not full and trail.met and not child.met
        _trail_lines(child, lines, pad + "    ", level + 1 if quiet else limit, level + 1, full)


def _unique(evidence: Any) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    out = []
    for item in evidence:
        key = (item.ref, item.note)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
