"""Ingest: input items in, slim records by patient out, with what had to be quarantined and counted.

Each resource is screened by its codes (most Observations are vitals and labs no rule reads: dropped after a
look at one element), turned into a slim record, has the site's ConceptMaps applied, and is handed to
``add(patient_id, record)``: a grouper for one process, a bucket file for a forked map task, a row for Spark.
What cannot be used goes to ``quarantine`` with a reason and its kind. The counts (resources read and used,
unrecognised codes, encounter years, birth years) are kept in ``stats``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .codes import count_codes
from .emit.ids import TAG_CODE, TAG_SYSTEM
from .errors import InputError, QuarantineKind
from .quarantine import QuarantineEntry
from .rules.loader import RuleSet
from .sources.fields import CODE_ELEMENT, MAPS, to_record
from .sources.files import InputItem, InputPart, Rejected, read_part
from .sources.records import (
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    ResourceRecord,
)
from .stats import RunStats
from .terminology import KNOWN_SYSTEMS, normalise_system

log = logging.getLogger("fhir_cat2.ingest")

Items = Iterable[InputItem | Rejected]


class Screen:
    """How each resource type is taken in, decided once from the rules (immutable; shared by workers)."""

    def __init__(self, ruleset: RuleSet, only_patient: str | None = None) -> None:
        self.relevant = ruleset.relevant_codes()
        self.relevant_code_values: dict[str, dict[str, set[str]]] = {}
        for resource_type, codes in self.relevant.items():
            by_value: dict[str, set[str]] = {}
            for system, code in codes:
                by_value.setdefault(code, set()).add(system)
            self.relevant_code_values[resource_type] = by_value
        # A type some rule reads whatever its code (CMS646's staging result) is also kept by its value code.
        self.value_screens: dict[str, dict[str, set[str]]] = {}
        for resource_type, codes in ruleset.value_screened_codes().items():
            by_value = self.value_screens.setdefault(resource_type, {})
            for system, code in codes:
                by_value.setdefault(code, set()).add(system)
        # Read whole (None), screened by the codes of one element (most Observations are vitals and labs no
        # rule reads), or, when absent, counted and dropped.
        self.screens: dict[str, tuple[str, dict[str, set[str]]] | None] = {}
        for resource_type in MAPS:
            element = CODE_ELEMENT.get(resource_type) if resource_type != "Condition" else None
            if element is None:
                self.screens[resource_type] = None
            elif self.relevant.get(resource_type) or resource_type in self.value_screens:
                self.screens[resource_type] = (element, self.relevant_code_values.get(resource_type, {}))
        maps = ruleset.concept_maps
        self.maps = maps if maps else None
        known = ruleset.known_codes()
        # Kept whole, whatever their codes: counted as unrecognised when none of their codes is known.
        self.known_whole = {t: known.get(t, frozenset()) for t in ("Encounter", "Condition")}
        self.only_patient = only_patient

    def relevance(self, resource_type: str, concept: Any) -> bool | str | None:
        """True: a rule reads it. None: nobody reads it. A string: why it is unusable (quarantine)."""
        codings: list[Any]
        if isinstance(concept, list):  # CarePlan/Consent category is a list of concepts
            codings = [c for cc in concept if isinstance(cc, dict) for c in _list_or_none(cc.get("coding"))]
        elif isinstance(concept, dict):
            codings = _list_or_none(concept.get("coding"))
        else:
            return None
        wanted = self.relevant[resource_type]
        by_value = self.relevant_code_values[resource_type]
        suspicious: str | None = None
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            code = coding.get("code")
            if not isinstance(code, str) or code not in by_value:
                continue  # a code no rule reads, under any system
            system = normalise_system(coding.get("system") if isinstance(coding.get("system"), str) else None)
            if (system, code) in wanted:
                return True
            expected = by_value.get(code)
            if expected and system not in KNOWN_SYSTEMS and suspicious is None:
                shown = system or "(none)"
                suspicious = (
                    f"code {code} has system '{shown}', which is not a known code system;"
                    f" expected {' or '.join(sorted(expected))}"
                )
        return suspicious


class Ingest:
    """Screens input items into slim records by patient (see the module's docstring)."""

    def __init__(
        self,
        screen: Screen,
        add: Callable[[str, ResourceRecord], None],
        quarantine: Callable[[QuarantineEntry], None],
        stats: RunStats | None = None,
    ) -> None:
        self.screen = screen
        self.add = add
        self._quarantine = quarantine
        self.stats = stats if stats is not None else RunStats()

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.stats.count_quarantined(entry.kind)
        # the reason itself can quote a value: it goes to quarantine.ndjson only, the log gets its kind
        # and no file name either (exports are often named after the patient)
        log.debug(
            "quarantined %s: %s",
            entry.ref or f"an input item ({entry.src.position or 'whole file'})",
            entry.kind,
        )
        self._quarantine(entry)

    def feed(self, items: Items) -> None:
        # The hot loop of replay: most items are dropped here, so that path does as little as it can.
        resources_read = self.stats.resources_read
        unrecognised = self.stats.unrecognised
        screens = self.screen.screens
        value_screens = self.screen.value_screens
        for item in items:
            if isinstance(item, Rejected):
                if item.unreadable:
                    self._unreadable(item)
                self.quarantine(QuarantineEntry(item.kind, item.src, item.reason, item.ref))
                continue
            resource = item.resource
            resource_type: str = resource["resourceType"]
            resources_read[resource_type] += 1
            screen = screens.get(resource_type, _DROPPED)
            if screen is _DROPPED:
                continue  # no rule reads this type
            if screen is not None:
                concept = resource.get(screen[0])
                if not _has_wanted_code(concept, screen[1]):
                    by_value = value_screens.get(resource_type)
                    value = resource.get("valueCodeableConcept") if by_value is not None else None
                    if by_value is None or not _has_wanted_code(value, by_value):
                        count_codes(concept, unrecognised, resource_type)  # no second pass for the report
                        continue  # no code any rule reads, under any system
                    screen = None  # kept for its value: a rule reads it whatever its code
            self._ingest_one(item, resource_type, screen)

    def feed_parts(
        self,
        parts: list[InputPart],
        *,
        counted: Callable[[Items], Items] | None = None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> None:
        """Ingest input parts (files, or line ranges of large NDJSON files) in order. ``counted`` wraps a
        part's items (a progress count); ``bytes_done`` is told each part's size once it is read."""
        for number, part in enumerate(parts, start=1):
            before = sum(self.stats.resources_read.values())
            items = read_part(part)
            self.feed(counted(items) if counted is not None else items)
            # by number, not name: exported files are often named after the patient (Synthea's are)
            log.debug(
                "input part %d of %d: %d resources",
                number,
                len(parts),
                sum(self.stats.resources_read.values()) - before,
            )
            if bytes_done is not None:
                bytes_done(part.size)

    def _unreadable(self, item: Rejected) -> None:
        """A file the system would not let us read is no bad data: the operator has to act, so it is named
        (its path only; the reason holds no data) and counted."""
        self.stats.files_unreadable += 1
        where = f" ({item.src.position})" if item.src.position else ""
        log.warning("cannot read input file %s%s: %s", item.src.file, where, item.reason)

    def _ingest_one(
        self, item: InputItem, resource_type: str, screen: tuple[str, dict[str, set[str]]] | None
    ) -> None:
        resource = item.resource
        stats = self.stats
        if screen is not None:
            concept = resource.get(screen[0])
            verdict = self.screen.relevance(resource_type, concept)
            if verdict is not True:
                if verdict:
                    ref = f"{resource_type}/{item.resource_id}"
                    self.quarantine(
                        QuarantineEntry(
                            QuarantineKind.UNKNOWN_CODE_SYSTEM, item.src, f"{ref}: {verdict}", ref
                        )
                    )
                else:  # a code value some rule reads, but under another (known) system
                    count_codes(concept, stats.unrecognised, resource_type)
                return
        elif resource_type == "Claim" and _is_ours(resource):
            return
        src = item.src
        try:
            record = to_record(resource, src, item.resolve, item.resource_id)
        except InputError as exc:
            self.quarantine(QuarantineEntry(exc.kind, src, str(exc), f"{resource_type}/{item.resource_id}"))
            return
        patient_id = record.patient_id
        if patient_id is None:
            ref = f"{resource_type}/{item.resource_id}"
            self.quarantine(
                QuarantineEntry(
                    QuarantineKind.NO_PATIENT_REFERENCE,
                    src,
                    f"{ref}: no Patient reference in its subject/patient; cannot attach it to a patient",
                    ref,
                )
            )
            return
        if self.screen.maps is not None:
            self._map_codes(record)
        known_whole = self.screen.known_whole
        if isinstance(record, EncounterRecord):
            if record.when is not None:
                year = record.when.start_day.year
                stats.take_year(year)
                stats.encounter_spans[year, record.when.end_day.year] += 1
            if record.type_codes.isdisjoint(known_whole["Encounter"]):
                stats.unrecognised.update((resource_type, s, c) for s, c in record.type_codes)
        elif isinstance(record, ConditionRecord):
            if record.codes.isdisjoint(known_whole["Condition"]):
                stats.unrecognised.update((resource_type, s, c) for s, c in record.codes)
        elif isinstance(record, PatientRecord) and record.birth_date is not None:
            stats.birth_years[record.birth_date.year] += 1
        if self.screen.only_patient is not None and patient_id != self.screen.only_patient:
            return
        stats.resources_used[resource_type] += 1
        self.add(patient_id, record)

    def _map_codes(self, record: ResourceRecord) -> None:
        """Add the codes the site's ConceptMaps map the record's codes to, marked as mapped."""
        maps = self.screen.maps
        assert maps is not None
        if isinstance(record, EncounterRecord):
            codes, mapped = maps.apply(record.type_codes)
            if mapped:
                record.type_codes, record.mapped = codes, mapped
        elif isinstance(record, (ObservationRecord, ConditionRecord, EventRecord)):
            codes, mapped = maps.apply(record.codes)
            if mapped:
                record.codes, record.mapped = codes, mapped
        else:
            return
        for mapping in record.mapped:
            self.stats.mapped[
                record.resource_type,
                mapping.map,
                f"{mapping.source[0]}|{mapping.source[1]}",
                f"{mapping.target[0]}|{mapping.target[1]}",
            ] += 1


_DROPPED: tuple[str, dict[str, set[str]]] = ("", {})  # Screen.screens of a type no rule reads


def _list_or_none(codings: Any) -> list[Any]:
    return codings if isinstance(codings, list) else []  # not a list of codings: none a rule could read


def _has_wanted_code(concept: Any, by_value: dict[str, set[str]]) -> bool:
    """Whether the code element may hold a code some rule reads (``Screen.relevance`` then decides): a
    code no rule reads under any system, the common case, needs no closer look."""
    if isinstance(concept, dict):
        codings = concept.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if isinstance(coding, dict):
                    code = coding.get("code")
                    if isinstance(code, str) and code in by_value:
                        return True
        return False
    return isinstance(concept, list)  # CarePlan/Consent category, a list of concepts: relevance reads it


def _is_ours(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == TAG_SYSTEM and t.get("code") == TAG_CODE for t in tags
    )


__all__ = ["Ingest", "Items", "Screen"]
