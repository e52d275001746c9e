"""Write planning for the server sink: given what we want and what the server holds, which writes to send.

Everything here is pure: functions of their arguments (desired resources, the server's current copies, a
billing Claim) with no client, no outbox, no clock and no logging. ``ServerSink`` reads the current copies,
calls these, sends the writes and keeps what does not get through; a re-plan after a 412 and a re-send from
the outbox call the same functions on a fresh read, so every path decides the same way.

- ``plan``: desired resources + current copies by business key -> writes, unchanged keys, and resources
  refused before sending (no business identifier). One write per key: the last desired state wins.
- ``withdrawal``: what takes back one of our earlier resources (Claim -> cancelled, MeasureReport ->
  DELETE); never anything we did not write.
- ``append``/``merge_lines`` (``billing_claims: append``): all of our Claims for one billing Claim go into
  ONE write, so two of them never race on the same ``If-Match``; ``line_withdrawals`` takes lines back off.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..emit.ids import (
    CLAIM_IDENTIFIER_SYSTEM,
    GAPS_BUNDLE_IDENTIFIER_SYSTEM,
    MEASURE_REPORT_IDENTIFIER_SYSTEM,
)
from ..sources.server import is_ours

IDENTIFIER_SYSTEMS = {
    "Claim": CLAIM_IDENTIFIER_SYSTEM,
    "MeasureReport": MEASURE_REPORT_IDENTIFIER_SYSTEM,
    "Bundle": GAPS_BUNDLE_IDENTIFIER_SYSTEM,
}
LINE_EXTENSION = "urn:fhir-cat2:quality-data-line"
"""Marks the lines we appended to a billing Claim; valueIdentifier is our Claim's business identifier."""
IGNORED_ELEMENTS = ("id", "meta", "text")
STRATEGIES = ("update", "conditional-create")


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """Content that decides whether a write is needed: everything but id, meta and narrative."""
    return {k: v for k, v in resource.items() if k not in IGNORED_ELEMENTS}


def business_key(resource: dict[str, Any]) -> str | None:
    """The value of our business identifier (None: the resource carries none)."""
    system = IDENTIFIER_SYSTEMS.get(resource.get("resourceType", ""))
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):  # Bundle.identifier is one Identifier, not a list
        identifiers = [identifiers]
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def version_of(resource: dict[str, Any]) -> str | None:
    version = (resource.get("meta") or {}).get("versionId")
    return str(version) if version is not None else None


def identifier_token(resource_type: str, key: str) -> str:
    """``system|value`` of our business identifier, escaped for a token search (\\ , $ |)."""
    return f"{_escape(IDENTIFIER_SYSTEMS[resource_type])}|{_escape(key)}"


@dataclass(frozen=True)
class Write:
    """One request: a Bundle entry, or a request of its own when sent one by one."""

    method: str
    url: str
    resource_type: str
    outcome: str
    """created | updated | appended | withdrawn"""
    desired: Mapping[str, dict[str, Any] | None]
    """Business key -> what the server should hold for it once this write is through (None: withdrawn).
    One key, except on a billing Claim: every Claim of ours merged into it, or whose lines it takes off.
    This is what the outbox keeps when the write does not get through."""
    resource: dict[str, Any] | None = None
    if_match: str | None = None
    if_none_exist: str | None = None
    encounter: str | None = None
    """append mode, withdrawing our lines: the encounter of the billing Claim."""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.desired)

    @property
    def key(self) -> str:
        return next(iter(self.desired))

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


@dataclass(frozen=True)
class Plan:
    writes: list[Write] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    """(resource type, business key) the server already holds as desired."""
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Resources that carry no business identifier: never sent (we could not find them again)."""


def latest(
    desired: Iterable[dict[str, Any]],
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[dict[str, Any]]]:
    """(type, business key) -> the last desired state for it, in order of first appearance; and the
    resources without a business identifier."""
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    refused: list[dict[str, Any]] = []
    for resource in desired:
        key = business_key(resource)
        if key is None:
            refused.append(resource)
        else:
            wanted[(resource["resourceType"], key)] = resource
    return wanted, refused


def plan(desired: list[dict[str, Any]], current: Mapping[str, dict[str, Any]], *, strategy: str) -> Plan:
    """The writes that bring the server's copies (``current``: business key -> server copy, absent when
    the server holds none) to ``desired``.

    ``update``: ``PUT Type/<our id>`` (If-Match on the current version when there is one).
    ``conditional-create``: a new one is ``POST``ed with ``If-None-Exist`` on the identifier; an existing
    one is ``PUT`` to the server's id with If-Match."""
    if strategy not in STRATEGIES:
        raise ValueError(strategy)
    wanted, refused = latest(desired)
    result = Plan(refused=refused)
    for (resource_type, key), resource in wanted.items():
        write = _planned(resource, key, current.get(key), strategy)
        if write is None:
            result.unchanged.append((resource_type, key))
        else:
            result.writes.append(write)
    return result


