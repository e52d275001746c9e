"""The Claim we write (domain.md §2.1): one professional Claim per coded encounter, $0.00 lines."""

from __future__ import annotations

from fhir.resources.R4B.claim import Claim

from fhir_cat2.config import DefaultsConfig, Reference
from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.sources.files import InputItem
from fhir_cat2.sources.records import Src
from fhir_cat2.sources.values import plain_resolver

from .conftest import CPT, ICD10, MemorySink, bp_panel, condition, encounter, patient, run_resources


def test_claim_shape(ruleset):
    enc = encounter(diagnoses=["htn", "dm"])
    enc["participant"] = [{"individual": {"reference": "Practitioner/dr1"}}]
    resources = [patient(), enc, condition("htn", "I10"), condition("dm", "E11.9"), bp_panel("bp", 128, 92)]
    [claim] = run_resources(resources, ruleset).claims
    Claim.model_validate(claim)
    assert claim["status"] == "active" and claim["use"] == "claim"
    assert claim["type"]["coding"][0]["code"] == "professional"
    assert claim["patient"] == {"reference": "Patient/p1"}
    assert claim["provider"] == {"reference": "Practitioner/dr1"}
    assert claim["created"] == "2025-03-04"
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]] == [
        "I10",
        "E11.9",
    ]
    assert claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["system"] == ICD10
    assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == ["3074F", "3080F"]
    for index, item in enumerate(claim["item"], start=1):
        assert item["sequence"] == index
        assert item["productOrService"]["coding"][0]["system"] == CPT
        assert item["unitPrice"] == {"value": 0, "currency": "USD"} and item["net"] == item["unitPrice"]
        assert item["servicedDate"] == "2025-03-04"
        assert item["encounter"] == [{"reference": "Encounter/e1"}]
        assert item["diagnosisSequence"] == [1, 2]
    assert claim["total"] == {"value": 0, "currency": "USD"}


def test_hcpcs_codes_use_the_hcpcs_system_and_modifiers_are_written(ruleset):
    def resources(year: int) -> list[dict]:
        return [
            patient(birth="1960-01-01"),
            encounter(start=f"{year}-03-04T09:00:00Z", diagnoses=["dm"]),
            condition("dm", "E11.9"),
        ]

    run = run_resources(resources(2023), ruleset, program="mips-claims", period=2023)
    [claim] = run.claims
    item = claim["item"][0]
    assert item["productOrService"]["coding"][0]["code"] == "3046F"
    assert item["modifier"] == [{"coding": [{"system": CPT, "code": "8P"}]}]
    run = run_resources(resources(2025), ruleset, program="mips-claims", period=2025)
    item = run.claims[0]["item"][0]
    assert item["productOrService"]["coding"][0] == {
        "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "code": "M1212",
    }


def test_no_codes_no_claim(ruleset):
    assert run_resources([patient(), encounter()], ruleset).claims == []


def test_insurance_from_coverage_and_defaults_reported(ruleset):
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
    }
    run = run_resources([patient(), encounter(), bp_panel("bp", 120, 70), coverage], ruleset)
    claim = run.claims[0]
    assert claim["insurance"] == [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}]
    assert (
        run.pipeline.stats.defaults_used["insurance"] == 0
        and run.pipeline.stats.defaults_used["provider"] == 1
    )


def test_insurance_and_provider_from_the_billing_claim_of_the_encounter(ruleset):
    billing = {
        "resourceType": "Claim",
        "id": "bill1",
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "provider": {"reference": "Organization/clinic"},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/plan9"}}],
        "item": [{"sequence": 1, "encounter": [{"reference": "Encounter/e1"}]}],
    }
    [claim] = run_resources([patient(), encounter(), bp_panel("bp", 120, 70), billing], ruleset).claims
    assert claim["provider"] == {"reference": "Organization/clinic"}
    assert claim["insurance"][0]["coverage"] == {"reference": "Coverage/plan9"}
    assert claim["related"] == [{"claim": {"reference": "Claim/bill1"}}]


def test_configured_defaults_are_written_and_reported(ruleset):
    defaults = DefaultsConfig(
        provider=Reference(reference="Organization/our-clinic"), coverage=Reference(display="Plan on file")
    ).emit_defaults()
    sink = MemorySink()
    pipeline = Pipeline(ruleset, RunOptions(period_year=2025), sink, defaults=defaults)
    resources = [patient(), encounter(), bp_panel("bp", 120, 70)]
    pipeline.ingest(InputItem(r, Src("t", str(i)), plain_resolver, r["id"]) for i, r in enumerate(resources))
    pipeline.run()
    claim = sink.of("Claim")[0]
    assert claim["provider"] == {"reference": "Organization/our-clinic"}
    assert claim["insurance"][0]["coverage"] == {"display": "Plan on file"}
    assert defaults.configured == {"provider", "coverage"}


def test_claim_ids_and_identifiers_are_deterministic_and_program_specific(ruleset):
    resources = [patient(), encounter(), bp_panel("bp", 120, 70)]
    first = run_resources(resources, ruleset).claims[0]
    again = run_resources(list(reversed(resources)), ruleset).claims[0]
    assert first == again
    assert first["identifier"][0]["system"] == "urn:fhir-cat2:claim"
    assert first["id"].startswith("cat2-") and len(first["id"]) <= 64
