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
            "evidence": [e.to_json() for e in self.evidence],
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


@dataclass
class GroupResult:
    id: str
    populations: list[PopulationResult]

    def member(self, code: str) -> bool:
        return any(p.code == code and p.member for p in self.populations)


@dataclass
class MeasureResult:
    measure_id: str
    patient_id: str
    groups: list[GroupResult]
    evaluated: tuple[str, ...]
    """Every resource reference that a population's evidence used, sorted."""
    qualifying_encounters: frozenset[str] = frozenset()

    @property
    def in_initial_population(self) -> bool:
        return any(g.member("initial-population") for g in self.groups)

    def outcome(self, group_index: int = 0) -> str:
        """One word for a group: not-in-population, excluded, exception, met, not-met."""
        group = self.groups[group_index]
        if not group.member("initial-population") or not group.member("denominator"):
            return "not-in-population"
        if group.member("denominator-exclusion"):
            return "excluded"
        if group.member("numerator"):
            return "met"
        if group.member("denominator-exception"):
            return "exception"
        return "not-met"
