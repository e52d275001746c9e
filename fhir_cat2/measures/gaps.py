"""Care gaps: which measure groups still need action for a patient, and what would close them.

Pure, from a measure result and the measure's own wording (``gap:`` of each group in the rules table). A gap
exists for a patient (or an episode) in the denominator, neither excluded nor an exception. It is OPEN when
the group's outcome is the one that needs action: not in the numerator, or for an inverse measure
(improvement notation ``decrease``: the numerator is the poor outcome) in it; CLOSED otherwise. What would
close an open gap is the group's finding (``found`` filled with the evidence of the criteria that decided
the numerator, else ``missing``) and its need by the end of the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ..findings import GroupResult, MeasureResult, Trail, deciding
from ..rules.measure_schema import GapWording, MeasureDef

OPEN = "open-gap"
CLOSED = "closed-gap"

_READING = re.compile(
    r"^(?P<name>\w+) (?P<value>-?[\d.]+|no) (?P<unit>\S+)(?: \(documented [^)]*\))?"
    r" on (?P<day>\d{4}-\d{2}-\d{2})"
)
"""An evidence note of a reading, as the readings word it: 'systolic_bp 152 mm[Hg] on 2025-10-02', or
'hba1c no value on 2025-07-07' for a test documented without a result (which the measures count as none)."""
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class CareGap:
    """One gap of one patient: a group of a measure (and the episode of an episode-based measure)."""

    measure_id: str
    group_id: str
    group_index: int
    episode: str | None
    """The encounter or procedure of an episode-based measure (None: patient basis)."""
    status: str
    """open-gap or closed-gap (the DEQM gaps-status codes)."""
    need: str
    """What the measure asks for, in a care coordinator's words."""
    close: str
    """What would close an open gap, from the evidence ("" for a closed gap)."""
    by: date
    """The day by which it must be closed: the end of the measurement period."""

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def line(self) -> str:
        """One line for explain: 'open gap: <what closes it>' or 'closed gap: <need> done'."""
        if self.is_open:
            return f"open gap: {self.close}"
        return f"closed gap: {self.need}"


def care_gaps(measure: MeasureDef, result: MeasureResult, period_end: date) -> list[CareGap]:
    """The gaps of one patient for one measure: per group (per episode and group for episode-based
    measures), in the measure's order; none where the patient is outside the denominator, excluded or an
    exception, or where the group has no gap wording."""
    gaps: list[CareGap] = []
    if result.episodes is not None:
        for episode in result.episodes:
            for index, group in enumerate(episode.groups):
                gap = group_gap(measure, index, group, period_end, episode.encounter_ref)
                if gap is not None:
                    gaps.append(gap)
        return gaps
    for index, group in enumerate(result.groups):
        gap = group_gap(measure, index, group, period_end, None)
        if gap is not None:
            gaps.append(gap)
    return gaps


def group_gap(
    measure: MeasureDef, index: int, group: GroupResult, period_end: date, episode: str | None
) -> CareGap | None:
    """The gap of one group (of one episode), or None when the patient has none there."""
    wording = measure.groups[index].gap
    outcome = group.outcome()
    if wording is None or outcome not in ("met", "not-met"):
        return None
    inverse = measure.improvement_notation == "decrease"
    is_open = (outcome == "met") if inverse else (outcome == "not-met")
    year = str(period_end.year)
    by = period_end.isoformat()
    need = wording.need.format(year=year, by=by, evidence="")
    close = ""
    if is_open:
        close = _close(wording, need, _numerator_trail(group), year, by)
    return CareGap(measure.id, group.id, index, episode, OPEN if is_open else CLOSED, need, close, period_end)


def _numerator_trail(group: GroupResult) -> Trail | None:
    for population in group.populations:
        if population.code == "numerator":
            return population.trail
    return None


def _close(wording: GapWording, need: str, trail: Trail | None, year: str, by: str) -> str:
    evidence = evidence_words(trail) if trail is not None else ""
    if evidence and wording.found is not None:
        finding = wording.found.format(year=year, by=by, evidence=evidence)
    else:
        finding = wording.missing.format(year=year, by=by, evidence="")
    if wording.close is not None:
        return f"{finding}: {wording.close.format(year=year, by=by, evidence=evidence)}"
    return f"{finding}: {need} by {by} closes it"


def evidence_words(trail: Trail) -> str:
    """The evidence of the criteria that decided ``trail``, in few words: the latest reading day's values
    ('152/94 mm[Hg] on 2025-10-02'), else 'on <day>' of the latest dated record; '' when none counted."""
    readings: dict[str, list[tuple[str, str]]] = {}
    days: list[str] = []
    for decided in deciding(trail):
        for item in decided.evidence:
            note = item.note
            if note.startswith("not counted"):
                continue
            reading = _READING.match(note)
            if reading is not None:
                if reading["value"] == "no":
                    continue  # documented without a result: as if none (CQL: a null value)
                values = readings.setdefault(reading["day"], [])
                if (reading["value"], reading["unit"]) not in values:
                    values.append((reading["value"], reading["unit"]))
                continue
            days.extend(_DAY.findall(note)[:1])
    if readings:
        day = max(readings)
        values = readings[day]
        units = {unit for _, unit in values}
        if len(units) == 1:
            return f"{'/'.join(value for value, _ in values)} {units.pop()} on {day}"
        return f"{'/'.join(f'{value} {unit}' for value, unit in values)} on {day}"
    if days:
        return f"on {max(days)}"
    return ""
