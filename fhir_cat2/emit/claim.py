"""Claim emitter: one professional Claim per encounter that earned codes, a $0.00 line per code.

The only place (with measurereport.py) where fhir.resources R4B models are built: every Claim is validated
with the full model before it is handed to a sink.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.claim import Claim

from ..contexts import PatientContext
from ..errors import InputError, QuarantineKind
from ..findings import QualityCode
from ..sources.records import ClaimRecord, EncounterRecord
from ..terminology import CPT, ICD10CM
from .ids import CLAIM_IDENTIFIER_SYSTEM, TAG_CODE, TAG_SYSTEM, claim_key, resource_id
from .validation import MODELS, problem_of

CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
MAX_DIAGNOSIS_POINTERS = 4  # an 837P service line carries at most four diagnosis pointers


@dataclass(frozen=True)
class EmitDefaults:
    """Required elements the input may not document, and what to write instead (from configuration).

    Immutable and shared by every patient of a run (and every worker): how often a default was used is
    counted by the caller, in a counter of its own (``use``), never in here."""

    provider: dict[str, Any] = field(default_factory=lambda: {"display": "rendering provider not documented"})
    coverage: dict[str, Any] = field(default_factory=lambda: {"display": "coverage not documented"})
    reporter: dict[str, Any] = field(default_factory=lambda: {"display": "fhir-cat2"})
    currency: str = "USD"
    configured: frozenset[str] = frozenset()
    """Which of provider, coverage, reporter came from configuration rather than built-in text."""

    def use(self, name: str, used: Counter[str]) -> dict[str, Any]:
        """A copy of default ``name``, counted in ``used`` (reported in the run report)."""
        used[name] += 1
        value: dict[str, Any] = getattr(self, name)
        return dict(value)


def _money(currency: str) -> dict[str, Any]:
    return {"value": 0, "currency": currency}


def _billing_claim(ctx: PatientContext, encounter: EncounterRecord) -> ClaimRecord | None:
    for claim in ctx.claims:
        if encounter.ref in claim.encounter_refs and claim.status not in ("cancelled", "entered-in-error"):
            return claim
    return None


def _diagnoses(
    ctx: PatientContext, encounter: EncounterRecord, billing: ClaimRecord | None
) -> list[dict[str, Any]]:
    refs = list(encounter.diagnoses)
    if not refs:
        refs = [c.ref for c in ctx.conditions if c.encounter_ref == encounter.ref]
    concepts: list[list[tuple[str, str]]] = []
    for ref in refs:
        condition = ctx.condition_by_ref.get(ref)
        if condition is None:
            continue
        # what was documented: a code a site ConceptMap added counts for the measures, but is never billed
        documented = condition.codes - {m.target for m in condition.mapped}
        if not documented:
            continue
        icd = sorted(c for c in documented if c[0] == ICD10CM)
        codings = icd or sorted(documented)
        if codings not in concepts:
            concepts.append(codings)
    if not concepts and billing is not None:
        for _, code in sorted(billing.diagnosis_codes):
            if [code] not in concepts:
                concepts.append([code])
    return [
        {
            "sequence": index,
            "diagnosisCodeableConcept": {"coding": [{"system": s, "code": c} for s, c in codings]},
        }
        for index, codings in enumerate(concepts, start=1)
    ]


def _insurance(
    ctx: PatientContext, billing: ClaimRecord | None, defaults: EmitDefaults, used: Counter[str]
) -> list[dict[str, Any]]:
    if billing is not None and billing.insurance:
        entries = sorted(billing.insurance)
        focal_seen = any(focal for _, focal, _ in entries)
        return [
            {
                "sequence": sequence,
                "focal": focal if focal_seen else index == 0,
                "coverage": _reference(coverage),
            }
            for index, (sequence, focal, coverage) in enumerate(entries)
        ]
    coverages = sorted(
        (c for c in ctx.coverages if c.status in ("active", "")),
        key=lambda c: (c.order if c.order is not None else 1_000, c.id),
    )
    if coverages:
        return [
            {"sequence": index, "focal": index == 1, "coverage": {"reference": c.ref}}
            for index, c in enumerate(coverages, start=1)
        ]
    return [{"sequence": 1, "focal": True, "coverage": defaults.use("coverage", used)}]


def _reference(text: str) -> dict[str, str]:
    return {"reference": text} if "/" in text and " " not in text else {"display": text}


def build_claim(
    ctx: PatientContext,
    encounter: EncounterRecord,
    codes: list[QualityCode],
    *,
    program: str,
    year: int,
    defaults: EmitDefaults,
    used: Counter[str],
) -> dict[str, Any]:
    """The Claim for one encounter, validated with fhir.resources R4B. Raises InputError if invalid. The
    defaults it has to use are counted in ``used``."""
    assert encounter.when is not None and codes
    billing = _billing_claim(ctx, encounter)
    key = claim_key(ctx.patient_id, encounter.ref, program, year)
    provider_ref = encounter.provider_ref or (billing.provider_ref if billing else None)
    if provider_ref:
        provider: dict[str, Any] = {"reference": provider_ref}
    else:
        provider = defaults.use("provider", used)
    diagnoses = _diagnoses(ctx, encounter, billing)
    pointers = [d["sequence"] for d in diagnoses[:MAX_DIAGNOSIS_POINTERS]]
    served = encounter.when.start_day.isoformat()
    items = []
    for sequence, code in enumerate(codes, start=1):
        item: dict[str, Any] = {"sequence": sequence}
        if pointers:
            item["diagnosisSequence"] = pointers
        item["productOrService"] = {
            "coding": [{"system": code.system, "code": code.code}],
            "text": code.label,
        }
        if code.modifiers:
            item["modifier"] = [{"coding": [{"system": CPT, "code": m}]} for m in code.modifiers]
        item["servicedDate"] = code.serviced.isoformat()
        if encounter.location_ref:
            item["locationReference"] = {"reference": encounter.location_ref}
        item["unitPrice"] = _money(defaults.currency)
        item["net"] = _money(defaults.currency)
        item["encounter"] = [{"reference": encounter.ref}]
        items.append(item)
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": resource_id(key),
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": TAG_CODE}]},
        "identifier": [{"system": CLAIM_IDENTIFIER_SYSTEM, "value": key}],
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE_SYSTEM, "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": f"Patient/{ctx.patient_id}"},
        "created": served,
        "provider": provider,
        "priority": {"coding": [{"system": PRIORITY_SYSTEM, "code": "normal"}]},
        "insurance": _insurance(ctx, billing, defaults, used),
        "item": items,
        "total": _money(defaults.currency),
    }
    if billing is not None:
        claim["related"] = [{"claim": {"reference": billing.ref}}]
    if diagnoses:
        claim["diagnosis"] = diagnoses
    validate(Claim, claim)
    return claim


def validate(model: Any, resource: dict[str, Any]) -> None:
    """Validate ``resource`` with its full fhir.resources R4B model (memoised on shape, see validation.py).

    Raises InputError naming the resource and the first failing element."""
    assert MODELS[resource["resourceType"]] is model
    problem = problem_of(resource)
    if problem is not None:
        raise InputError(
            f"{resource['resourceType']}/{resource.get('id')} {problem}", QuarantineKind.OUTPUT_VALIDATION
        )
