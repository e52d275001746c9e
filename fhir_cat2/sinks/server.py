"""Idempotent write-back of Claims and MeasureReports to a FHIR server.

Every resource we emit has a deterministic id (``cat2-<hash>``) and a business identifier (``urn:fhir-cat2:
claim|<key>``), both derived from patient, encounter or measure, program and period. Strategies:

``update`` (default): update-as-create, ``PUT Type/<deterministic id>``. Before writing, the current
versions are read (``Type?_id=a,b,c``); a resource whose content (ignoring id, meta and text) is unchanged
is skipped, so a rerun writes nothing; a changed one is PUT with ``If-Match: W/"<version>"``. A 412 means
someone else changed it meanwhile: it is re-read and retried once, then quarantined.

``conditional-create``: for servers that refuse client-chosen ids. New resources are ``POST``ed with
``If-None-Exist: identifier=<system>|<value>``; existing ones are found by identifier and updated in place
(``PUT Type/<server id>`` with ``If-Match``). Caveats: not every server makes conditional create atomic
(two concurrent runs can create duplicates), and a server needs an ``identifier`` search parameter for
the type (sekmet has none for MeasureReport: those writes are refused and quarantined).

Writes go in transaction (or batch) Bundles of ``bundle_size`` entries. Resources of earlier runs that the
data no longer supports (an encounter that lost all its codes, a patient who left a measure's population)
are withdrawn: a Claim gets status ``cancelled``, a MeasureReport is deleted.

``billing_claims: append`` adds our $0.00 lines to the billing Claim of the encounter instead of writing a
separate Claim: our lines carry an extension naming our business identifier, so a rerun replaces exactly
them (``If-Match`` on the billing Claim's version) and never duplicates them.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..emit.ids import CLAIM_IDENTIFIER_SYSTEM, MEASURE_REPORT_IDENTIFIER_SYSTEM, resource_id
from ..errors import AuthError, FatalServerError, PreconditionFailedError, ResourceGoneError, ServerError
from ..fhir import FhirClient
from ..pipeline import QuarantineEntry
from ..sources.records import Src
from ..sources.server import is_ours

log = logging.getLogger("fhir_cat2.sinks.server")

IDENTIFIER_SYSTEMS = {"Claim": CLAIM_IDENTIFIER_SYSTEM, "MeasureReport": MEASURE_REPORT_IDENTIFIER_SYSTEM}
LINE_EXTENSION = "urn:fhir-cat2:quality-data-line"
"""Marks the lines we appended to a billing Claim; valueIdentifier is our Claim's business identifier."""
IGNORED_ELEMENTS = ("id", "meta", "text")
READ_CHUNK = 50  # ids per existence look-up (keeps URLs short)


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """Content that decides whether a write is needed: everything but id, meta and narrative."""
    return {k: v for k, v in resource.items() if k not in IGNORED_ELEMENTS}


def business_key(resource: dict[str, Any]) -> str | None:
    system = IDENTIFIER_SYSTEMS.get(resource.get("resourceType", ""))
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def version_of(resource: dict[str, Any]) -> str | None:
    version = (resource.get("meta") or {}).get("versionId")
    return str(version) if version is not None else None


@dataclass
class Write:
    method: str
    url: str
    resource_type: str
    key: str
    outcome: str
    """created | updated | withdrawn"""
    resource: dict[str, Any] | None = None
    if_match: str | None = None
    if_none_exist: str | None = None
    source: dict[str, Any] | None = None
    """append mode: our own Claim whose lines are merged into the billing Claim (for a re-merge after 412)."""

    def entry(self) -> dict[str, Any]:
        request: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.if_match:
            request["ifMatch"] = self.if_match
        if self.if_none_exist:
            request["ifNoneExist"] = self.if_none_exist
        entry: dict[str, Any] = {"request": request}
        if self.resource is not None:
            entry["fullUrl"] = (
                f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self.resource_type + '/' + self.key)}"
            )
            entry["resource"] = self.resource
        return entry

    def headers(self) -> dict[str, str]:
        headers = {"Prefer": "return=minimal"}
        if self.if_match:
            headers["If-Match"] = self.if_match
        if self.if_none_exist:
            headers["If-None-Exist"] = self.if_none_exist
        return headers


