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

Nothing the server does not take is lost: with an outbox (``fhir_cat2.state.Outbox``), a write the server
refuses (a 4xx after the one-by-one fallback, a 412 after the re-plan) is kept there with its reason, and
once the write target is unavailable (the retry budget spent) the sink stops writing for the run and keeps
everything else, withdrawals included, there too. The outbox holds the *desired* state per business key,
not requests: ``resend_pending`` (called before the run's own writes) plans each row afresh against the
server's current copy with the same planner, so a retry is as idempotent as a first write; a newer desired
state of the run for the same key replaces the row, and a delivered one leaves it.

``billing_claims: append`` adds our $0.00 lines to the billing Claim of the encounter instead of writing a
separate Claim: our lines carry an extension naming our business identifier, so a rerun replaces exactly
them (``If-Match`` on the billing Claim's version) and never duplicates them.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from ..emit.ids import CLAIM_IDENTIFIER_SYSTEM, MEASURE_REPORT_IDENTIFIER_SYSTEM, resource_id
from ..errors import (
    AuthError,
    FatalServerError,
    PreconditionFailedError,
    ResourceGoneError,
    RetryableServerError,
    ServerError,
    outcome_summary,
)
from ..fhir import FhirClient
from ..quarantine import QuarantineEntry, QuarantineKind
from ..sources.records import Src
from ..sources.server import is_ours
from ..state import Outbox
from .base import SinkStats

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
    desired: dict[str, Any] | None = None
    """What the server should hold for the key (kept in the outbox if this write does not get through);
    None for a withdrawal."""
    encounter: str | None = None
    """append mode, withdrawing our lines: the encounter of the billing Claim."""

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
        outbox: Outbox | None = None,
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
        self.stats = SinkStats()
        self._buffer: list[dict[str, Any]] = []
        self._desired: set[tuple[str, str]] = set()
        self._candidates: set[tuple[str, str]] = set()
        self._encounter_of: dict[str, str] = {}
        self._appended: set[str] = set()
        self.outbox = outbox
        self._unavailable: str | None = None
        """Why the write target stopped answering; from then on every write goes to the outbox."""
        self._in_outbox: set[tuple[str, str]] = set()
        self._kept_desired: set[tuple[str, str]] = set()
        self._resending = False

    # ------------------------------------------------------------------------------ Sink protocol

    def write(self, resource: dict[str, Any]) -> None:
        self._buffer.append(resource)
        if len(self._buffer) >= self.bundle_size:
            self.flush()

    def write_line(self, resource_type: str, line: bytes) -> None:
        self.write(orjson.loads(line))

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantine_sink.quarantine(entry)

    def quarantine_line(self, line: bytes) -> None:
        self.quarantine_sink.quarantine_line(line)

    def expect(self, candidates: Iterable[tuple[str, str, str | None]]) -> None:
        """(type, business key, encounter reference) of everything earlier runs may have written for the
        patients of this run; what this run does not write again is withdrawn at close()."""
        for resource_type, key, encounter_ref in candidates:
            self._candidates.add((resource_type, key))
            if encounter_ref:
                self._encounter_of[key] = encounter_ref

    def close(self) -> None:
        """Write what is buffered, then withdraw what the data no longer supports; then count what the
        outbox of the write target holds."""
        self.flush()
        if self.withdraw_stale:
            self._withdraw_stale()
        self._count_pending()

    def _count_pending(self) -> None:
        """What the outbox of the write target holds now (the run report, exit 6)."""
        if self.outbox is not None:
            self.stats.pending_by_type = self.outbox.counts()

    def _withdraw_stale(self) -> None:
        self._withdraw(sorted(self._candidates - self._desired))
        if self.billing_claims == "append":
            stale_lines = sorted(
                (self._encounter_of[key], key)
                for resource_type, key in self._candidates
                if resource_type == "Claim" and key not in self._appended and key in self._encounter_of
            )
            self._withdraw_lines(stale_lines)

    @property
    def unkept(self) -> int:
        """Writes that are neither on the server nor safely in the outbox: the watermark must not move."""
        return self.stats.failed

    def resend_pending(self) -> int:
        """Re-send the outbox of this write target, planned afresh against the server's current copies,
        before the run's own writes. Returns how many rows were re-sent."""
        if self.outbox is None:
            return 0
        rows = self.outbox.pending()
        if not rows:
            return 0
        log.info("re-sending %d pending writes from the outbox", len(rows))
        self._in_outbox.update((row.resource_type, row.key) for row in rows)
        self.stats.resent = len(rows)
        self._resending = True  # what the outbox asks for is not this run's desired state
        try:
            for row in rows:
                if row.resource is not None:
                    self.write(row.resource)
            self.flush()
            withdrawals = [row for row in rows if row.resource is None]
            lines = sorted((row.encounter, row.key) for row in withdrawals if row.encounter is not None)
            self._encounter_of.update((key, encounter) for encounter, key in lines)  # before _withdraw
            self._withdraw(sorted((row.resource_type, row.key) for row in withdrawals))
            if lines:  # even when billing_claims has changed since: the lines are still there
                self._withdraw_lines(lines)
        finally:
            self._resending = False
            self._count_pending()
        return len(rows)

    # ------------------------------------------------------------------------------ writing

    def flush(self) -> None:
        desired, self._buffer = self._buffer, []
        if desired:
            self._send(self._plan_writes(desired))

    def _plan_writes(self, desired: list[dict[str, Any]]) -> list[Write]:
        """The writes that bring the server's copies to ``desired`` (reads the current copies)."""
        writes: list[Write] = []
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in desired:
            resource_type = resource["resourceType"]
            if business_key(resource) is None:
                self._fail(resource_type, resource.get("id", "?"), "emitted without a business identifier")
                continue
            if self._unavailable is not None:
                self._keep_resource(resource, self._unavailable)
                continue
            if (
                self.billing_claims == "append"
                and resource["resourceType"] == "Claim"
                and resource.get("related")
            ):
                try:
                    handled, appended = self._append_to_billing(resource)
                except RetryableServerError as exc:
                    self._went_unavailable(exc)
                    self._keep_resource(resource, self._unavailable or "")
                    continue
                if handled:
                    if not self._resending:
                        self._appended.add(business_key(resource) or "")
                    if appended is not None:
                        writes.append(appended)
                    continue
            by_type.setdefault(resource_type, []).append(resource)
        for resource_type, resources in by_type.items():
            keys = [business_key(r) or "" for r in resources]
            if not self._resending:
                self._desired.update((resource_type, key) for key in keys)
            if self._unavailable is not None:
                for resource in resources:
                    self._keep_resource(resource, self._unavailable)
                continue
            try:
                existing = self._read_existing(resource_type, keys)
            except FatalServerError as exc:
                # e.g. no identifier search parameter for this type: we cannot tell new from existing
                for resource in resources:
                    self._refuse_resource(resource, exc, "cannot look up existing copies")
                continue
            except RetryableServerError as exc:
                self._went_unavailable(exc)
                for resource in resources:
                    self._keep_resource(resource, self._unavailable or "")
                continue
            for resource, key in zip(resources, keys, strict=True):
                write = self._plan(resource, existing.get(key))
                if write is None:
                    self._done(resource_type, key, "unchanged")
                else:
                    writes.append(write)
        return writes

    def _plan(self, desired: dict[str, Any], current: dict[str, Any] | None) -> Write | None:
        resource_type = desired["resourceType"]
        key = business_key(desired) or ""
        if current is None:
            if self.strategy == "update":
                return Write(
                    "PUT",
                    f"{resource_type}/{desired['id']}",
                    resource_type,
                    key,
                    "created",
                    desired,
                    desired=desired,
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
                desired=desired,
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
            desired=desired,
        )

    def _send(self, writes: list[Write]) -> None:
        for start in range(0, len(writes), self.bundle_size):
            chunk = writes[start : start + self.bundle_size]
            if self._unavailable is not None:
                for write in chunk:
                    self._keep_write(write, self._unavailable)
                continue
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
        try:
            response = self.client.post_bundle(bundle)
        except RetryableServerError as exc:
            # the server may have processed it (a lost answer): the outbox keeps desired states, re-planned
            self._went_unavailable(exc)
            for write in chunk:
                self._keep_write(write, self._unavailable or "")
            return
        self.stats.bundles += 1
        entries = (response.body or {}).get("entry") or [] if isinstance(response.body, dict) else []
        for index, write in enumerate(chunk):
            status = _entry_status(entries[index]) if index < len(entries) else 200
            if self.bundle_type == "transaction" or 200 <= status < 300:
                self._done(write.resource_type, write.key, write.outcome)
                continue
            # batch: each entry stands alone
            if status == 412:
                self._send_single(write, retry_conflict=True)
            else:
                outcome = (entries[index].get("response") or {}).get("outcome")
                error = ServerError(f"HTTP {status}", status=status, outcome=outcome)
                self._refuse_write(write, error)

    def _send_single(self, write: Write, *, retry_conflict: bool) -> None:
        if self._unavailable is not None:
            self._keep_write(write, self._unavailable)
            return
        try:
            self._deliver(write, retry_conflict=retry_conflict)
        except RetryableServerError as exc:
            self._went_unavailable(exc)
            self._keep_write(write, self._unavailable or "")

    def _deliver(self, write: Write, *, retry_conflict: bool) -> None:
        try:
            self.client.request(write.method, write.url, json_body=write.resource, headers=write.headers())
        except PreconditionFailedError as exc:
            if not retry_conflict:
                self._refuse_write(write, exc, "changed by someone else meanwhile")
                return
            if write.encounter is not None:
                # our lines on a billing Claim someone changed meanwhile: kept, looked up afresh next run
                self._refuse_write(write, exc, "billing Claim changed by someone else meanwhile")
                return
            try:
                retried = self._replan(write)
            except FatalServerError as lookup:
                self._refuse_write(write, lookup, "cannot re-read it after a conflict")
                return
            if retried is None:
                self._done(write.resource_type, write.key, "unchanged")
                return
            self._deliver(retried, retry_conflict=False)
            return
        except ResourceGoneError as exc:
            if write.method == "DELETE":  # already gone: withdrawn all the same
                self._done(write.resource_type, write.key, write.outcome)
            else:
                self._refuse_write(write, exc)
            return
        except FatalServerError as exc:
            self._refuse_write(write, exc)
            return
        self._done(write.resource_type, write.key, write.outcome)

    def _replan(self, write: Write) -> Write | None:
        """After a 412: read the current version again and decide afresh."""
        if write.outcome == "appended":
            return self._append_write_from_server(write)
        current = self._read_existing(write.resource_type, [write.key]).get(write.key)
        if write.outcome == "withdrawn":
            return self._withdrawal(current) if current is not None else None
        assert write.resource is not None
        desired = write.desired if write.desired is not None else {**write.resource}
        if self.strategy == "update" and current is None:
            return Write(
                "PUT", write.url, write.resource_type, write.key, "created", desired, desired=desired
            )
        return self._plan(desired, current)

    # ------------------------------------------------------------------------------ outcomes

    def _done(self, resource_type: str, key: str, outcome: str) -> None:
        """The server holds what we want for the key (written, unchanged or withdrawn)."""
        self.stats.add(resource_type, outcome)
        self._settled(resource_type, key)

    def _settled(self, resource_type: str, key: str) -> None:
        if (resource_type, key) in self._in_outbox and self.outbox is not None:
            try:
                self.outbox.delivered(resource_type, key)
            except sqlite3.Error as exc:  # the row stays: re-sending it later is harmless (idempotent)
                log.warning("cannot remove a delivered write from the outbox: %s", exc)
                return
            self._in_outbox.discard((resource_type, key))

    def _went_unavailable(self, exc: RetryableServerError) -> None:
        if self._unavailable is None:
            cause = f"HTTP {exc.status}" if exc.status else "no answer"
            self._unavailable = f"write target unavailable after the retry budget ({cause})"
            log.warning(
                "the write server is unavailable (%s); the rest of this run's writes are kept in the outbox",
                exc,
            )

    def _refuse_write(self, write: Write, exc: ServerError, what: str = "") -> None:
        ref = write.url if "/" in write.url else f"{write.resource_type}/{write.key}"
        self._refused(write.resource_type, write.key, write.desired, ref, exc, what, write.encounter)

    def _refuse_resource(self, resource: dict[str, Any], exc: ServerError, what: str = "") -> None:
        resource_type = resource["resourceType"]
        ref = f"{resource_type}/{resource.get('id', '?')}"
        self._refused(resource_type, business_key(resource) or "", resource, ref, exc, what)

    def _refused(
        self,
        resource_type: str,
        key: str,
        desired: dict[str, Any] | None,
        ref: str,
        exc: ServerError,
        what: str = "",
        encounter: str | None = None,
    ) -> None:
        """The server refused a write: quarantine.ndjson gets its words, the outbox keeps the write."""
        reason = refusal_reason(exc, what)
        text = f"{reason}; server diagnostics: {exc.diagnostics}" if exc.diagnostics else reason
        if self.outbox is None:
            self._fail(resource_type, ref, text)
            return
        # only the reference and the status in the log: server diagnostics may echo data
        status = f"HTTP {exc.status}" if exc.status else "refused"
        log.warning(
            "write-back of %s refused (%s); kept in the outbox, details in quarantine.ndjson", ref, status
        )
        self.quarantine_sink.quarantine(
            QuarantineEntry(
                QuarantineKind.WRITE_BACK,
                Src("write-back", ref),
                f"{ref}: write-back refused, kept in the outbox: {text}",
                ref,
            )
        )
        self._keep(resource_type, key, desired, reason, exc.diagnostics, encounter)

    def _keep_write(self, write: Write, reason: str) -> None:
        self._keep(write.resource_type, write.key, write.desired, reason, "", write.encounter)

    def _keep_resource(self, resource: dict[str, Any], reason: str) -> None:
        self._keep(resource["resourceType"], business_key(resource) or "", resource, reason)

    def _keep(
        self,
        resource_type: str,
        key: str,
        desired: dict[str, Any] | None,
        reason: str,
        detail: str = "",
        encounter: str | None = None,
    ) -> None:
        """Keep a write that did not get through in the outbox (newest desired state per key wins)."""
        if desired is None and (resource_type, key) in self._kept_desired | self._desired:
            return  # this run wants the key written: that, not a withdrawal, is what must be kept
        if self.outbox is None:
            self._fail(resource_type, f"{resource_type}/{key}", f"not written: {reason}")
            return
        try:
            self.outbox.keep(resource_type, key, desired, reason, detail, encounter)
        except sqlite3.Error as exc:
            log.error("cannot keep a write in the outbox (%s); the watermark will not move", exc)
            self._fail(resource_type, f"{resource_type}/{key}", f"not written and not kept: {reason}")
            return
        self.stats.pending += 1
        self.stats.add(resource_type, "pending")
        self._in_outbox.add((resource_type, key))
        if desired is not None and not self._resending:
            self._kept_desired.add((resource_type, key))

    def _fail(self, resource_type: str, where: str, reason: str) -> None:
        """Neither written nor kept: quarantined only."""
        self.stats.failed += 1
        self.stats.add(resource_type, "failed")
        ref = where if "/" in where else f"{resource_type}/{where}"
        log.warning("write-back of %s failed; the reason is in quarantine.ndjson", ref)
        self.quarantine_sink.quarantine(
            QuarantineEntry(
                QuarantineKind.WRITE_BACK, Src("write-back", ref), f"{ref}: write-back failed: {reason}", ref
            )
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
            if self._unavailable is None:
                try:
                    existing = self._read_existing(resource_type, keys)
                except FatalServerError as exc:
                    log.warning("cannot look up earlier %s write-backs to withdraw: %s", resource_type, exc)
                    continue
                except RetryableServerError as exc:
                    self._went_unavailable(exc)
            if self._unavailable is not None:
                for key in keys:
                    self._keep(
                        resource_type, key, None, self._unavailable, encounter=self._encounter_of.get(key)
                    )
                continue
            for key in keys:
                current = existing.get(key)
                write = self._withdrawal(current) if current is not None else None
                if write is not None:
                    writes.append(write)
                elif not self._lines_to_withdraw(resource_type, key):
                    self._settled(resource_type, key)  # nothing of ours to withdraw
        self._send(writes)

    def _lines_to_withdraw(self, resource_type: str, key: str) -> bool:
        """Whether our lines on a billing Claim go too for this key (_withdraw_lines settles it)."""
        return (
            resource_type == "Claim"
            and key in self._encounter_of
            and (self.billing_claims == "append" or self._resending)
        )

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
            if self._unavailable is None:
                try:
                    claims = list(
                        self.client.search("Claim", [("encounter", encounter_ref), ("_count", "50")])
                    )
                except FatalServerError as exc:
                    # rows already in the outbox stay there (untouched); the other encounters go on
                    log.warning("cannot look up billing Claims to withdraw our lines: %s", exc)
                    continue
                except RetryableServerError as exc:
                    self._went_unavailable(exc)
            if self._unavailable is not None:
                for key in sorted(keys):
                    self._keep("Claim", key, None, self._unavailable, encounter=encounter_ref)
                continue
            found: set[str] = set()
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
                found.add(key)
                writes.append(
                    Write(
                        "PUT",
                        f"Claim/{billing['id']}",
                        "Claim",
                        key,
                        "withdrawn",
                        body,
                        if_match=f'W/"{version}"' if version else None,
                        encounter=encounter_ref,
                    )
                )
            for key in keys - found:
                self._settled("Claim", key)  # no line of ours left for it
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
            self._done("Claim", key, "unchanged")
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
            desired=ours,
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
            desired=ours,
        )


def refusal_reason(exc: ServerError, what: str = "") -> str:
    """Why a write did not get through, in words safe for logs and ``outbox list``: the HTTP status and
    the OperationOutcome's issue codes and element paths (never its diagnostics text)."""
    parts = [what] if what else []
    if exc.status:
        try:
            phrase = HTTPStatus(exc.status).phrase
        except ValueError:
            phrase = ""
        parts.append(f"HTTP {exc.status} {phrase}".strip())
    summary = outcome_summary(exc.outcome)
    if summary:
        parts.append(summary)
    return ": ".join(parts) or "refused"


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
