"""Rules-table models of an Observation's component values and of a table of thresholds by coded value
(``ExistsCriterion.components``; judged in ``fhir_cat2.criteria.components``).

CMS1056 (ALARA CT) reads a CT scan's result this way: its category is the coded value, its calculated global
noise and size-adjusted dose are components, and each category has a noise and a dose threshold.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .base import TableModel, parse_code_ref


class ComponentValue(TableModel):
    """A number read from an Observation's components: the value of its one component coded ``code`` whose
    valueQuantity is in ``unit`` (the UCUM code, else the unit text, as FHIRHelpers ToQuantity reads it) and
    has no comparator: the CQL's ``singleton from (Obs.component C where C.code ~ CODE and (C.value as
    Quantity).unit = UNIT return (C.value as Quantity).value)``. Unknown when there is none, or more than one
    (where the CQL stops with an error)."""

    code: str
    unit: str = Field(min_length=1)

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str) -> str:
        parse_code_ref(value)
        return value


class ThresholdRow(TableModel):
    """One row of a threshold table: the Observation's coded value has ``code`` and, when ``at_least`` names
    components, one of them reaches its threshold (>=). With ``display`` the code is compared as CQL Code
    equality (``(value as Concept).codes contains C`` for a code declared with a display): a coding with that
    exact display and no version; without it, any coding of the code (equivalence)."""

    code: str
    display: str | None = None
    at_least: dict[str, float] = Field(default_factory=dict)
    """Component (a name of ``values``) -> its threshold."""
    label: str | None = None

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str) -> str:
        parse_code_ref(value)
        return value


class ComponentTest(TableModel):
    """Tests of an Observation's components: every value named in ``values`` is known (the CQL's ``is not
    null``); with ``rows``, one row holds too (the CQL's ``Qualifies(Obs, category, noise, dose) or ...``)."""

    values: dict[str, ComponentValue] = Field(min_length=1)
    rows: tuple[ThresholdRow, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ComponentTest:
        for row in self.rows:
            unknown = sorted(set(row.at_least) - set(self.values))
            if unknown:
                raise ValueError(f"threshold row {row.code}: {', '.join(unknown)} not among values")
        return self
