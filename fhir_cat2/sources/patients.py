"""Patient by patient: a sync for EHRs whose searches require a ``patient`` parameter (Epic, Oracle Health).

The population is the members of a Group (``GET Group/{id}``, ``member.entity``; a server that pages a large
Group answers with a Bundle whose next links are followed) or a file of patient ids. Each patient is read
with patient-scoped searches only, one patient per request (Epic refuses ``patient=a,b,c``):
``Observation?patient=ID&...``, or ``Patient/ID/$everything`` where the CapabilityStatement lists it.

Incremental runs use the search mode's per-type ``_lastUpdated`` windows, scoped to each patient
(``Observation?patient=ID&_lastUpdated=gt...``; with $everything one ``$everything?_since=`` per patient,
the windows applied to ``meta.lastUpdated`` here): a patient with any change in a window is fetched whole,
as search mode fetches a changed patient's whole context. A member the last completed run did not cover
is fetched whole too. Patients are fetched ``concurrency`` at a time (threads, one HTTP session each), and
handed on in patient-id order whatever order the fetches finish in, so outputs never depend on timing.

No search here is ever sent without a patient: not the change scan, and not the clock probe (the caller
counts ``Patient?_id=<a member>``, else takes the Date header).
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FatalServerError, ResourceGoneError
from ..fhir import FhirClient
from ..state import format_instant, parse_instant
from .files import InputItem, Rejected
from .records import Src
from .server import ServerSource, is_ours, patient_of, patient_param
from .values import plain_resolver

log = logging.getLogger("fhir_cat2.sources.patients")

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""The FHIR R4 ``id`` datatype."""


def read_patients_file(path: str) -> list[str]:
    """Patient ids, one a line (``Patient/ID`` is read as ID; blank lines and ``#`` comments skipped), sorted
    and without repeats. A line that is not a FHIR id refuses the whole file (exit 2), naming its line
    number and never its text: it is a mistake in a list somebody wrote, and running without that patient
    would leave them silently out of the population."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"source.patients_file: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"source.patients_file: {path} is not UTF-8 text") from None
    ids: set[str] = set()
    bad: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        patient_id = line.removeprefix("Patient/")
        if FHIR_ID.fullmatch(patient_id):
            ids.add(patient_id)
        else:
            bad.append(number)
    if bad:
        shown = ", ".join(str(n) for n in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ConfigError(
            f"source.patients_file: {path}: line {shown} is not a patient id (FHIR id: letters, digits,"
            " '-' and '.', at most 64; one id a line, or Patient/ID)"
        )
    if not ids:
        raise ConfigError(f"source.patients_file: {path} names no patient")
    return sorted(ids)


@dataclass
class Members:
    patients: list[str]
    """Patient ids, sorted, without repeats."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Members left out, by why (not a Patient reference, inactive)."""
    pages: int = 0


def group_members(client: FhirClient, group_id: str) -> Members:
    """The active Patient members of ``Group/{group_id}``, across pages where the server pages them."""
    if not FHIR_ID.fullmatch(group_id):
        raise ConfigError(f"source.group '{group_id}' is not a FHIR id")
    label = "read Group"
    try:
        response = client.request("GET", f"Group/{group_id}", what=label)
    except ResourceGoneError:
        raise ConfigError(f"source.group: Group/{group_id} is not on the server") from None
    body = response.body
    members = Members([])
    found: set[str] = set()
    if isinstance(body, dict) and body.get("resourceType") == "Group":
        groups: Iterable[dict[str, Any]] = [body]
        members.pages = 1
        _add_members(groups, found, members.skipped)
    elif isinstance(body, dict) and body.get("resourceType") == "Bundle":
        for page in client.pages_from(response, label):
            members.pages += 1
            groups = [
                e["resource"]
                for e in page.entries
                if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Group"
            ]
            _add_members(groups, found, members.skipped)
    else:
        raise FatalServerError(f"{label}: the server returned neither a Group nor a Bundle")
    members.patients = sorted(found)
    return members


