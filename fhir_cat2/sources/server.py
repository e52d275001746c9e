"""A live FHIR server as a source: which patients changed in a window, and each patient's whole context.

Measures need a patient's data for the whole period, and an amended Observation changes the Observation's
``_lastUpdated``, not its Encounter's. So a sync (1) searches every resource type the rules read for
``_lastUpdated=gt<since>&_lastUpdated=le<until>`` and collects the patients those resources belong to, then
(2) fetches each affected patient's context (Patient, Encounters, Observations, Conditions, Procedures,
Immunizations, Coverage, billing Claims...) with batched searches (``patient=a,b,c``), and yields it as
``InputItem``s for the same Pipeline replay uses. The pipeline's relevance filter drops what no rule reads,
and de-duplicates a resource seen on two pages.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..emit.ids import TAG_CODE, TAG_SYSTEM
from ..errors import FatalServerError, QuarantineKind
from ..fhir import FhirClient, SearchPage, next_link
from .fields import MAPS
from .files import InputItem, Rejected
from .records import Src
from .values import plain_resolver

log = logging.getLogger("fhir_cat2.sources.server")

# Always read: the patient, the visits, diagnoses, and what a Claim's insurance and pointers come from.
CORE_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "Procedure",
    "Immunization",
    "Coverage",
    "Claim",
)
# Search parameters that select a type's resources by patient, in order of preference.
PATIENT_PARAMS: dict[str, tuple[str, ...]] = {
    "Patient": ("_id",),
    "Coverage": ("beneficiary", "patient"),
    "Claim": ("patient",),
    "Immunization": ("patient",),
    "AdverseEvent": ("subject",),  # R4 declares no patient parameter for it
}
_DEFAULT_PATIENT_PARAMS = ("patient", "subject")
# Where a resource names its patient, for the change scan.
_PATIENT_ELEMENTS = ("subject", "patient", "beneficiary", "for")

PageObserver = Callable[[str, str, SearchPage], None]
"""Called with (phase, resource type, page) for every page fetched (record mode saves them)."""


def default_types(rule_types: Iterable[str]) -> list[str]:
    """The resource types a sync reads: the core ones plus every type the rules table reads."""
    wanted = list(CORE_TYPES)
    for resource_type in sorted(rule_types):
        if resource_type not in wanted and resource_type in MAPS:
            wanted.append(resource_type)
    return wanted


def supported_types(capabilities: dict[str, Any]) -> dict[str, set[str]]:
    """Resource types the server can search, with the search parameters it declares for each."""
    out: dict[str, set[str]] = {}
    for rest in capabilities.get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode", "server") != "server":
            continue
        for resource in rest.get("resource") or []:
            if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
                continue
            interactions = {i.get("code") for i in resource.get("interaction") or [] if isinstance(i, dict)}
            if interactions and "search-type" not in interactions:
                continue
            params = {p.get("name") for p in resource.get("searchParam") or [] if isinstance(p, dict)}
            out[resource["type"]] = {p for p in params if isinstance(p, str)}
    return out


def server_interactions(capabilities: dict[str, Any]) -> set[str]:
    codes: set[str] = set()
    for rest in capabilities.get("rest") or []:
        if isinstance(rest, dict):
            codes.update(str(i.get("code")) for i in rest.get("interaction") or [] if isinstance(i, dict))
    return codes


def patient_param(resource_type: str, declared: set[str]) -> str | None:
    """The search parameter that selects ``resource_type`` by patient on this server (None: cannot)."""
    for name in PATIENT_PARAMS.get(resource_type, _DEFAULT_PATIENT_PARAMS):
        if name == "_id" or not declared or name in declared:
            return name
    return None


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource belongs to (subject/patient/beneficiary, a Task's for), or None."""
    if resource.get("resourceType") == "Patient":
        value = resource.get("id")
        return value if isinstance(value, str) and value else None
    for name in _PATIENT_ELEMENTS:
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            resolved = plain_resolver(ref["reference"])
            kind, _, rid = resolved.partition("/")
            if kind == "Patient" and rid and "/" not in rid:
                return rid
    return None


