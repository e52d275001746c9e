"""The rules table as pydantic models: the table itself, its measurements and its code rules.

A rules table is data (YAML). This module and its siblings only say what a valid one looks like:
``criteria_schema`` the criteria language, ``measure_schema`` the measure definitions, ``base`` what they all
share. ``loader.py`` reads a table and reports problems by file, line and field; ``fhir_cat2.criteria``
judges its criteria, for the code rules (``engine.py``) and the measures (``fhir_cat2.measures``).
Every number from a spec (bands, windows, ages) lives in the table, next to the ``source`` it came from.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..terminology import CPT, HCPCS, normalise_system
from .base import Band, CodeRefs, TableModel, Years, check_code_refs, check_deviation_names, parse_years
from .criteria_schema import Criterion
from .measure_schema import MeasureDef

PROGRAMS = ("hedis", "mips-claims")
Program = Literal["hedis", "mips-claims"]


_CODE_RE = re.compile(r"^(?:\d{4}F|[A-Z]\d{4})$")
_MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")


class CodeSet(CodeRefs):
    """Codes given inline (``system#code``) and/or by value set (OID or canonical URL): at least one."""

    @model_validator(mode="after")
    def _non_empty(self) -> CodeSet:
        if not self.codes and not self.valuesets:
            raise ValueError("give at least one of codes or valuesets")
        return self


class UnitConversion(TableModel):
    """value_in_target_unit = value * factor + offset."""

    factor: float = 1.0
    offset: float = 0.0


class Plausible(TableModel):
    min: float
    max: float


ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]


class MeasurementDeviation(TableModel):
    """What a named deviation adds to a measurement (see ``fhir_cat2.deviations``): standalone codes,
    standalone Observations of its codes, panels, or unit conversions (which replace the table's conversion
    of that unit)."""

    codes: tuple[str, ...] = ()
    standalone: bool = False
    component_of: tuple[str, ...] = ()
    units: dict[str, UnitConversion] = Field(default_factory=dict)

    @field_validator("codes", "component_of")
    @classmethod
    def _check_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_code_refs(value)


class Measurement(CodeSet):
    """A numeric clinical fact read from Observations (standalone, or as a component of a panel)."""

    label: str = Field(max_length=80)
    exclude_codes: tuple[str, ...] = ()
    """Codes of the value sets that are not this measurement (e.g. an LDL goal in the LDL value set)."""
    component_of: tuple[str, ...] = ()
    standalone: bool = True
    """Read from Observations coded with ``codes`` themselves; false: only as a component of a
    ``component_of`` panel."""
    statuses: tuple[ObservationStatus, ...] = ("final", "amended", "corrected")
    categories: tuple[str, ...] = ()
    category_required: bool = False
    unit: str
    units: dict[str, UnitConversion]
    missing_unit: str | None = None
    plausible: Plausible | None = None
    deviations: dict[str, MeasurementDeviation] = Field(default_factory=dict)
    """Per named deviation, the codes, panels or unit conversions it adds (off unless the run turns it on)."""
    source: str

    @field_validator("component_of", "exclude_codes")
    @classmethod
    def _check_panels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_code_refs(value)

    @field_validator("deviations")
    @classmethod
    def _check_deviations(cls, value: dict[str, MeasurementDeviation]) -> dict[str, MeasurementDeviation]:
        return check_deviation_names(value)

    @model_validator(mode="after")
    def _check_units(self) -> Measurement:
        if self.unit not in self.units:
            raise ValueError(f"units must include the target unit '{self.unit}'")
        if self.missing_unit is not None and self.missing_unit not in self.units:
            raise ValueError(f"missing_unit '{self.missing_unit}' is not one of units")
        return self


Pick = Literal["lowest-of-latest-day", "last-of-latest-day"]


# ----------------------------------------------------------------------------------------------- code rules


def code_system_of(code: str) -> str:
    return CPT if code.endswith("F") else HCPCS


class CodeRule(TableModel):
    """One quality-data code and the documented fact on an encounter that earns it.

    The trigger is either a ``measurement`` with a ``band`` (or ``when_missing``), or a criterion ``when``
    judged for the encounter (anchors ``encounter.start`` / ``encounter.end`` name its period).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    code: str
    system: str | None = None
    modifiers: tuple[str, ...] = ()
    label: str = Field(max_length=80)
    programs: tuple[Program, ...] = Field(min_length=1)
    years: Years
    measurement: str | None = None
    pick: Pick = "lowest-of-latest-day"
    scope: Literal["encounter", "period-to-date"] = "encounter"
    """encounter: readings attached to the encounter. period-to-date: the patient's readings from the
    start of the measurement period to the encounter's day (for 'most recent result' reporting)."""
    band: Band | None = None
    when_missing: bool = False
    when: Criterion | None = None
    measure: str | None = None
    source: str

    @field_validator("years", mode="before")
    @classmethod
    def _parse_years(cls, value: Any) -> tuple[int, ...]:
        return parse_years(value)

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value  # YAML reads 3074 as a number

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str) -> str:
        if not _CODE_RE.match(value):
            raise ValueError(f"'{value}' is not a CPT II (nnnnF) or HCPCS (Annnn) code")
        return value

    @field_validator("modifiers")
    @classmethod
    def _check_modifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for modifier in value:
            if not _MODIFIER_RE.match(modifier):
                raise ValueError(f"'{modifier}' is not a two-character modifier like 8P")
        return value

    @model_validator(mode="after")
    def _check_trigger(self) -> CodeRule:
        if self.when is not None:
            if self.measurement is not None or self.band is not None or self.when_missing:
                raise ValueError(
                    "give either when (a criterion) or measurement with band/when_missing, not both"
                )
            return self
        if self.measurement is None:
            raise ValueError(
                "a code rule needs a trigger: when (a criterion), or measurement with band or when_missing"
            )
        if self.band is None and not self.when_missing:
            raise ValueError("give band (value range) or when_missing: true")
        if self.band is not None and self.when_missing:
            raise ValueError("give band or when_missing, not both")
        return self

    @property
    def code_system(self) -> str:
        if self.system:
            return normalise_system(self.system)
        return code_system_of(self.code)


class RulesTable(TableModel):
    version: Literal[1]
    name: str
    include: tuple[str, ...] = ()
    """Further files (globs relative to this file's folder) whose ``library``, ``code_rules`` and
    ``measures`` join this table's: one file per measure. In any file, ``exists: {like: NAME, ...}`` starts
    from the exists of library criterion NAME (a merge key that works across files)."""
    measurements: dict[str, Measurement] = Field(default_factory=dict)
    library: dict[str, Criterion] = Field(default_factory=dict)
    """Named criteria shared by measures (hospice, frailty...); a criterion refers to one with ``use``."""
    code_rules: tuple[CodeRule, ...] = ()
    measures: tuple[MeasureDef, ...] = ()
    encounter_statuses_without_codes: tuple[str, ...] = ("cancelled", "entered-in-error")