def _add_members(groups: Iterable[dict[str, Any]], found: set[str], skipped: Counter[str]) -> None:
    for group in groups:
        for member in group.get("member") or []:
            if not isinstance(member, dict):
                continue
            if member.get("inactive") is True:
                skipped["inactive"] += 1
                continue
            entity = member.get("entity")
            ref = entity.get("reference") if isinstance(entity, dict) else None
            kind, _, patient_id = plain_resolver(ref).partition("/") if isinstance(ref, str) else ("", "", "")
            if kind != "Patient" or not FHIR_ID.fullmatch(patient_id):
                skipped["not a Patient reference"] += 1
                continue
            found.add(patient_id)


def _upper(until: str) -> datetime:
    """The exclusive upper bound of ``le<until>``: a whole-second until covers its whole second (as the
    server's ``le`` does, see state.format_until); one with a fraction covers itself."""
    bound = parse_instant(until)
    return bound + timedelta(seconds=1) if "." not in until else bound + timedelta(microseconds=1)


def lists_everything(capabilities: dict[str, Any]) -> bool:
    """Whether the CapabilityStatement lists ``$everything`` on Patient."""
    for rest in capabilities.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        for resource in rest.get("resource") or []:
            if isinstance(resource, dict) and resource.get("type") == "Patient":
                names = {str(o.get("name", "")).lstrip("$") for o in resource.get("operation") or [] if o}
                if "everything" in names:
                    return True
    return False


@dataclass
class PatientFetch:
    """One patient's work: what changed in the windows, and (when fetched) the whole record."""

    patient_id: str
    changed: Counter[str] = field(default_factory=Counter)
    resources: list[dict[str, Any]] | None = None
    """The patient's resources of the read types; None: nothing changed, not fetched."""
    requests: int = 0


