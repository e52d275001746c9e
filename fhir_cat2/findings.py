"""What the rules and measures conclude, with the evidence that decided it (the explanation trail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True, slots=True)
class Evidence:
    ref: str
    """The resource that decided it, as Type/id."""
    note: str
    """What about it counted: the value, the date, the code."""

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref, "note": self.note}


@dataclass(frozen=True, slots=True)
class QualityCode:
    """A quality-data code earned on one encounter."""

    rule_id: str
    code: str
    system: str
    modifiers: tuple[str, ...]
    label: str
    encounter_ref: str
    serviced: date
    because: str
    evidence: tuple[Evidence, ...]
    measure: str | None = None
    outcome: str | None = None
    """For a measure's claims code: the outcome it reports (met, not-met, excluded, exception)."""
    trail: Trail | None = None
    """The criterion that decided it, when a criterion did."""

    @property
    def display_code(self) -> str:
        return "-".join((self.code, *self.modifiers))

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "code": self.display_code,
            "system": self.system,
            "label": self.label,
            "encounter": self.encounter_ref,
            "serviced": self.serviced.isoformat(),
            "because": self.because,
            "measure": self.measure,
            "outcome": self.outcome,
            "evidence": [e.to_json() for e in self.evidence],
            **({"trail": self.trail.to_json()} if self.trail is not None else {}),
        }


@dataclass
class Trail:
    """One evaluated criterion: whether it held, why, on which evidence, and its sub-criteria."""

    label: str
    met: bool
    because: str
    evidence: tuple[Evidence, ...] = ()
    children: list[Trail] = field(default_factory=list)

    def all_evidence(self) -> list[Evidence]:
        out = list(self.evidence)
        for child in self.children:
            out.extend(child.all_evidence())
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"criterion": self.label, "met": self.met, "because": self.because}
        if self.evidence:
            data["evidence"] = [e.to_json() for e in self.evidence]
        if self.children:
            data["children"] = [c.to_json() for c in self.children]
        return data


@dataclass
class PopulationResult:
    code: str
    id: str
    member: bool
    trail: Trail | None
    """None when the population was not evaluated (e.g. numerator of a patient outside the denominator)."""
    note: str = ""
    count: int | None = None
    """Episodes in the population (encounter-based measures); None: 1 if member else 0."""

    @property
    def tally(self) -> int:
        return self.count if self.count is not None else (1 if self.member else 0)


@dataclass
class GroupResult:
    id: str
    populations: list[PopulationResult]

    def member(self, code: str) -> bool:
        return any(p.code == code and p.member for p in self.populations)

    def outcome(self) -> str:
        """One word: not-in-population, excluded, met, exception, not-met."""
        if not self.member("initial-population") or not self.member("denominator"):
            return "not-in-population"
        if self.member("denominator-exclusion"):
            return "excluded"
        if self.member("numerator"):
            return "met"
        if self.member("denominator-exception"):
            return "exception"
        return "not-met"


@dataclass
class EpisodeResult:
    """One episode (encounter) of an encounter-based measure, with its populations per group."""

    encounter_ref: str
    day: date
    groups: list[GroupResult]


@dataclass
class MeasureResult:
    measure_id: str
    patient_id: str
    groups: list[GroupResult]
    evaluated: tuple[str, ...]
    """Every resource reference that a population's evidence used, sorted."""
    qualifying_encounters: frozenset[str] = frozenset()
    """Encounters on which the measure's claims codes are reported (IP evidence, or IP episodes)."""
    episodes: list[EpisodeResult] | None = None
    """Encounter-based measures: one result per episode (the groups above then hold the counts)."""

    @property
    def in_initial_population(self) -> bool:
        return any(g.member("initial-population") for g in self.groups)

    def outcome(self, group_index: int = 0) -> str:
        """One word for a group: not-in-population, excluded, exception, met, not-met.

        For an encounter-based measure: the outcomes of its episodes, e.g. 'met 2, not-met 1'.
        """
        if self.episodes is not None:
            tally: dict[str, int] = {}
            for episode in self.episodes:
                word = episode.groups[group_index].outcome()
                if word != "not-in-population":
                    tally[word] = tally.get(word, 0) + 1
            return ", ".join(f"{word} {n}" for word, n in sorted(tally.items())) or "not-in-population"
        return self.groups[group_index].outcome()