def _planned(
    desired: dict[str, Any], key: str, current: dict[str, Any] | None, strategy: str
) -> Write | None:
    resource_type = desired["resourceType"]
    if current is None:
        if strategy == "update":
            return Write(
                "PUT", f"{resource_type}/{desired['id']}", resource_type, "created", {key: desired}, desired
            )
        body = {k: v for k, v in desired.items() if k != "id"}
        return Write(
            "POST",
            resource_type,
            resource_type,
            "created",
            {key: desired},
            body,
            if_none_exist=f"identifier={identifier_token(resource_type, key)}",
        )
    if comparable(current) == comparable(desired):
        return None
    server_id = current["id"]
    return Write(
        "PUT",
        f"{resource_type}/{server_id}",
        resource_type,
        "updated",
        {key: desired},
        {**desired, "id": server_id},
        if_match=_if_match(current),
    )


def withdrawal(current: dict[str, Any]) -> Write | None:
    """What takes back one of our earlier resources: a Claim is cancelled (If-Match), a MeasureReport or
    a Gaps in Care Bundle (all the patient's gaps closed) deleted. None when it is not ours (never touch
    what we did not write) or already cancelled."""
    if not is_ours(current):
        return None
    resource_type = current["resourceType"]
    key = business_key(current) or ""
    url = f"{resource_type}/{current['id']}"
    if resource_type in ("MeasureReport", "Bundle"):
        return Write("DELETE", url, resource_type, "withdrawn", {key: None})
    if current.get("status") == "cancelled":
        return None
    body = {k: v for k, v in current.items() if k != "meta"}
    body["meta"] = {"tag": (current.get("meta") or {}).get("tag") or []}
    body["status"] = "cancelled"
    return Write("PUT", url, resource_type, "withdrawn", {key: None}, body, if_match=_if_match(current))


# ------------------------------------------------------------------------------ billing Claims (append)


def billing_id(ours: dict[str, Any]) -> str | None:
    """The id of the billing Claim one of our Claims is related to (None: it names none)."""
    related = ours.get("related") or []
    if not related or not isinstance(related[0], dict):
        return None
    reference = (related[0].get("claim") or {}).get("reference") or ""
    kind, _, claim_id = reference.partition("/")
    return claim_id if kind == "Claim" and claim_id else None


def append(billing: dict[str, Any], ours: list[dict[str, Any]]) -> Write | None:
    """ONE write that puts the lines of all of ``ours`` on ``billing`` (If-Match on its version); None
    when the billing Claim already carries exactly them."""
    merged = merge_lines(billing, ours)
    if comparable(merged) == comparable(billing):
        return None
    desired: dict[str, dict[str, Any] | None] = {business_key(c) or "": c for c in ours}
    return Write(
        "PUT",
        f"Claim/{billing['id']}",
        "Claim",
        "appended",
        desired,
        merged,
        if_match=_if_match(billing),
    )