@dataclass
class WriteStats:
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failed: int = 0
    bundles: int = 0

    def add(self, resource_type: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(resource_type, Counter())[outcome] += n

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {t: dict(sorted(c.items())) for t, c in sorted(self.counts.items())}


class ServerSink:
    def __init__(
        self,
        client: FhirClient,
        quarantine_sink: Any,
        *,
        strategy: str = "update",
        bundle_size: int = 100,
        bundle_type: str = "transaction",
        billing_claims: str = "separate",
        withdraw_stale: bool = True,
    ) -> None:
        if strategy not in ("update", "conditional-create"):
            raise ValueError(strategy)
        self.client = client
        self.quarantine_sink = quarantine_sink
        self.strategy = strategy
        self.bundle_size = bundle_size
        self.bundle_type = bundle_type
        self.billing_claims = billing_claims
        self.withdraw_stale = withdraw_stale
        self.stats = WriteStats()
        self._buffer: list[dict[str, Any]] = []
        self._desired: set[tuple[str, str]] = set()
        self._candidates: set[tuple[str, str]] = set()
        self._encounter_of: dict[str, str] = {}
        self._appended: set[str] = set()

    # ------------------------------------------------------------------------------ Sink protocol

    def write(self, resource: dict[str, Any]) -> None:
        self._buffer.append(resource)
        if len(self._buffer) >= self.bundle_size:
            self.flush()

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantine_sink.quarantine(entry)

    def expect(self, candidates: Iterable[tuple[str, str, str | None]]) -> None:
        """(type, business key, encounter reference) of everything earlier runs may have written for the
        patients of this run; what this run does not write again is withdrawn at close()."""
        for resource_type, key, encounter_ref in candidates:
            self._candidates.add((resource_type, key))
            if encounter_ref:
                self._encounter_of[key] = encounter_ref

    def close(self) -> None:
        """Write what is buffered, then withdraw what the data no longer supports."""
        self.flush()
        if not self.withdraw_stale:
            return
        self._withdraw(sorted(self._candidates - self._desired))
        if self.billing_claims == "append":
            stale_lines = sorted(
                (self._encounter_of[key], key)
                for resource_type, key in self._candidates
                if resource_type == "Claim" and key not in self._appended and key in self._encounter_of
            )
            self._withdraw_lines(stale_lines)

    # ------------------------------------------------------------------------------ writing

    def flush(self) -> None:
        desired, self._buffer = self._buffer, []
        if not desired:
            return
        writes: list[Write] = []
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in desired:
            if (
                self.billing_claims == "append"
                and resource["resourceType"] == "Claim"
                and resource.get("related")
            ):
                handled, appended = self._append_to_billing(resource)
                if handled:
                    self._appended.add(business_key(resource) or "")
                    if appended is not None:
                        writes.append(appended)
                    continue
            by_type.setdefault(resource["resourceType"], []).append(resource)
        for resource_type, resources in by_type.items():
            keys = [k for k in (business_key(r) for r in resources) if k]
            try:
                existing = self._read_existing(resource_type, keys)
            except FatalServerError as exc:
                # e.g. no identifier search parameter for this type: we cannot tell new from existing
                for resource in resources:
                    self._fail(
                        resource_type,
                        str(resource.get("id", "?")),
                        f"cannot look up existing copies: {exc.with_diagnostics()}",
                    )
                continue
            for resource in resources:
                key = business_key(resource)
                if key is None:
                    self._fail(
                        resource_type, resource.get("id", "?"), "emitted without a business identifier"
                    )
                    continue
                self._desired.add((resource_type, key))
                write = self._plan(resource, existing.get(key))
                if write is None:
                    self.stats.add(resource_type, "unchanged")
                else:
                    writes.append(write)
        self._send(writes)

    def _plan(self, desired: dict[str, Any], current: dict[str, Any] | None) -> Write | None:
        resource_type = desired["resourceType"]
        key = business_key(desired) or ""
        if current is None:
            if self.strategy == "update":
                return Write(
                    "PUT", f"{resource_type}/{desired['id']}", resource_type, key, "created", desired
                )
            body = {k: v for k, v in desired.items() if k != "id"}
            system = IDENTIFIER_SYSTEMS[resource_type]
            return Write(
                "POST",
                resource_type,
                resource_type,
                key,
                "created",
                body,
                if_none_exist=f"identifier={_escape(system)}|{_escape(key)}",
            )
        if comparable(current) == comparable(desired):
            return None
        server_id = current["id"]
        body = {**desired, "id": server_id}
        version = version_of(current)
        return Write(
            "PUT",
            f"{resource_type}/{server_id}",
            resource_type,
            key,
            "updated",
            body,
            if_match=f'W/"{version}"' if version else None,
        )

    def _send(self, writes: list[Write]) -> None:
        for start in range(0, len(writes), self.bundle_size):
            chunk = writes[start : start + self.bundle_size]
            try:
                if self.bundle_type == "single":
                    for write in chunk:
                        self._send_single(write, retry_conflict=True)
                else:
                    self._send_bundle(chunk)
            except AuthError as exc:
                if self.bundle_type == "single" or exc.status != 403:
                    raise
                # Narrow scopes (system/Claim.write) may not cover a transaction: write one by one.
                log.warning(
                    "the server refused a %s Bundle (%s); writing resources one by one", self.bundle_type, exc
                )
                self.bundle_type = "single"
                for write in chunk:
                    self._send_single(write, retry_conflict=True)
            except (PreconditionFailedError, FatalServerError, ResourceGoneError) as exc:
                # One stale version or one refused resource must not sink the others: go one by one.
                log.warning(
                    "%s of %d failed (%s); sending its entries one by one", self.bundle_type, len(chunk), exc
                )
                for write in chunk:
                    self._send_single(write, retry_conflict=True)

    def _send_bundle(self, chunk: list[Write]) -> None:
        if len(chunk) == 1:
            self._send_single(chunk[0], retry_conflict=True)
            return
        bundle = {"resourceType": "Bundle", "type": self.bundle_type, "entry": [w.entry() for w in chunk]}
        response = self.client.post_bundle(bundle)
        self.stats.bundles += 1
        entries = (response.body or {}).get("entry") or [] if isinstance(response.body, dict) else []
        for index, write in enumerate(chunk):
            status = _entry_status(entries[index]) if index < len(entries) else 200
            if self.bundle_type == "transaction" or 200 <= status < 300:
                self.stats.add(write.resource_type, write.outcome)
                continue
            # batch: each entry stands alone
            if status == 412:
                self._send_single(write, retry_conflict=True)
            else:
                outcome = (entries[index].get("response") or {}).get("outcome")
                self._fail(write.resource_type, write.url, f"HTTP {status}", outcome)

    def _send_single(self, write: Write, *, retry_conflict: bool) -> None:
        try:
            self.client.request(write.method, write.url, json_body=write.resource, headers=write.headers())
        except PreconditionFailedError as exc:
            if not retry_conflict:
                self._fail(
                    write.resource_type, write.url, f"changed by someone else meanwhile ({exc.diagnostics})"
                )
                return
            retried = self._replan(write)
            if retried is None:
                self.stats.add(write.resource_type, "unchanged")
                return
            self._send_single(retried, retry_conflict=False)
            return
        except ResourceGoneError as exc:
            if write.method == "DELETE":  # already gone: withdrawn all the same
                self.stats.add(write.resource_type, write.outcome)
            else:
                self._fail(write.resource_type, write.url, exc.with_diagnostics())
            return
        except FatalServerError as exc:
            self._fail(write.resource_type, write.url, exc.with_diagnostics())
            return
        self.stats.add(write.resource_type, write.outcome)

    def _replan(self, write: Write) -> Write | None:
        """After a 412: read the current version again and decide afresh."""
        if write.outcome == "appended":
            return self._append_write_from_server(write)
        current = self._read_existing(write.resource_type, [write.key]).get(write.key)
        if write.outcome == "withdrawn":
            return self._withdrawal(current) if current is not None else None
        assert write.resource is not None
        desired = {**write.resource}
        if self.strategy == "update" and current is None:
            return Write("PUT", write.url, write.resource_type, write.key, "created", desired)
        return self._plan(desired, current)

    def _fail(self, resource_type: str, where: str, reason: str, outcome: Any = None) -> None:
        self.stats.failed += 1
        self.stats.add(resource_type, "failed")
        ref = where if "/" in where else f"{resource_type}/{where}"
        # only the reference in the log: server diagnostics may echo data
        log.warning("write-back of %s failed; the reason is in quarantine.ndjson", ref)
        if isinstance(outcome, dict):
            reason = ServerError(reason, outcome=outcome).with_diagnostics()
        self.quarantine_sink.quarantine(
            QuarantineEntry(Src("write-back", ref), f"{ref}: write-back failed: {reason}", ref)
        )

    # ------------------------------------------------------------------------------ reading

    def _read_existing(self, resource_type: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Current server copies, by business key."""
        found: dict[str, dict[str, Any]] = {}
        system = IDENTIFIER_SYSTEMS[resource_type]
        for start in range(0, len(keys), READ_CHUNK):
            chunk = keys[start : start + READ_CHUNK]
            if self.strategy == "update":
                params = [("_id", ",".join(resource_id(k) for k in chunk))]
            else:
                params = [("identifier", ",".join(f"{_escape(system)}|{_escape(k)}" for k in chunk))]
            params.append(("_count", str(max(len(chunk) * 2, 10))))
            for resource in self.client.search(resource_type, params):
                if resource.get("resourceType") != resource_type:
                    continue
                key = business_key(resource)
                if key is None or key not in chunk:
                    continue
                if key in found:
                    log.warning(
                        "%s: more than one resource carries identifier %s|%s; updating %s/%s",
                        resource_type,
                        system,
                        key,
                        resource_type,
                        found[key].get("id"),
                    )
                    continue
                found[key] = resource
        return found

    # ------------------------------------------------------------------------------ withdrawing

    def _withdraw(self, stale: list[tuple[str, str]]) -> None:
        by_type: dict[str, list[str]] = {}
        for resource_type, key in stale:
            by_type.setdefault(resource_type, []).append(key)
        writes: list[Write] = []
        for resource_type, keys in by_type.items():
            try:
                existing = self._read_existing(resource_type, keys)
            except FatalServerError as exc:
                log.warning("cannot look up earlier %s write-backs to withdraw: %s", resource_type, exc)
                continue
            for key in keys:
                current = existing.get(key)
                if current is None:
                    continue
                write = self._withdrawal(current)
                if write is not None:
                    writes.append(write)
        self._send(writes)

    def _withdrawal(self, current: dict[str, Any]) -> Write | None:
        if not is_ours(current):
            return None  # never touch what we did not write
        resource_type = current["resourceType"]
        key = business_key(current) or ""
        url = f"{resource_type}/{current['id']}"
        if resource_type == "MeasureReport":
            return Write("DELETE", url, resource_type, key, "withdrawn")
        if current.get("status") == "cancelled":
            return None
        body = {k: v for k, v in current.items() if k != "meta"}
        body["meta"] = {"tag": (current.get("meta") or {}).get("tag") or []}
        body["status"] = "cancelled"
        version = version_of(current)
        return Write(
            "PUT", url, resource_type, key, "withdrawn", body, if_match=f'W/"{version}"' if version else None
        )

    def _withdraw_lines(self, stale: list[tuple[str, str]]) -> None:
        """Append mode: remove our lines from billing Claims of encounters that no longer earn codes."""
        by_encounter: dict[str, set[str]] = {}
        for encounter_ref, key in stale:
            by_encounter.setdefault(encounter_ref, set()).add(key)
        writes: list[Write] = []
        for encounter_ref, keys in sorted(by_encounter.items()):
            try:
                claims = list(self.client.search("Claim", [("encounter", encounter_ref), ("_count", "50")]))
            except FatalServerError as exc:
                log.warning("cannot look up billing Claims to withdraw our lines: %s", exc)
                return
            for billing in claims:
                if billing.get("resourceType") != "Claim" or is_ours(billing):
                    continue
                kept = [i for i in billing.get("item") or [] if _line_key(i) not in keys]
                if len(kept) == len(billing.get("item") or []):
                    continue
                body = {**billing, "item": kept}
                body.pop("meta", None)
                version = version_of(billing)
                key = next(_line_key(i) for i in billing["item"] if _line_key(i) in keys) or ""
                writes.append(
                    Write(
                        "PUT",
                        f"Claim/{billing['id']}",
                        "Claim",
                        key,
                        "withdrawn",
                        body,
                        if_match=f'W/"{version}"' if version else None,
                    )
                )
        self._send(writes)

    # ------------------------------------------------------------------------------ billing append

    def _append_to_billing(self, ours: dict[str, Any]) -> tuple[bool, Write | None]:
        """(handled, write): the write that puts our lines on the encounter's billing Claim (None if nothing
        changes); handled is False when there is no billing Claim (a separate Claim is written)."""
        billing_ref = ours["related"][0]["claim"].get("reference", "")
        kind, _, billing_id = billing_ref.partition("/")
        if kind != "Claim" or not billing_id:
            return False, None
        key = business_key(ours) or ""
        try:
            billing = self.client.read("Claim", billing_id).body
        except ResourceGoneError:
            log.warning("billing %s not found on the write server; writing a separate Claim", billing_ref)
            return False, None
        if not isinstance(billing, dict):
            return False, None
        merged = merge_lines(billing, ours, key)
        if comparable(merged) == comparable(billing):
            self.stats.add("Claim", "unchanged")
            return True, None
        version = version_of(billing)
        return True, Write(
            "PUT",
            f"Claim/{billing_id}",
            "Claim",
            key,
            "appended",
            merged,
            if_match=f'W/"{version}"' if version else None,
            source=ours,
        )

    def _append_write_from_server(self, write: Write) -> Write | None:
        assert write.resource is not None
        billing_id = write.url.partition("/")[2]
        ours = write.source
        try:
            billing = self.client.read("Claim", billing_id).body
        except ResourceGoneError:
            return None
        if ours is None or not isinstance(billing, dict):
            return None
        merged = merge_lines(billing, ours, write.key)
        if comparable(merged) == comparable(billing):
            return None
        version = version_of(billing)
        return Write(
            "PUT",
            write.url,
            "Claim",
            write.key,
            "appended",
            merged,
            if_match=f'W/"{version}"' if version else None,
            source=ours,
        )


def merge_lines(billing: dict[str, Any], ours: dict[str, Any], key: str) -> dict[str, Any]:
    """The billing Claim with our earlier lines removed and our current lines appended (diagnosis pointers
    mapped onto the billing Claim's diagnosis list, adding a diagnosis only when it has none that matches)."""
    merged = {k: v for k, v in billing.items() if k != "meta"}
    if billing.get("meta"):
        merged["meta"] = billing["meta"]
    items = [dict(i) for i in billing.get("item") or [] if not _is_our_line(i)]
    diagnoses = [dict(d) for d in billing.get("diagnosis") or []]
    pointer_map: dict[int, int] = {}
    for diagnosis in ours.get("diagnosis") or []:
        codings = [
            (c.get("system"), c.get("code"))
            for c in (diagnosis.get("diagnosisCodeableConcept") or {}).get("coding") or []
        ]
        match = None
        for existing in diagnoses:
            existing_codings = {
                (c.get("system"), c.get("code"))
                for c in (existing.get("diagnosisCodeableConcept") or {}).get("coding") or []
            }
            if existing_codings & set(codings):
                match = existing.get("sequence")
                break
        if match is None:
            match = max((d.get("sequence") or 0 for d in diagnoses), default=0) + 1
            diagnoses.append(
                {"sequence": match, "diagnosisCodeableConcept": diagnosis["diagnosisCodeableConcept"]}
            )
        pointer_map[diagnosis["sequence"]] = match
    next_sequence = max((i.get("sequence") or 0 for i in items), default=0) + 1
    for offset, line in enumerate(ours.get("item") or []):
        new_line = {k: v for k, v in line.items() if k not in ("sequence", "diagnosisSequence")}
        new_line = {
            "extension": [
                {"url": LINE_EXTENSION, "valueIdentifier": {"system": CLAIM_IDENTIFIER_SYSTEM, "value": key}}
            ],
            "sequence": next_sequence + offset,
            **(
                {"diagnosisSequence": [pointer_map[p] for p in line["diagnosisSequence"] if p in pointer_map]}
                if line.get("diagnosisSequence")
                else {}
            ),
            **new_line,
        }
        items.append(new_line)
    merged["item"] = items
    if diagnoses:
        merged["diagnosis"] = diagnoses
    return merged


def _line_key(item: Any) -> str | None:
    """The business identifier our extension puts on a line we appended (None: not our line)."""
    if not isinstance(item, dict):
        return None
    for extension in item.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == LINE_EXTENSION:
            value = (extension.get("valueIdentifier") or {}).get("value")
            return value if isinstance(value, str) else None
    return None


def _is_our_line(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    return any(isinstance(e, dict) and e.get("url") == LINE_EXTENSION for e in item.get("extension") or [])


def _entry_status(entry: Any) -> int:
    text = str(((entry or {}).get("response") or {}).get("status") or "200")
    try:
        return int(text.split()[0])
    except ValueError:
        return 200


def _escape(value: str) -> str:
    """Escape a token search value (FHIR search: \\ , $ |)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")
