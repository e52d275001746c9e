"""Write the bundled fixtures: our own synthetic patients, each one a scenario of the rules.

Usage: python tools/make_fixtures.py   (rewrites fixtures/; the output is deterministic)

Every patient is invented here; nothing is copied from public corpora. Measurement year: 2025.
See fixtures/README.md for what each patient demonstrates.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
LOCAL_LAB = "http://example.org/lab-codes"
LOCAL_A1C = "HBA1C-LOCAL"
NS = uuid.UUID("5b0c3b1e-6f1e-4c39-9a55-0c2f3b7a1d10")


def uid(*parts: str) -> str:
    return str(uuid.uuid5(NS, "/".join(parts)))


class PatientBundle:
    """A transaction Bundle for one patient, with urn:uuid references as EHR exports write them."""

    def __init__(self, key: str, *, birth: str, gender: str, name: str) -> None:
        self.key = key
        self.entries: list[dict[str, Any]] = []
        self.patient = self.add(
            "Patient",
            {
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN-{key.upper()}"}],
                "name": [{"family": name.split()[-1], "given": name.split()[:-1]}],
                "gender": gender,
                "birthDate": birth,
            },
            key="patient",
        )

    def add(self, resource_type: str, body: dict[str, Any], *, key: str) -> str:
        id_ = uid(self.key, key)
        resource = {"resourceType": resource_type, "id": id_, **body}
        self.entries.append(
            {
                "fullUrl": f"urn:uuid:{id_}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource_type}/{id_}"},
            }
        )
        return f"urn:uuid:{id_}"

    def subject(self) -> dict[str, str]:
        return {"reference": self.patient}

    def practitioner(self) -> str:
        return self.add(
            "Practitioner",
            {
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
                "name": [{"family": "Okafor", "given": ["Ada"]}],
            },
            key="practitioner",
        )

    def encounter(
        self,
        key: str,
        start: str,
        *,
        cpt: str = "99213",
        klass: str = "AMB",
        status: str = "finished",
        end: str | None = None,
        diagnoses: list[str] | None = None,
        practitioner: str | None = None,
        snomed: str | None = None,
    ) -> str:
        types = [{"coding": [{"system": CPT, "code": cpt}], "text": "Office visit"}] if cpt else []
        if snomed:
            types.append({"coding": [{"system": SNOMED, "code": snomed}]})
        body: dict[str, Any] = {
            "status": status,
            "class": {"system": ACT, "code": klass},
            "type": types,
            "subject": self.subject(),
            "period": {"start": start, "end": end or start.replace("T09:00", "T09:30")},
        }
        if practitioner:
            body["participant"] = [{"individual": {"reference": practitioner}}]
        if diagnoses:
            body["diagnosis"] = [
                {"condition": {"reference": d}, "rank": i} for i, d in enumerate(diagnoses, 1)
            ]
        return self.add("Encounter", body, key=key)

    def condition(self, key: str, icd: str, onset: str, *, system: str = ICD10) -> str:
        return self.add(
            "Condition",
            {
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": system, "code": icd}]},
                "subject": self.subject(),
                "onsetDateTime": onset,
            },
            key=key,
        )

    def bp_panel(
        self,
        key: str,
        when: str,
        systolic: float | None,
        diastolic: float | None,
        *,
        encounter: str | None,
        status: str = "final",
        panel: str = "85354-9",
    ) -> str:
        components = []
        for code, value in (("8480-6", systolic), ("8462-4", diastolic)):
            if value is None:
                continue
            components.append(
                {
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
                }
            )
        body: dict[str, Any] = {
            "status": status,
            "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": panel}]},
            "subject": self.subject(),
            "effectiveDateTime": when,
            "component": components,
        }
        if encounter:
            body["encounter"] = {"reference": encounter}
        return self.add("Observation", body, key=key)

    def vital(
        self,
        key: str,
        loinc: str,
        when: str,
        value: float,
        unit: str,
        *,
        encounter: str | None,
        status: str = "final",
        category: str | None = "vital-signs",
        absent: bool = False,
        system: str = LOINC,
    ) -> str:
        body: dict[str, Any] = {
            "status": status,
            "code": {"coding": [{"system": system, "code": loinc}]},
            "subject": self.subject(),
            "effectiveDateTime": when,
        }
        if category:
            body["category"] = [{"coding": [{"system": OBS_CAT, "code": category}]}]
        if absent:
            body["dataAbsentReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "code": "not-performed",
                    }
                ]
            }
        else:
            body["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        if encounter:
            body["encounter"] = {"reference": encounter}
        return self.add("Observation", body, key=key)

    def a1c(
        self,
        key: str,
        when: str,
        value: float,
        *,
        encounter: str | None,
        unit: str = "%",
        status: str = "final",
        category: str | None = "laboratory",
        loinc: str = "4548-4",
        system: str = LOINC,
    ) -> str:
        return self.vital(
            key,
            loinc,
            when,
            value,
            unit,
            encounter=encounter,
            status=status,
            category=category,
            system=system,
        )

    def coded(
        self,
        key: str,
        loinc: str,
        when: str,
        *,
        encounter: str | None,
        answer: str | None = None,
        number: int | None = None,
        category: str = "survey",
        status: str = "final",
    ) -> str:
        """A survey-style Observation answered with a SNOMED code or a whole number (valueInteger)."""
        body: dict[str, Any] = {
            "status": status,
            "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": self.subject(),
            "effectiveDateTime": when,
        }
        if answer is not None:
            body["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": answer}]}
        if number is not None:
            body["valueInteger"] = number
        if encounter:
            body["encounter"] = {"reference": encounter}
        return self.add("Observation", body, key=key)

    def procedure(
        self, key: str, code: str, when: str, *, system: str = SNOMED, reason: str | None = None
    ) -> str:
        body: dict[str, Any] = {
            "status": "completed",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": self.subject(),
            "performedDateTime": when,
        }
        if reason:
            body["reasonCode"] = [{"coding": [{"system": ICD10, "code": reason}]}]
        return self.add("Procedure", body, key=key)

    def order(
        self, key: str, code: str, when: str, *, reason: str | None = None, reason_system: str = ICD10
    ) -> str:
        body: dict[str, Any] = {
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": SNOMED, "code": code}]},
            "subject": self.subject(),
            "authoredOn": when,
        }
        if reason:
            body["reasonCode"] = [{"coding": [{"system": reason_system, "code": reason}]}]
        return self.add("ServiceRequest", body, key=key)

    def immunization(self, key: str, cvx: str, when: str) -> str:
        return self.add(
            "Immunization",
            {
                "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
                "patient": self.subject(),
                "occurrenceDateTime": when,
            },
            key=key,
        )

    def coverage(self) -> str:
        return self.add(
            "Coverage",
            {
                "status": "active",
                "beneficiary": self.subject(),
                "payor": [{"display": "Example Health Plan"}],
                "order": 1,
            },
            key="coverage",
        )

    def write(self, folder: Path) -> None:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}
        (folder / f"{self.key}.json").write_text(json.dumps(bundle, indent=1) + "\n")


def main() -> None:
    patients = OUT / "patients"
    patients.mkdir(parents=True, exist_ok=True)
    for old in patients.glob("*.json"):
        old.unlink()

    # 1. Hypertension, controlled at the most recent visit; panel and standalone copies of one reading.
    p = PatientBundle("bp-controlled", birth="1965-04-12", gender="female", name="Rosa Delgado")
    doc = p.practitioner()
    htn = p.condition("htn", "I10", "2018-06-01")
    p.coverage()
    e1 = p.encounter("visit-1", "2025-03-04T09:00:00-05:00", diagnoses=[htn], practitioner=doc)
    p.bp_panel("bp-1", "2025-03-04T09:10:00-05:00", 128, 78, encounter=e1)
    e2 = p.encounter("visit-2", "2025-09-10T09:00:00-05:00", cpt="99214", diagnoses=[htn], practitioner=doc)
    p.bp_panel("bp-2", "2025-09-10T09:12:00-05:00", 138, 84, encounter=e2)
    p.vital("bp-2-sys", "8480-6", "2025-09-10T09:12:00-05:00", 138, "mm[Hg]", encounter=e2)
    p.vital("bp-2-dia", "8462-4", "2025-09-10T09:12:00-05:00", 84, "mm[Hg]", encounter=e2)
    p.write(patients)

    # 2. Hypertension, not controlled: two readings on one day, the lowest of each counts (142/88).
    p = PatientBundle("bp-uncontrolled", birth="1955-11-30", gender="male", name="Walter Brandt")
    doc = p.practitioner()
    htn = p.condition("htn", "I10", "2020-01-15")
    e1 = p.encounter("visit-1", "2025-05-02T09:00:00Z", diagnoses=[htn], practitioner=doc)
    p.bp_panel("bp-1", "2025-05-02T09:05:00Z", 150, 88, encounter=e1)
    p.bp_panel("bp-2", "2025-05-02T09:25:00Z", 142, 95, encounter=e1)
    # An emergency visit later in the year: its low reading does not count for CMS165.
    e2 = p.encounter(
        "er-visit", "2025-11-20T22:00:00Z", cpt="99284", klass="EMER", end="2025-11-21T02:00:00Z"
    )
    p.bp_panel("bp-er", "2025-11-20T22:30:00Z", 118, 72, encounter=e2)
    p.write(patients)

    # 3. Hypertension but in hospice: excluded from CMS165 (codes are still earned at the visit).
    p = PatientBundle("bp-hospice", birth="1948-02-20", gender="female", name="Edith Marlow")
    htn = p.condition("htn", "I10", "2015-03-03")
    e1 = p.encounter("visit-1", "2025-02-14T09:00:00Z", diagnoses=[htn])
    p.bp_panel("bp-1", "2025-02-14T09:10:00Z", 162, 96, encounter=e1)
    p.encounter(
        "hospice", "2025-06-01T09:00:00Z", cpt="", snomed="385765002", klass="HH", end="2025-08-01T09:00:00Z"
    )
    p.write(patients)

    # 4. Age 82 with a frailty diagnosis: CMS165 exclusion (81 or older with frailty).
    p = PatientBundle("bp-frail-82", birth="1943-01-05", gender="male", name="Arthur Penhale")
    htn = p.condition("htn", "I10", "2010-05-05")
    p.condition("frailty", "M62.81", "2024-12-01")
    e1 = p.encounter("visit-1", "2025-04-22T09:00:00Z", diagnoses=[htn])
    p.bp_panel("bp-1", "2025-04-22T09:10:00Z", 146, 82, encounter=e1, panel="55284-4")
    p.write(patients)

    # 5. Diabetes, HbA1c above 9%: CMS122 numerator (an inverse measure: poor control).
    p = PatientBundle("a1c-poor", birth="1970-08-08", gender="male", name="Dmitri Volkov")
    dm = p.condition("dm", "E11.9", "2016-02-02")
    p.coverage()
    e1 = p.encounter("visit-1", "2025-02-10T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-1", "2025-02-10T08:00:00Z", 9.4, encounter=e1)
    p.write(patients)

    # 6. Diabetes, HbA1c reported in mmol/mol (58 mmol/mol = 7.46%): 3051F, controlled for CMS122.
    p = PatientBundle("a1c-mmol", birth="1975-12-24", gender="female", name="Ingrid Solberg")
    dm = p.condition("dm", "E11.65", "2019-09-09")
    e1 = p.encounter("visit-1", "2025-04-01T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-1", "2025-04-01T08:30:00Z", 58, encounter=e1, unit="mmol/mol", loinc="59261-8")
    p.a1c("a1c-2", "2025-04-01T08:30:00Z", 58, encounter=e1, unit="mmol/mol")
    p.write(patients)

    # 7. Diabetes, no HbA1c at all in the year: CMS122 numerator (not tested counts as poor control).
    p = PatientBundle("a1c-missing", birth="1961-07-01", gender="female", name="Grace Whitfield")
    dm = p.condition("dm", "E11.9", "2012-01-20")
    p.encounter("visit-1", "2025-06-18T09:00:00Z", diagnoses=[dm])
    p.write(patients)

    # 8. Diabetes, two results on the latest day (8.2 and 7.6): the lowest (7.6) decides; an earlier 9.5.
    p = PatientBundle("a1c-latest-day", birth="1968-03-15", gender="male", name="Tomas Herrera")
    dm = p.condition("dm", "E11.9", "2014-04-04")
    e1 = p.encounter("visit-1", "2025-06-02T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-june", "2025-06-02T08:00:00Z", 9.5, encounter=e1)
    e2 = p.encounter("visit-2", "2025-10-01T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-oct-a", "2025-10-01T08:00:00Z", 8.2, encounter=e2)
    p.a1c("a1c-oct-b", "2025-10-01T15:00:00Z", 7.6, encounter=e2, loinc="17856-6")
    p.write(patients)

    # 9. Status and category filters: only the final, categorised, valued results count.
    p = PatientBundle("filters", birth="1959-09-19", gender="female", name="Mei Tanaka")
    dm = p.condition("dm", "E11.9", "2017-07-07")
    e1 = p.encounter("visit-1", "2025-07-07T09:00:00Z", diagnoses=[dm])
    p.bp_panel("bp-prelim", "2025-07-07T09:05:00Z", 170, 100, encounter=e1, status="preliminary")
    p.bp_panel("bp-final", "2025-07-07T09:10:00Z", 124, 76, encounter=e1)
    p.a1c("a1c-error", "2025-07-07T08:00:00Z", 11.0, encounter=e1, status="entered-in-error")
    p.a1c("a1c-nocat", "2025-07-07T08:05:00Z", 10.5, encounter=e1, category=None)
    p.vital(
        "a1c-absent",
        "4548-4",
        "2025-07-07T08:10:00Z",
        0,
        "%",
        encounter=e1,
        category="laboratory",
        absent=True,
    )
    p.a1c("a1c-final", "2025-07-07T08:15:00Z", 6.4, encounter=e1, status="amended")
    p.write(patients)

    # 10. Readings with no encounter reference attach to the visit on their day;
    #     a cancelled visit earns nothing.
    p = PatientBundle("attach-by-date", birth="1980-05-05", gender="male", name="Kofi Mensah")
    htn = p.condition("htn", "I10", "2022-02-22")
    p.encounter("visit-1", "2025-08-12T10:00:00Z", diagnoses=[htn])
    p.bp_panel("bp-unlinked", "2025-08-12T10:20:00Z", 132, 91, encounter=None)
    e2 = p.encounter("cancelled", "2025-08-20T10:00:00Z", status="cancelled")
    p.bp_panel("bp-cancelled", "2025-08-20T10:05:00Z", 120, 70, encounter=e2)
    p.write(patients)

    # 11. Diabetes with HbA1c above 9% but palliative care in the year: excluded from CMS122 (exclusion wins).
    p = PatientBundle("a1c-palliative", birth="1958-10-02", gender="female", name="Olive Hartmann")
    dm = p.condition("dm", "E11.9", "2011-11-11")
    p.condition("palliative", "Z51.5", "2025-05-20")
    e1 = p.encounter("visit-1", "2025-04-15T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-1", "2025-04-15T08:00:00Z", 9.8, encounter=e1)
    p.write(patients)

    # 12. Current smoker seen twice, counselled at the second visit: CMS138 met in all three groups.
    p = PatientBundle("tobacco-counselled", birth="1983-02-14", gender="male", name="Luca Moretti")
    p.encounter("visit-1", "2025-02-03T09:00:00Z")
    e2 = p.encounter("visit-2", "2025-05-12T09:00:00Z", cpt="99214")
    p.coded("smoking", "72166-2", "2025-05-12T09:05:00Z", encounter=e2, answer="449868002")
    p.procedure("counselling", "99406", "2025-05-12T09:20:00Z", system=CPT)
    p.write(patients)

    # 13. PHQ-9 total 14 (valueInteger) with a same-day referral: CMS2 met
    #     (PHQ cut-off 10, a labelled deviation).
    p = PatientBundle("depression-phq9", birth="1990-07-21", gender="female", name="Amara Nwosu")
    e1 = p.encounter("visit-1", "2025-03-18T09:00:00Z")
    p.coded("phq9", "44261-6", "2025-03-18T09:05:00Z", encounter=e1, number=14)
    p.order("referral", "183524004", "2025-03-18T09:25:00Z")
    p.write(patients)

    # 14. BMI 32 with a dietitian referral for obesity: CMS69 met (high BMI with follow-up), 3008F.
    p = PatientBundle("bmi-high-plan", birth="1972-12-05", gender="male", name="Henrik Lund")
    e1 = p.encounter("visit-1", "2025-06-09T09:00:00Z")
    p.vital("bmi", "39156-5", "2025-06-09T09:08:00Z", 32.1, "kg/m2", encounter=e1)
    p.order("dietitian", "182922004", "2025-06-09T09:20:00Z", reason="E66.9")
    p.write(patients)

    # 15. BP screening: elevated 126/76 without follow-up at visit 1, normal 112/72 at visit 2
    #     (CMS22, per visit).
    p = PatientBundle("bp-screen-elevated", birth="1994-04-30", gender="female", name="Sofia Reyes")
    e1 = p.encounter("visit-1", "2025-01-21T09:00:00Z")
    p.bp_panel("bp-1", "2025-01-21T09:10:00Z", 126, 76, encounter=e1)
    e2 = p.encounter("visit-2", "2025-07-22T09:00:00Z")
    p.bp_panel("bp-2", "2025-07-22T09:10:00Z", 112, 72, encounter=e2)
    p.write(patients)

    # 16. Age 72, two falls counted at a screening, pneumococcal vaccine years ago, an advance care plan:
    #     CMS139 met; 1100F, 4040F, 1123F; MIPS 047 met.
    p = PatientBundle("older-adult-screened", birth="1952-09-09", gender="male", name="Bernard Cole")
    e1 = p.encounter("visit-1", "2025-10-06T09:00:00Z", cpt="99397")
    p.coded("falls", "52552-7", "2025-10-06T09:05:00Z", encounter=e1, number=2)
    p.immunization("pneumococcal", "33", "2019-10-01")
    p.procedure("acp", "713603004", "2023-04-04T10:00:00Z")
    p.write(patients)

    # 17. Age 60 with a colonoscopy in 2018: CMS130 met (within 9 years before the period); 3017F.
    p = PatientBundle("crc-colonoscopy", birth="1965-01-15", gender="female", name="Nadia Petrova")
    p.encounter("visit-1", "2025-08-14T09:00:00Z")
    p.procedure("colonoscopy", "45378", "2018-03-01T08:00:00Z", system=CPT)
    p.write(patients)

    # 18. Diabetes, HbA1c 6.8% coded only with the lab's own code: not counted without a site ConceptMap
    #     (CMS122 numerator: "no test"; listed in unrecognised-codes.csv); with concept-maps/ it counts as
    #     LOINC 4548-4 (3044F, CMS122 not met).
    p = PatientBundle("a1c-local-code", birth="1966-05-17", gender="female", name="Hana Kowalczyk")
    dm = p.condition("dm", "E11.9", "2015-05-05")
    e1 = p.encounter("visit-1", "2025-05-20T09:00:00Z", diagnoses=[dm])
    p.a1c("a1c-1", "2025-05-20T08:30:00Z", 6.8, encounter=e1, loinc=LOCAL_A1C, system=LOCAL_LAB)
    p.write(patients)
    maps = OUT / "concept-maps"
    maps.mkdir(parents=True, exist_ok=True)
    concept_map = {
        "resourceType": "ConceptMap",
        "id": "local-lab-codes",
        "url": "http://example.org/fhir/ConceptMap/local-lab-codes",
        "name": "LocalLabCodes",
        "title": "Example site lab codes to LOINC",
        "status": "active",
        "group": [
            {
                "source": LOCAL_LAB,
                "target": LOINC,
                "element": [
                    {
                        "code": LOCAL_A1C,
                        "display": "Hemoglobin A1c (site lab)",
                        "target": [{"code": "4548-4", "equivalence": "equivalent"}],
                    }
                ],
            }
        ],
    }
    (maps / "local-lab-codes.json").write_text(json.dumps(concept_map, indent=1) + "\n")

    # 19. Eye clinic: diabetic retinopathy, glaucoma and dementia. CMS131 met (retinal exam in the period);
    #     CMS142 met (macular exam, severity and macular edema findings communicated the next day); CMS143
    #     met (cup to disc ratio and optic disc exam at the eye visit); CMS149 met (cognition score at an
    #     office visit, two qualifying visits).
    p = PatientBundle("eye-clinic", birth="1947-06-03", gender="male", name="Elias Brandvold")
    dr = p.condition("dr", "E11.319", "2019-02-01")
    poag = p.condition("poag", "H40.1131", "2021-09-15")
    dem = p.condition("dementia", "F03.90", "2023-11-20")
    eye = p.encounter("eye-visit", "2025-04-08T09:00:00Z", cpt="92014", diagnoses=[dr, poag])
    for key, system, code, when, value in (
        (
            "retinal-exam",
            SNOMED,
            "308110009",
            "2025-04-08T09:05:00Z",
            {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "312903003"}]}},
        ),
        (
            "macular-exam",
            LOINC,
            "32451-7",
            "2025-04-08T09:10:00Z",
            {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "428341000124108"}]}},
        ),
        ("cup-to-disc", LOINC, "71484-0", "2025-04-08T09:15:00Z", {"valueQuantity": {"value": 0.6}}),
        (
            "optic-disc",
            LOINC,
            "71486-5",
            "2025-04-08T09:20:00Z",
            {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "17621005"}]}},
        ),
    ):
        p.add(
            "Observation",
            {
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "exam"}]}],
                "code": {"coding": [{"system": system, "code": code}]},
                "subject": p.subject(),
                "encounter": {"reference": eye},
                "effectiveDateTime": when,
                **value,
            },
            key=key,
        )
    for key, code in (("severity-sent", "312903003"), ("edema-sent", "428341000124108")):
        p.add(
            "Communication",
            {
                "status": "completed",
                "reasonCode": [{"coding": [{"system": SNOMED, "code": code}]}],
                "subject": p.subject(),
                "sent": "2025-04-09T08:00:00Z",
            },
            key=key,
        )
    office = p.encounter("visit-1", "2025-05-12T09:00:00Z", diagnoses=[dem])
    p.coded("moca", "72172-0", "2025-05-12T09:10:00Z", encounter=office, number=21)
    p.encounter("visit-2", "2025-10-02T09:00:00Z", diagnoses=[dem])
    p.write(patients)

    # 20. Bulk-export style NDJSON split by resource type (one patient), gzipped Observations.
    bulk = OUT / "bulk"
    bulk.mkdir(parents=True, exist_ok=True)
    pid = uid("bulk", "patient")
    enc = uid("bulk", "visit-1")
    cond = uid("bulk", "htn")
    ndjson = {
        "Patient": [
            {
                "resourceType": "Patient",
                "id": pid,
                "gender": "female",
                "birthDate": "1972-10-10",
                "name": [{"family": "Nakamura", "given": ["Yuki"]}],
            }
        ],
        "Condition": [
            {
                "resourceType": "Condition",
                "id": cond,
                "subject": {"reference": f"Patient/{pid}"},
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"coding": [{"system": ICD10, "code": "I10"}]},
                "onsetDateTime": "2021-01-01",
            }
        ],
        "Encounter": [
            {
                "resourceType": "Encounter",
                "id": enc,
                "status": "finished",
                "class": {"system": ACT, "code": "AMB"},
                "type": [{"coding": [{"system": CPT, "code": "99214"}]}],
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": "2025-12-01T14:00:00Z", "end": "2025-12-01T14:30:00Z"},
                "diagnosis": [{"condition": {"reference": f"Condition/{cond}"}}],
            }
        ],
    }
    observations = [
        {
            "resourceType": "Observation",
            "id": uid("bulk", "bp"),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{enc}"},
            "effectiveDateTime": "2025-12-01T14:10:00Z",
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": 139, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": 89, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
                },
            ],
        },
    ]
    for name, rows in ndjson.items():
        (bulk / f"{name}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with gzip.GzipFile(bulk / "Observation.ndjson.gz", "wb", mtime=0) as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in observations).encode())


if __name__ == "__main__":
    main()