def merge_lines(billing: dict[str, Any], ours: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The billing Claim with the earlier lines of ``ours`` (by business key) replaced by their current
    lines; lines of our other Claims stay. Our lines come after the billing Claim's own, grouped by key in
    key order, numbered on from its last sequence, so the result does not depend on the order in which
    ours arrive. Diagnosis pointers are mapped onto the billing Claim's diagnoses, adding one only when
    none matches."""
    by_key = {business_key(c) or "": c for c in ours}
    merged = {k: v for k, v in billing.items() if k != "meta"}
    if billing.get("meta"):
        merged["meta"] = billing["meta"]
    diagnoses = [dict(d) for d in billing.get("diagnosis") or []]
    lines: list[tuple[str, dict[str, Any]]] = []
    for key, claim in sorted(by_key.items()):
        pointer_map = _map_diagnoses(claim, diagnoses)
        for line in claim.get("item") or []:
            new_line = {k: v for k, v in line.items() if k not in ("sequence", "diagnosisSequence")}
            pointers = [pointer_map[p] for p in line.get("diagnosisSequence") or [] if p in pointer_map]
            lines.append(
                (
                    key,
                    {
                        "extension": [
                            {
                                "url": LINE_EXTENSION,
                                "valueIdentifier": {"system": CLAIM_IDENTIFIER_SYSTEM, "value": key},
                            }
                        ],
                        **({"diagnosisSequence": pointers} if line.get("diagnosisSequence") else {}),
                        **new_line,
                    },
                )
            )
    merged["item"] = _relined(billing, set(by_key), lines)
    if diagnoses:
        merged["diagnosis"] = diagnoses
    return merged


def line_withdrawals(
    billing_claims: Iterable[dict[str, Any]], keys: Collection[str], encounter: str
) -> list[Write]:
    """One write per billing Claim (not ours) that carries lines of ``keys``: it takes them off (If-Match),
    and settles every key whose lines it carried. Keys found on none have nothing left to withdraw."""
    writes: list[Write] = []
    for billing in billing_claims:
        if billing.get("resourceType") != "Claim" or is_ours(billing):
            continue
        on_it = dict.fromkeys(_line_key(i) for i in billing.get("item") or [])
        found = [k for k in on_it if k is not None and k in keys]
        if not found:
            continue
        body = {k: v for k, v in billing.items() if k != "meta"}
        body["item"] = _relined(billing, set(found), [])
        writes.append(
            Write(
                "PUT",
                f"Claim/{billing['id']}",
                "Claim",
                "withdrawn",
                dict.fromkeys(found),
                body,
                if_match=_if_match(billing),
                encounter=encounter,
            )
        )
    return writes


def _relined(
    billing: dict[str, Any], replaced: set[str], new_lines: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The billing Claim's own lines as they are, then our lines (those of other keys kept, those of
    ``replaced`` swapped for ``new_lines``) in key order, numbered on after the billing Claim's lines."""
    items = billing.get("item") or []
    theirs = [dict(i) for i in items if not _is_our_line(i)]
    ours = [(key, i) for i in items if (key := _line_key(i)) is not None and key not in replaced]
    ours.extend(new_lines)
    ours.sort(key=lambda line: line[0])  # stable: a key's lines keep their order
    next_sequence = max((i.get("sequence") or 0 for i in theirs), default=0) + 1
    renumbered = [_with_sequence(line, next_sequence + offset) for offset, (_, line) in enumerate(ours)]
    return theirs + renumbered


def _with_sequence(line: dict[str, Any], sequence: int) -> dict[str, Any]:
    """The line with its sequence set, right after its extension (the order the server keeps)."""
    head = {"extension": line["extension"], "sequence": sequence}
    return {**head, **{k: v for k, v in line.items() if k not in head}}


def _map_diagnoses(claim: dict[str, Any], diagnoses: list[dict[str, Any]]) -> dict[int, int]:
    """Our diagnosis sequence -> the billing Claim's (``diagnoses`` gains those it has no match for)."""
    pointer_map: dict[int, int] = {}
    for diagnosis in claim.get("diagnosis") or []:
        codings = {
            (c.get("system"), c.get("code"))
            for c in (diagnosis.get("diagnosisCodeableConcept") or {}).get("coding") or []
        }
        match = None
        for existing in diagnoses:
            existing_codings = {
                (c.get("system"), c.get("code"))
                for c in (existing.get("diagnosisCodeableConcept") or {}).get("coding") or []
            }
            if existing_codings & codings:
                match = existing.get("sequence")
                break
        if match is None:
            match = max((d.get("sequence") or 0 for d in diagnoses), default=0) + 1
            diagnoses.append(
                {"sequence": match, "diagnosisCodeableConcept": diagnosis["diagnosisCodeableConcept"]}
            )
        pointer_map[diagnosis["sequence"]] = match
    return pointer_map


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


def _if_match(current: dict[str, Any]) -> str | None:
    version = version_of(current)
    return f'W/"{version}"' if version else None


def _escape(value: str) -> str:
    """Escape a token search value (FHIR search: \\ , $ |)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")