def _last_updated(entry: dict[str, Any]) -> str | None:
    resource = entry.get("resource") or {}
    value = (resource.get("meta") or {}).get("lastUpdated") if isinstance(resource, dict) else None
    return value if isinstance(value, str) else None


def _identity(entry: dict[str, Any]) -> tuple[str, str]:
    resource = entry.get("resource") or {}
    return str(resource.get("id")), str((resource.get("meta") or {}).get("versionId"))


def is_ours(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == TAG_SYSTEM and t.get("code") == TAG_CODE for t in tags
    )


@dataclass
class ChangeScan:
    patients: set[str] = field(default_factory=set)
    changed: Counter[str] = field(default_factory=Counter)
    """Resources found in the window, per type (our own write-backs excluded)."""
    unattached: Counter[str] = field(default_factory=Counter)
    """Changed resources that name no patient (nothing to recompute for them)."""
    pages: int = 0


class ServerSource:
    def __init__(
        self,
        client: FhirClient,
        types: list[str],
        *,
        page_size: int = 200,
        patient_batch: int = 50,
        observer: PageObserver | None = None,
        scan_paging: str = "links",
    ) -> None:
        self.client = client
        self.types = types
        self.page_size = page_size
        self.patient_batch = patient_batch
        self.observer = observer
        self.scan_paging = scan_paging
        self.declared: dict[str, set[str]] = {}
        self.gaps: dict[str, str] = {}
        """What the CapabilityStatement lacks, by resource type: read once per run, reported once per run."""
        self.context_pages = 0

    def plan(self, capabilities: dict[str, Any]) -> list[str]:
        """Keep the types the server can search; returns the ones skipped. What the server lacks (a type,
        a patient search parameter) is kept in ``gaps`` for the caller to report once (``report_gaps``)."""
        supported = supported_types(capabilities)
        skipped = [t for t in self.types if supported and t not in supported]
        self.types = [t for t in self.types if not supported or t in supported]
        self.declared = {t: supported.get(t, set()) for t in self.types}
        self.gaps = {t: "not searchable" for t in skipped}
        for resource_type in self.types:
            if patient_param(resource_type, self.declared[resource_type]) is None:
                self.gaps[resource_type] = "no patient search parameter"
        self.gaps = dict(sorted(self.gaps.items()))
        return skipped

    # -------------------------------------------------------------------------------------- changes

    def scan(self, windows: dict[str, tuple[str | None, str]]) -> ChangeScan:
        """Patients with any resource of a read type whose _lastUpdated is in (since, until]."""
        result = ChangeScan()
        for resource_type in self.types:
            since, until = windows[resource_type]
            if self.scan_paging == "keyset":
                pages = self._keyset_pages(resource_type, since, until)
            else:
                params = [("_lastUpdated", f"gt{since}")] if since else []
                params += [("_lastUpdated", f"le{until}"), ("_count", str(self.page_size))]
                pages = self.client.search_pages(resource_type, params)
            seen: set[tuple[str, str]] = set()
            for page in pages:
                result.pages += 1
                if self.observer:
                    self.observer("changes", resource_type, page)
                for entry in page.entries:
                    resource = entry.get("resource")
                    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
                        continue
                    if resource_type == "Claim" and is_ours(resource):
                        continue  # our own write-back: it changes nothing clinical
                    identity = (str(resource.get("id")), str((resource.get("meta") or {}).get("versionId")))
                    if identity in seen:
                        continue  # the same version on two pages
                    seen.add(identity)
                    result.changed[resource_type] += 1
                    patient_id = patient_of(resource)
                    if patient_id is None:
                        result.unattached[resource_type] += 1
                    else:
                        result.patients.add(patient_id)
            log.info("%s: %d changed in the window", resource_type, result.changed[resource_type])
        return result

    def _keyset_pages(self, resource_type: str, since: str | None, until: str) -> Iterator[SearchPage]:
        """Keyset paging on _lastUpdated, for servers whose next links are offsets over live data (a
        resource updated mid-walk shifts the offsets: one is skipped). Each page is a new search from the
        last lastUpdated seen (ge), sorted by _lastUpdated; what was seen already is skipped; the walk ends
        on a page that brings nothing new. A group of ties larger than a page is walked by its next links."""
        cursor, operator = since, "gt"
        seen: set[tuple[str, str]] = set()
        while True:
            params = [("_lastUpdated", f"{operator}{cursor}")] if cursor else []
            params += [
                ("_lastUpdated", f"le{until}"),
                ("_sort", "_lastUpdated"),
                ("_count", str(self.page_size)),
            ]
            walk = self.client.search_pages(resource_type, params)
            page = next(walk)
            if all(_identity(e) in seen for e in page.entries):
                return
            yield page
            seen.update(_identity(e) for e in page.entries)
            stamps = [_last_updated(e) for e in page.entries]
            if None in stamps:
                raise FatalServerError(f"{resource_type}: keyset paging needs meta.lastUpdated everywhere")
            if next_link(page.bundle) is None:
                return  # the last page of this search: nothing later within the window
            if stamps[0] == stamps[-1]:
                yield from walk  # a page of ties only: the rest of this search by its own links
                return
            cursor, operator = stamps[-1], "ge"

    # -------------------------------------------------------------------------------------- context

    def contexts(self, patient_ids: Iterable[str]) -> Iterator[InputItem | Rejected]:
        """Every resource of the read types for these patients, batch by batch, as pipeline input."""
        ordered = sorted(set(patient_ids))
        for start in range(0, len(ordered), self.patient_batch):
            batch = ordered[start : start + self.patient_batch]
            yield from self._batch_context(batch)

    def _batch_context(self, batch: list[str]) -> Iterator[InputItem | Rejected]:
        for resource_type in self.types:
            param = patient_param(resource_type, self.declared.get(resource_type, set()))
            if param is None:
                continue  # a capability gap, reported once by plan's caller
            values = ",".join(batch if param == "_id" else (f"Patient/{p}" for p in batch))
            params = [(param, values), ("_count", str(self.page_size))]
            for page in self.client.search_pages(resource_type, params):
                self.context_pages += 1
                if self.observer:
                    self.observer("context", resource_type, page)
                where = f"{self.client.base_url} {resource_type} search page {page.number}"
                for index, entry in enumerate(page.entries):
                    yield from self._item(entry, Src(where, f"entry[{index}]"))

    def _item(self, entry: dict[str, Any], src: Src) -> Iterator[InputItem | Rejected]:
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            yield Rejected(QuarantineKind.NOT_FHIR, src, "search entry without a FHIR resource")
            return
        resource_id = resource.get("id")
        resource_type = resource["resourceType"]
        if not isinstance(resource_id, str) or not resource_id:
            yield Rejected(
                QuarantineKind.MALFORMED_RESOURCE, src, f"{resource_type} returned by the server has no id"
            )
            return
        yield InputItem(resource, src, plain_resolver, resource_id)


def report_gaps(gaps: dict[str, str], already_reported: bool) -> None:
    """One line for all of a run's capability gaps: a WARNING the first time a server (and job) shows them,
    INFO on the runs after, which see the same gaps (nothing changed that anybody could act on)."""
    if not gaps:
        return
    listed = "; ".join(f"{t} {why}" for t, why in gaps.items())
    log.log(
        logging.INFO if already_reported else logging.WARNING,
        "capability gaps (the server's CapabilityStatement lacks them; these types are not read): %s%s",
        listed,
        " (reported before; unchanged)" if already_reported else "",
    )
