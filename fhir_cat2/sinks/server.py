"""Idempotent write-back of Claims, MeasureReports and Gaps in Care Bundles to a FHIR server.

The sink reads the server's current copies, sends writes and keeps what does not get through; *which*
writes to send (desired + current -> writes) is decided by the pure functions of ``planner.py``, the same
ones for a first write, a re-plan after a 412 and a re-send from the outbox.

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
them (``If-Match`` on the billing Claim's version) and never duplicates them. All of our Claims for one
billing Claim in a batch go in one write (two writes would race on the same version).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import orjson

from ..emit.ids import resource_id
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
from ..state import Outbox
from . import planner
from .base import SinkStats
from .planner import Write, business_key, identifier_token

log = logging.getLogger("fhir_cat2.sinks.server")

READ_CHUNK = 50  # ids per existence look-up (keeps URLs short)


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
        batch, self._buffer = self._buffer, []
        if batch:
            self._send(self._plan_writes(batch))

    def _plan_writes(self, batch: list[dict[str, Any]]) -> list[Write]:
        """Read the current copies of ``batch`` and plan the writes that bring them there (planner.py)."""
        wanted, refused = planner.latest(batch)
        for resource in refused:
            self._fail(
                resource["resourceType"], resource.get("id", "?"), "emitted without a business identifier"
            )
        writes: list[Write] = []
        separate: dict[str, list[dict[str, Any]]] = {}
        to_billing: dict[str, list[dict[str, Any]]] = {}
        for (resource_type, _), resource in wanted.items():
            if self._unavailable is not None:
                self._keep_resource(resource, self._unavailable)
                continue
            billing = planner.billing_id(resource) if self.billing_claims == "append" else None
            if billing is not None and resource_type == "Claim":
                to_billing.setdefault(billing, []).append(resource)
            else:
                separate.setdefault(resource_type, []).append(resource)
        for billing, ours in to_billing.items():
            if not self._append_to_billing(billing, ours, writes):
                separate.setdefault("Claim", []).extend(ours)
        for resource_type, resources in separate.items():
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
            planned = planner.plan(resources, existing, strategy=self.strategy)
            for resource_type_, key in planned.unchanged:
                self._done(resource_type_, key, "unchanged")
            writes.extend(planned.writes)
        return writes

    def _append_to_billing(self, billing_id: str, ours: list[dict[str, Any]], writes: list[Write]) -> bool:
        """Plan the one write that puts the lines of ``ours`` on their billing Claim (into ``writes``);
        False when there is no such billing Claim (separate Claims are written instead)."""
        try:
            billing = self.client.read("Claim", billing_id).body
        except ResourceGoneError:
            log.warning(
                "billing Claim/%s not found on the write server; writing a separate Claim", billing_id
            )
            return False
        except RetryableServerError as exc:
            self._went_unavailable(exc)
            for resource in ours:
                self._keep_resource(resource, self._unavailable or "")
            return True
        if not isinstance(billing, dict):
            return False
        keys = [business_key(c) or "" for c in ours]
        if not self._resending:
            self._appended.update(keys)
        write = planner.append(billing, ours)
        if write is None:
            for key in keys:
                self._done("Claim", key, "unchanged")
        else:
            writes.append(write)
        return True

    def _send(self, writes: list[Write]) -> None:
        # A Bundle we write (Gaps in Care) goes on its own: inside a transaction, servers resolve the
        # urn:uuid references among its entries as the transaction's own, and refuse them as unresolved.
        documents = [write for write in writes if write.resource_type == "Bundle"]
        if documents:
            writes = [write for write in writes if write.resource_type != "Bundle"]
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
        for write in documents:
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
                self._delivered(write, "unchanged")
                return
            self._deliver(retried, retry_conflict=False)
            return
        except ResourceGoneError as exc:
            if write.method == "DELETE":  # already gone: withdrawn all the same
                self._delivered(write)
            else:
                self._refuse_write(write, exc)
            return
        except FatalServerError as exc:
            self._refuse_write(write, exc)
            return
        self._delivered(write)

    def _replan(self, write: Write) -> Write | None:
        """After a 412: read the current copy again and plan afresh, with the same planner."""
        if write.outcome == "appended":
            try:
                billing = self.client.read("Claim", write.url.partition("/")[2]).body
            except ResourceGoneError:
                return None
            ours = [c for c in write.desired.values() if c is not None]
            return planner.append(billing, ours) if isinstance(billing, dict) else None
        current = self._read_existing(write.resource_type, [write.key]).get(write.key)
        if write.outcome == "withdrawn":
            return planner.withdrawal(current) if current is not None else None
        desired = write.desired[write.key]
        assert desired is not None
        existing = {write.key: current} if current is not None else {}
        return next(iter(planner.plan([desired], existing, strategy=self.strategy).writes), None)

    # ------------------------------------------------------------------------------ outcomes

    def _delivered(self, write: Write, outcome: str | None = None) -> None:
        """The server holds what ``write`` wants for each of its keys."""
        for key in write.keys:
            self._done(write.resource_type, key, outcome or write.outcome)

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
        self._refused(write.resource_type, write.desired, ref, exc, what, write.encounter)

    def _refuse_resource(self, resource: dict[str, Any], exc: ServerError, what: str = "") -> None:
        resource_type = resource["resourceType"]
        ref = f"{resource_type}/{resource.get('id', '?')}"
        self._refused(resource_type, {business_key(resource) or "": resource}, ref, exc, what)

    def _refused(
        self,
        resource_type: str,
        wanted: Mapping[str, dict[str, Any] | None],
        ref: str,
        exc: ServerError,
        what: str = "",
        encounter: str | None = None,
    ) -> None:
        """The server refused a write: quarantine.ndjson gets its words, the outbox keeps the desired state
        of each key it was for."""
        reason = refusal_reason(exc, what)
        text = f"{reason}; server diagnostics: {exc.diagnostics}" if exc.diagnostics else reason
        if self.outbox is None:
            self._fail(resource_type, ref, text, len(wanted))
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
        for key, desired in wanted.items():
            self._keep(resource_type, key, desired, reason, exc.diagnostics, encounter)

    def _keep_write(self, write: Write, reason: str) -> None:
        for key, desired in write.desired.items():
            self._keep(write.resource_type, key, desired, reason, "", write.encounter)

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
        if desired is None and (
            (resource_type, key) in self._kept_desired or (resource_type, key) in self._desired
        ):
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

    def _fail(self, resource_type: str, where: str, reason: str, n: int = 1) -> None:
        """Neither written nor kept (``n`` keys): quarantined only."""
        self.stats.failed += n
        self.stats.add(resource_type, "failed", n)
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
        for start in range(0, len(keys), READ_CHUNK):
            chunk = keys[start : start + READ_CHUNK]
            if self.strategy == "update":
                params = [("_id", ",".join(resource_id(k) for k in chunk))]
            else:
                params = [("identifier", ",".join(identifier_token(resource_type, k) for k in chunk))]
            params.append(("_count", str(max(len(chunk) * 2, 10))))
            for resource in self.client.search(resource_type, params):
                if resource.get("resourceType") != resource_type:
                    continue
                key = business_key(resource)
                if key is None or key not in chunk:
                    continue
                if key in found:
                    log.warning(
                        "%s: more than one resource carries identifier %s; updating %s/%s",
                        resource_type,
                        identifier_token(resource_type, key),
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
                write = planner.withdrawal(current) if current is not None else None
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
            planned = planner.line_withdrawals(claims, keys, encounter_ref)
            writes.extend(planned)
            found = {key for write in planned for key in write.keys}
            for key in keys - found:
                self._settled("Claim", key)  # no line of ours left for it
        self._send(writes)


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


def _entry_status(entry: Any) -> int:
    text = str(((entry or {}).get("response") or {}).get("status") or "200")
    try:
        return int(text.split()[0])
    except ValueError:
        return 200
