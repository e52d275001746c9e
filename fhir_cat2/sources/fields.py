"""The field map of each resource type we read: for every record field, the FHIR elements and how.

This is the one place a field a measure needs is added: an entry here is read by the fast reader and
validated by the pydantic model, both made from it by ``fieldmap.py``. The vocabulary (``Codes``, ``Ref``,
``choice``...) is documented there; ``computed`` takes a function of ``readers.py`` for the few fields that
read several elements together. Entries are in FHIR element order: the validation model follows it, and
so does the order of the problems its error messages list.
"""

from __future__ import annotations

from typing import Any

from . import fhir_models as fm
from . import readers
from .fieldmap import (
    Boolean,
    Categories,
    Codes,
    CodesOf,
    CodingCode,
    Day,
    Each,
    Else,
    ExtensionCodes,
    FieldReader,
    FirstCode,
    FirstOf,
    FirstPresent,
    FirstRef,
    Integer,
    Map,
    PatientOf,
    PeriodOf,
    Present,
    QuantityOf,
    Raw,
    Ref,
    ResourceId,
    Text,
    Time,
    build_readers,
    choice,
    computed,
    read_record,
)
from .records import (
    ClaimRecord,
    ComponentRecord,
    ConditionRecord,
    CoverageRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    ResourceRecord,
    Src,
)
from .values import REASON_EXTENSIONS, Resolver

PATIENT = Map(
    PatientRecord,
    {
        "patient_id": ResourceId(),
        "birth_date": Day("birthDate"),
        "gender": Text("gender"),
        "deceased_day": Day("deceasedDateTime"),
        "deceased": computed(readers.deceased, Boolean("deceasedBoolean"), Day("deceasedDateTime")),
    },
)

ENCOUNTER = Map(
    EncounterRecord,
    {
        "status": Text("status", required=True),
        "class_code": CodingCode("class"),
        "type_codes": CodesOf("type"),
        "patient_id": PatientOf(Ref("subject")),
        "when": PeriodOf("period"),
        "diagnoses": computed(
            readers.ranked_diagnoses, Raw("diagnosis", list[fm.EncounterDiagnosis]), resolve=True
        ),
        # the rendering provider: the first participant individual, else the serviceProvider
        "provider_ref": FirstOf(FirstRef("participant[].individual"), Ref("serviceProvider")),
        "location_ref": FirstRef("location[].location"),
        "service_provider_ref": Ref("serviceProvider"),
        "discharge_codes": Codes("hospitalization.dischargeDisposition"),
        "reason_codes": CodesOf("reasonCode"),
        "principal_diagnosis": computed(
            readers.principal_diagnosis, Raw("diagnosis", list[fm.EncounterDiagnosis]), resolve=True
        ),
    },
)

# Observation.value[x] types read only as "a value is there" (value_present), not by their content
_OTHER_VALUES = ("Range", "Ratio", "SampledData", "Time", "DateTime", "Period")
_VALUE_CONCEPT = Raw("valueCodeableConcept", fm.DisplayedConcept)  # read as codes, and with displays
OBSERVATION = Map(
    ObservationRecord,
    {
        "part_of": computed(readers.references, Raw("partOf", list[fm.Reference]), resolve=True),
        "status": Text("status", required=True),
        "categories": Categories("category"),
        "codes": Codes("code", required=True),
        "patient_id": PatientOf(Ref("subject")),
        "encounter_ref": Ref("encounter"),
        "when": choice("effective", "DateTime", "Instant", "Period"),  # the first present, in this order
        "quantity": QuantityOf("valueQuantity"),
        "value_codes": computed(readers.codes, _VALUE_CONCEPT),
        "value_displays": computed(readers.coding_displays, _VALUE_CONCEPT),
        "value_int": Integer("valueInteger"),
        "value_string": Text("valueString"),
        "value_bool": Boolean("valueBoolean"),
        "value_other": computed(readers.any_given, *(Raw(f"value{kind}") for kind in _OTHER_VALUES)),
        "absent": Present("dataAbsentReason"),
        "components": Each(
            "component",
            Map(
                ComponentRecord,
                {
                    "codes": Codes("code", required=True),
                    "quantity": QuantityOf("valueQuantity"),
                    "absent": Present("dataAbsentReason"),
                },
            ),
        ),
        "issued": Time("issued"),
        "reason_codes": ExtensionCodes("extension", suffixes=REASON_EXTENSIONS),
    },
)