class PatientSource(ServerSource):
    """Per-patient reads on top of ``ServerSource``'s plan (read types, their patient search parameters)."""

    def __init__(
        self,
        client: FhirClient,
        types: list[str],
        *,
        page_size: int = 200,
        concurrency: int = 4,
        everything: str = "auto",
    ) -> None:
        super().__init__(client, types, page_size=page_size)
        self.concurrency = concurrency
        self.everything = everything
        self.use_everything = False

    def plan(self, capabilities: dict[str, Any]) -> list[str]:
        skipped = super().plan(capabilities)
        self.use_everything = self.everything == "always" or (
            self.everything == "auto" and lists_everything(capabilities)
        )
        return skipped

    # ------------------------------------------------------------------------------- one patient

    def fetch(self, patient_id: str, windows: dict[str, tuple[str | None, str]] | None) -> PatientFetch:
        """``windows`` None: fetch the whole record. Otherwise look for changes in the windows first (a
        type without a ``since`` counts as changed) and fetch the whole record only if there is one.
        Runs on a worker thread: only the client is shared (one session per thread)."""
        result = PatientFetch(patient_id)
        # a type never read for this job (no since) means the whole record anyway
        if windows is not None and all(since for since, _ in windows.values()):
            if self.use_everything:
                result.changed = self._everything_changes(patient_id, windows)
            else:
                for resource_type in self.types:
                    since, until = windows[resource_type]
                    assert since is not None
                    result.changed[resource_type] += self._changes(patient_id, resource_type, since, until)
            if not any(result.changed.values()):
                return result
        result.resources = self._everything(patient_id) if self.use_everything else self._searched(patient_id)
        return result

    def _everything_changes(
        self, patient_id: str, windows: dict[str, tuple[str | None, str]]
    ) -> Counter[str]:
        """Changes in the windows from one ``$everything?_since=`` (the earliest since) instead of a search
        per type. Each type's window is applied here to ``meta.lastUpdated``, so a server that ignores
        ``_since`` gives the same answer (a resource without lastUpdated counts as changed: cannot tell)."""
        bounds = {t: (parse_instant(str(s)), _upper(u)) for t, (s, u) in windows.items()}
        earliest = min(since for since, _ in bounds.values())
        changed: Counter[str] = Counter()
        for resource in self._everything(patient_id, since=format_instant(earliest)):
            resource_type = resource["resourceType"]
            if resource_type == "Claim" and is_ours(resource):
                continue  # our own write-back: it changes nothing clinical
            stamp = (resource.get("meta") or {}).get("lastUpdated")
            try:
                when = parse_instant(stamp) if isinstance(stamp, str) else None
            except ValueError:
                when = None
            since, until = bounds[resource_type]
            if when is None or since < when < until:
                changed[resource_type] += 1
        return changed

    def _scope(self, patient_id: str, resource_type: str) -> tuple[str, str] | None:
        param = patient_param(resource_type, self.declared.get(resource_type, set()))
        if param is None:
            return None  # a capability gap, reported once by plan's caller
        return param, patient_id if param == "_id" else f"Patient/{patient_id}"

    def _changes(self, patient_id: str, resource_type: str, since: str, until: str) -> int:
        scope = self._scope(patient_id, resource_type)
        if scope is None:
            return 0
        params = [scope, ("_lastUpdated", f"gt{since}"), ("_lastUpdated", f"le{until}")]
        params.append(("_count", str(self.page_size)))
        seen: set[str] = set()
        label = f"search {resource_type} (changes)"
        for page in self.client.search_pages(resource_type, params, label=label):
            for entry in page.entries:
                resource = entry.get("resource")
                if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
                    continue
                if resource_type == "Claim" and is_ours(resource):
                    continue  # our own write-back: it changes nothing clinical
                seen.add(str(resource.get("id")))
        return len(seen)

    def _searched(self, patient_id: str) -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = []
        for resource_type in self.types:
            scope = self._scope(patient_id, resource_type)
            if scope is None:
                continue
            params = [scope, ("_count", str(self.page_size))]
            for page in self.client.search_pages(resource_type, params, label=f"search {resource_type}"):
                resources += [e["resource"] for e in page.entries if isinstance(e.get("resource"), dict)]
        return resources

    def _everything(self, patient_id: str, since: str | None = None) -> list[dict[str, Any]]:
        """``$everything`` (``_since``: what changed after it), kept to what a search would return: the read
        types, this patient's own (not resources it merely references), in the read types' order."""
        order = {t: i for i, t in enumerate(self.types)}
        label = "Patient $everything"
        params = [("_since", since)] if since else []
        params.append(("_count", str(self.page_size)))
        try:
            pages = list(self.client.search_pages(f"Patient/{patient_id}/$everything", params, label=label))
        except ResourceGoneError:
            return []  # no such patient (any more): nothing to read, their earlier reports are withdrawn
        kept: list[tuple[int, int, dict[str, Any]]] = []
        for page in pages:
            for entry in page.entries:
                resource = entry.get("resource")
                if not isinstance(resource, dict) or resource.get("resourceType") not in order:
                    continue
                if patient_of(resource) != patient_id:
                    continue
                kept.append((order[resource["resourceType"]], len(kept), resource))
        return [resource for _, _, resource in sorted(kept, key=lambda k: (k[0], k[1]))]

    # ------------------------------------------------------------------------------- many patients

    def fetch_in_order(
        self, work: list[tuple[str, dict[str, tuple[str | None, str]] | None]]
    ) -> Iterator[PatientFetch]:
        """``fetch`` for each (patient, windows), ``concurrency`` at a time, yielded in ``work``'s order: the
        order is the caller's, never the order the fetches happen to finish in."""
        if self.concurrency <= 1:
            for patient_id, windows in work:
                yield self.fetch(patient_id, windows)
            return
        pending: deque[Future[PatientFetch]] = deque()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fhir-cat2-patient")
        try:
            for patient_id, windows in work:
                pending.append(pool.submit(self.fetch, patient_id, windows))
                if len(pending) >= 2 * self.concurrency:  # bounded: a slow consumer holds few records
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def items(self, fetched: PatientFetch, where: str) -> Iterator[InputItem | Rejected]:
        """A fetched record as pipeline input."""
        for index, resource in enumerate(fetched.resources or []):
            yield from self._item({"resource": resource}, Src(where, f"resource[{index}]"))
