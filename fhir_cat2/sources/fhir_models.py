"""Pydantic models of the FHIR datatypes and backbone elements the field maps read: validation only.

They never build records. When the fast reader declines a resource, its validation model (made from its
field map by ``fieldmap.py``, out of these) names the failing field, or coerces what pydantic accepts
(a number in a string) into the exact JSON the fast reader reads. Only the elements we read are declared.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Element(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Coding(Element):
    system: str | None = None
    code: str | None = None


class CodeableConcept(Element):
    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None


class DisplayedCoding(Coding):
    version: str | None = None
    display: str | None = None


class DisplayedConcept(Element):
    """A CodeableConcept whose codings' displays and versions are read too (CQL Code equality)."""

    coding: list[DisplayedCoding] = Field(default_factory=list)
    text: str | None = None


class Reference(Element):
    reference: str | None = None
    display: str | None = None


class Period(Element):
    start: str | None = None
    end: str | None = None


class Quantity(Element):
    value: float | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None
    comparator: str | None = None


class Range(Element):
    low: Quantity | None = None
    high: Quantity | None = None


class Extension(Element):
    url: str | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueBoolean: bool | None = None
    valueDateTime: str | None = None


class Meta(Element):
    lastUpdated: str | None = None
    versionId: str | None = None


class Duration(Element):
    value: float | None = None
    unit: str | None = None
    code: str | None = None


class DispenseRequest(Element):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: int | None = None
    quantity: Quantity | None = None
    expectedSupplyDuration: Duration | None = None


class TimingRepeat(Element):
    boundsPeriod: Period | None = None
    frequency: int | None = None
    frequencyMax: int | None = None
    period: float | None = None
    periodUnit: str | None = None
    timeOfDay: list[str] = Field(default_factory=list)


class Timing(Element):
    event: list[str] = Field(default_factory=list)
    repeat: TimingRepeat | None = None


class DoseAndRate(Element):
    doseQuantity: Quantity | None = None
    doseRange: Range | None = None


class Dosage(Element):
    timing: Timing | None = None
    doseAndRate: list[DoseAndRate] = Field(default_factory=list)


class EncounterDiagnosis(Element):
    condition: Reference | None = None
    use: CodeableConcept | None = None
    rank: int | None = None


class ClaimInsurance(Element):
    sequence: int | None = None
    focal: bool | None = None
    coverage: Reference | None = None


class ClaimDiagnosis(Element):
    sequence: int | None = None
    diagnosisCodeableConcept: CodeableConcept | None = None
    diagnosisReference: Reference | None = None


class ClaimItem(Element):
    encounter: list[Reference] = Field(default_factory=list)