CONDITION = Map(
    ConditionRecord,
    {
        "codes": Codes("code"),
        "categories": Categories("category"),
        "clinical_status": FirstCode("clinicalStatus"),
        "verification_status": FirstCode("verificationStatus"),
        "patient_id": PatientOf(Ref("subject", required=True)),
        "encounter_ref": Ref("encounter"),
        "onset": choice("onset", "DateTime", "Period"),
        "abatement": choice("abatement", "DateTime", "Period"),
        "recorded": Time("recordedDate"),
        "body_sites": CodesOf("bodySite"),
        "severity": Codes("severity"),
    },
)

# A coded act. Every type reads the same elements (its code under any of the names types give it); orders
# are timed by when they were authored (QI-Core), other acts by when they were done.
_EVENT_CODES = FirstPresent(
    Codes("code"),
    Codes("vaccineCode"),
    Codes("medicationCodeableConcept"),
    Codes("codeCodeableConcept"),
    Codes("type"),
    default=readers.NO_CODES,
)
_DONE = (
    choice("performed", "DateTime", "Period"),
    choice("occurrence", "DateTime", "Period"),
)
_AUTHORED = Time("authoredOn")
_DATED = (Time("dateTime"), Time("date"), PeriodOf("period"))
_BASED_ON = computed(readers.references, Raw("basedOn", list[fm.Reference]), resolve=True)
EVENT = Map(
    EventRecord,
    {
        "status": Text("status", absent=""),
        "intent": Text("intent"),
        "codes": _EVENT_CODES,
        "do_not_perform": computed(
            readers.do_not_perform, Raw("doNotPerform", bool), Raw("modifierExtension", list[fm.Extension])
        ),
        "categories": Categories("category"),
        "patient_id": PatientOf(FirstPresent(Ref("subject"), Ref("patient"))),
        "encounter_ref": computed(
            readers.encounter_or_context, Raw("encounter", fm.Reference), Raw("context"), resolve=True
        ),
        "when": FirstOf(*_DONE, _AUTHORED, *_DATED),
        "authored": _AUTHORED,
        "reason_codes": computed(
            readers.reasons,
            Raw("statusReason", fm.CodeableConcept),
            Raw("reasonCode", list[fm.CodeableConcept]),
            Raw("extension", list[fm.Extension]),
        ),
        "recorded": computed(readers.recorded, Raw("extension", list[fm.Extension])),
        "based_on": _BASED_ON,
    },
)
ORDER = EVENT.but(when=FirstOf(_AUTHORED, *_DONE, *_DATED))

