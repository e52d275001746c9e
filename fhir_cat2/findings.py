"""What the rules and measures conclude, with the evidence that decided it (the explanation trail)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any


class Evidence:
    """The resource that decided it (``ref``, as Type/id) and what about it counted (``note``: the value, the
    date, the code).

    The note can be given as a function that writes it, with its arguments (``Evidence.later``): replay reads
    only the reference, so the words are written only when something reads them (explain, a code's evidence).
    """

    __slots__ = ("_args", "_note", "_write", "ref")

    def __init__(
        self, ref: str, note: str, write: Callable[..., str] | None = None, args: tuple[Any, ...] = ()
    ) -> None:
        self.ref = ref
        self._note = note
        self._write = write
        self._args = args

    @classmethod
    def later(cls, ref: str, write: Callable[..., str], *args: Any) -> Evidence:
        """Evidence whose note ``write(*args)`` returns when first read."""
        return cls(ref, "", write, args)

    @property
    def note(self) -> str:
        if self._write is not None:
            self._note, self._write, self._args = self._write(*self._args), None, ()
        return self._note

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Evidence):
            return NotImplemented
        return self.ref == other.ref and self.note == other.note

    def __hash__(self) -> int:
        return hash((self.ref, self.note))

    def __repr__(self) -> str:
        return f"Evidence(ref={self.ref!r}, note={self.note!r})"

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


class Trail:
    """One evaluated criterion: whether it held, why, on which evidence, and its sub-criteria.

    ``label`` and ``because`` can be given as a function that writes both, with its arguments
    (``Trail.later``): replay reads only ``met`` and the evidence, and writing the words (dates, bands, labels
    of sub-criteria) was most of the cost of judging a criterion. The words are the same whenever they are
    read.
    """

    __slots__ = ("_args", "_because", "_label", "_write", "children", "evidence", "met")

    def __init__(
        self,
        label: str,
        met: bool,
        because: str,
        evidence: tuple[Evidence, ...] = (),
        children: list[Trail] | None = None,
        write: Callable[..., tuple[str, str]] | None = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        self._label = label
        self.met = met
        self._because = because
        self.evidence = evidence
        self.children: list[Trail] = children if children is not None else []
        self._write = write
        self._args = args

    @classmethod
    def later(
        cls,
        write: Callable[..., tuple[str, str]],
        args: tuple[Any, ...],
        met: bool,
        evidence: tuple[Evidence, ...] = (),
        children: list[Trail] | None = None,
    ) -> Trail:
        """A trail whose (label, because) ``write(*args)`` returns when first read."""
        return cls("", met, "", evidence, children, write, args)

    def _words(self) -> None:
        if self._write is not None:
            (self._label, self._because), self._write, self._args = self._write(*self._args), None, ()

    @property
    def label(self) -> str:
        if self._write is not None:
            self._words()
        return self._label

    @property
    def because(self) -> str:
        if self._write is not None:
            self._words()
        return self._because

    def __repr__(self) -> str:
        return f"Trail(label={self.label!r}, met={self.met!r}, because={self.because!r})"

    def all_evidence(self) -> list[Evidence]:
        """Evidence of this trail and its sub-trails, depth first."""
        out: list[Evidence] = []
        pending = [self]
        while pending:
            trail = pending.pop()
            out.extend(trail.evidence)
            pending.extend(reversed(trail.children))
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"criterion": self.label, "met": self.met, "because": self.because}
        if self.evidence:
            data["evidence"] = [e.to_json() for e in self.evidence]
        if self.children:
            data["children"] = [c.to_json() for c in self.children]
        return data


def deciding(trail: Trail) -> list[Trail]:
    """The criteria that decided ``trail``: what held when it holds, what failed when it does not."""
    if not trail.children or (trail.met and trail.evidence):
        return [trail]
    if len(trail.children) == 1 and trail.met != trail.children[0].met:  # a 'not'
        return deciding(trail.children[0])
    same = [c for c in trail.children if c.met == trail.met]
    if not same:
        return [trail]
    if trail.because.startswith(("holds", "none holds")):  # an 'any'
        if trail.met:
            same = same[:1]  # one reason it holds is enough
        else:
            return same  # every alternative failed: one line each says why
    out: list[Trail] = []
    for child in same:
        out.extend(deciding(child))
    return out


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
class Stratum:
    """One stratifier of a group: the population counts of the patient (or its episodes) within it."""

    id: str
    counts: dict[str, int]


@dataclass
class GroupResult:
    id: str
    populations: list[PopulationResult]
    strata: tuple[Stratum, ...] = ()
    """Per stratifier of the group, in its order (none when the group has no stratifiers)."""

    def member(self, code: str) -> bool:
        # A plain loop, faster than any(): called per episode and population in the measure engine's tally.
        for population in self.populations:  # noqa: SIM110
            if population.code == code and population.member:
                return True
        return False

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