MAPS: dict[str, Map] = {
    "Patient": PATIENT,
    "Encounter": ENCOUNTER,
    "Observation": OBSERVATION,
    "Condition": CONDITION,
    "Procedure": EVENT,
    "Immunization": EVENT,
    "MedicationRequest": ORDER.but(
        supply=computed(
            readers.medication_request_period,
            Raw("dosageInstruction", list[fm.Dosage]),
            Raw("dispenseRequest", fm.DispenseRequest),
            _AUTHORED,
        ),
        dosage=computed(readers.first_dosage_period, Raw("dosageInstruction", list[fm.Dosage])),
        dosages=computed(readers.dosage_periods, Raw("dosageInstruction", list[fm.Dosage])),
        first_event=computed(readers.first_dosage_event, Raw("dosageInstruction", list[fm.Dosage])),
        days_supplied=computed(
            readers.medication_request_days,
            Raw("dosageInstruction", list[fm.Dosage]),
            Raw("dispenseRequest", fm.DispenseRequest),
        ),
        refills=computed(readers.refills_allowed, Raw("dispenseRequest", fm.DispenseRequest)),
        dispensed=computed(readers.dispensed_quantity, Raw("dispenseRequest", fm.DispenseRequest)),
    ),
    # given at effective[x], its statusReason a list (QI-Core MedicationAdministration and -NotAdministered)
    "MedicationAdministration": EVENT.but(
        when=FirstOf(choice("effective", "DateTime", "Period"), *_DONE),
        reason_codes=computed(
            readers.listed_reasons,
            Raw("statusReason", list[fm.CodeableConcept]),
            Raw("reasonCode", list[fm.CodeableConcept]),
            Raw("extension", list[fm.Extension]),
        ),
    ),
    # QI-Core 4.1.1 times a dispense by whenHandedOver, else whenPrepared (CumulativeMedicationDuration's
    # startDate); its supply covers daysSupply days, else quantity / (dose x doses per day).
    "MedicationDispense": EVENT.but(
        when=FirstOf(Time("whenHandedOver"), Time("whenPrepared")),
        supply=computed(
            readers.medication_dispense_period,
            Raw("dosageInstruction", list[fm.Dosage]),
            Raw("quantity", fm.Quantity),
            Raw("daysSupply", fm.Quantity),
            Time("whenHandedOver"),
            Time("whenPrepared"),
        ),
    ),
    "ServiceRequest": ORDER,
    "DocumentReference": EVENT,
    "CarePlan": EVENT.but(codes=Else(_EVENT_CODES, CodesOf("category"))),
    "Consent": EVENT.but(codes=Else(_EVENT_CODES, CodesOf("category"))),
    "DeviceRequest": ORDER,
    # QI-Core 4.1.1 codes a Communication by reasonCode (its primary code path: the CQL retrieves read it),
    # times it by sent; statusReason says why one was not done.
    "Communication": Map(
        EventRecord,
        {
            "status": Text("status", absent=""),
            "codes": CodesOf("reasonCode"),
            "categories": Categories("category"),
            "patient_id": PatientOf(Ref("subject")),
            "encounter_ref": Ref("encounter"),
            "when": Time("sent"),
            "reason_codes": Codes("statusReason"),
            "based_on": _BASED_ON,
        },
    ),
    # QI-Core 4.1.1 codes a Task by code, names its patient in ``for`` and times it by executionPeriod
    # (CMS50's consultant report); basedOn names the request it fulfils.
    "Task": Map(
        EventRecord,
        {
            "based_on": _BASED_ON,
            "status": Text("status", absent=""),
            "reason_codes": Codes("statusReason"),
            "intent": Text("intent"),
            "codes": Codes("code"),
            "patient_id": PatientOf(Ref("for")),
            "encounter_ref": Ref("encounter"),
            "when": PeriodOf("executionPeriod"),
            "authored": Time("authoredOn"),
        },
    ),
    "AllergyIntolerance": Map(
        EventRecord,
        {
            "status": FirstCode("clinicalStatus", absent=""),
            "verification_status": FirstCode("verificationStatus"),
            "codes": Codes("code"),
            "patient_id": PatientOf(Ref("patient", required=True)),
            "encounter_ref": Ref("encounter"),
            "when": computed(
                readers.allergy_period, choice("onset", "DateTime", "Period"), Time("lastOccurrence")
            ),
            "onset": choice("onset", "DateTime", "Period"),
        },
    ),
    # QI-Core 4.1.1 codes an AdverseEvent by its event (the CQL's retrieves: ``[AdverseEvent: event in ...]``)
    # and CMS347 times it by recordedDate; it has no status.
    "AdverseEvent": Map(
        EventRecord,
        {
            "categories": Categories("category"),
            "codes": Codes("event"),
            "patient_id": PatientOf(Ref("subject", required=True)),
            "encounter_ref": Ref("encounter"),
            "when": Time("recordedDate"),
        },
    ),
    "Coverage": Map(
        CoverageRecord,
        {
            "status": Text("status", absent=""),
            "patient_id": PatientOf(Ref("beneficiary", required=True)),
            "order": Integer("order"),
            "period": PeriodOf("period"),
        },
    ),
    "Claim": Map(
        ClaimRecord,
        {
            "status": Text("status", absent=""),
            "patient_id": PatientOf(Ref("patient", required=True)),
            "provider_ref": Ref("provider"),
            "insurance": computed(
                readers.claim_insurance, Raw("insurance", list[fm.ClaimInsurance]), resolve=True
            ),
            "diagnosis_codes": computed(
                readers.claim_diagnoses, Raw("diagnosis", list[fm.ClaimDiagnosis]), resolve=True
            ),
            "encounter_refs": computed(
                readers.claim_encounters, Raw("item", list[fm.ClaimItem]), resolve=True
            ),
        },
    ),
}
"""The resource types we read, each with its map."""

# The element that carries the clinical code, per resource type, for the cheap relevance check.
CODE_ELEMENT: dict[str, str] = {
    "Observation": "code",
    "Condition": "code",
    "Procedure": "code",
    "Immunization": "vaccineCode",
    "MedicationRequest": "medicationCodeableConcept",
    "AllergyIntolerance": "code",
    "MedicationAdministration": "medicationCodeableConcept",
    "MedicationDispense": "medicationCodeableConcept",
    "ServiceRequest": "code",
    "DocumentReference": "type",
    "CarePlan": "category",
    "Consent": "category",
    "Communication": "reasonCode",
    "Task": "code",
    "AdverseEvent": "event",
    "DeviceRequest": "codeCodeableConcept",
}

READERS: dict[str, FieldReader] = build_readers(MAPS)


def to_record(resource: dict[str, Any], src: Src, resolve: Resolver, resource_id: str) -> ResourceRecord:
    """The record of ``resource`` (a type of ``MAPS``). Raises InputError naming the resource and field."""
    return read_record(READERS[resource["resourceType"]], resource, src, resolve, resource_id)
