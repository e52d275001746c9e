"""Measure definitions of the rules table: a measure, its groups, their populations, stratifiers, care-gap
wording and claims options (the criteria they hold are ``criteria_schema``'s)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from .base import TableModel, Years, parse_qdc, parse_years
from .criteria_schema import Criterion, ExistsCriterion, PopulationCode

POPULATION_ORDER: tuple[str, ...] = get_args(PopulationCode)
"""Population codes in the order results are listed: the ``PopulationCode`` literal's."""


class ClaimsOption(TableModel):
    """Quality-data codes reported together on one claim, and when this option applies."""

    codes: tuple[str, ...] = Field(min_length=1)
    label: str = Field(max_length=80)
    when: Criterion | None = None
    """Judged for the encounter; None: the option applies whenever its category does."""
    listed_exclusion: bool = False
    """An exclusion chosen when the claim line carries a diagnosis (or procedure) the year's claims file
    lists as putting the line in the denominator exclusion (DX_CODE_PD_Exl), whatever the record says else."""
    cite: str | None = None
    """Where the reason's wording comes from: the measure's published claims specification for the years."""

    @field_validator("codes", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("codes")
    @classmethod
    def _check(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_qdc(text)
        return value

    def parsed(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(parse_qdc(text) for text in self.codes)


CLAIMS_CATEGORIES = ("met", "not_met", "exclusion", "exception")


class ClaimsYears(TableModel):
    """For some years: which codes CMS's claims single-source file lists for each outcome of the measure."""

    years: Years
    eligible: Criterion | None = None
    """Judged for the encounter, on top of the year's claims denominator rows (data/claims/<year>.json),
    only where the specification needs more than the rows say."""
    met: tuple[ClaimsOption, ...] = ()
    not_met: tuple[ClaimsOption, ...] = ()
    exclusion: tuple[ClaimsOption, ...] = ()
    exception: tuple[ClaimsOption, ...] = ()
    source: str

    @field_validator("years", mode="before")
    @classmethod
    def _parse_years(cls, value: Any) -> tuple[int, ...]:
        return parse_years(value)

    @model_validator(mode="after")
    def _listed_exclusion_is_an_exclusion(self) -> ClaimsYears:
        for category in ("met", "not_met", "exception"):
            if any(option.listed_exclusion for option in self.options(category)):
                raise ValueError(f"listed_exclusion is for exclusion options, not {category}")
        return self

    def options(self, category: str) -> tuple[ClaimsOption, ...]:
        result: tuple[ClaimsOption, ...] = getattr(self, category)
        return result


class Population(TableModel):
    id: str
    criteria: Criterion


class Stratifier(TableModel):
    """A stratum of the group's initial population (the Measure's group.stratifier, e.g. ages 46-49):
    MeasureReports count each population within it too."""

    id: str
    """The stratifier id of the published Measure."""
    label: str = Field(max_length=80)
    criteria: Criterion


class GapWording(TableModel):
    """How a care gap of a group reads to a care coordinator (our own words, from the measure's logic).

    ``need``: what the measure asks for ("a blood pressure reading below 140/90"); ``missing``: the finding
    when the criteria that decided the gap used no evidence ("no HbA1c result in {year}"); ``found``: the
    finding with the evidence they used ("last BP {evidence} is 140/90 or above"; {evidence} is the latest
    reading's values and date, or the date of the latest record); ``close``: what closes an open gap, when
    not simply the need by the end of the period ("{need} by {by} closes it"). Placeholders: {year} (of the
    period), {by} (its last day), {evidence}.
    """

    need: str = Field(min_length=1, max_length=120)
    missing: str = Field(min_length=1, max_length=160)
    found: str | None = Field(default=None, max_length=160)
    close: str | None = Field(default=None, max_length=160)

    @model_validator(mode="after")
    def _placeholders(self) -> GapWording:
        for text in (self.need, self.missing, self.found, self.close):
            if text is None:
                continue
            try:
                text.format(year="", by="", evidence="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"gap wording '{text}': only {{year}}, {{by}} and {{evidence}}") from exc
        return self


class MeasureGroup(TableModel):
    id: str
    populations: dict[PopulationCode, Population]
    stratifiers: tuple[Stratifier, ...] = ()
    gap: GapWording | None = None
    """How an open or closed care gap of this group reads (``--emit gaps``, explain)."""
    mips_rate: str | None = Field(default=None, pattern=r"^\d{3}(\.\d{2})?$")
    """The CMS claims (sub-)measure this group reports, e.g. 226.01 (default: the measure's mips id)."""
    claims: tuple[ClaimsYears, ...] = ()

    @model_validator(mode="after")
    def _required(self) -> MeasureGroup:
        for code in ("initial-population", "denominator", "numerator"):
            if code not in self.populations:
                raise ValueError(f"group needs a '{code}' population")
        return self

    def claims_for(self, year: int) -> ClaimsYears | None:
        for entry in self.claims:
            if year in entry.years:
                return entry
        return None


class MeasureDef(TableModel):
    id: str = Field(pattern=r"^(CMS\d+|MIPS\d{3})$")
    """The CMS eCQM number (CMS165), or MIPS<nnn> for a claims measure without an eCQM."""
    mips: str | None = Field(default=None, pattern=r"^\d{3}$")
    title: str = Field(max_length=80)
    what: str | None = Field(default=None, max_length=120)
    """What the measure counts, in a few words (the catalogue's 'What': ``fhir-cat2 measures list``)."""
    logic: str | None = None
    """Its key logic in a paragraph: ages, windows, what counts, exclusions (the catalogue's 'Key logic')."""
    url: str | None = None
    """Canonical URL of the published Measure resource; None: no MeasureReport is written (claims only)."""
    version: str | None = None
    scoring: Literal["proportion"] = "proportion"
    basis: Literal["patient", "encounter", "procedure"] = "patient"
    episode: ExistsCriterion | None = None
    """Episode-based measures: the encounters (basis encounter) or procedures (basis procedure) that are
    episodes; populations are judged per episode with the anchor named as the basis (``encounter``,
    ``procedure``) bound to it."""
    improvement_notation: Literal["increase", "decrease"]
    groups: tuple[MeasureGroup, ...] = Field(min_length=1)
    source: str

    @model_validator(mode="after")
    def _check(self) -> MeasureDef:
        if (self.basis != "patient") != (self.episode is not None):
            raise ValueError("an episode-based measure needs episode (and only it)")
        if self.episode is not None and self.episode.resource != self.basis.capitalize():
            raise ValueError(
                f"episode must be an exists on resource {self.basis.capitalize()} (basis {self.basis})"
            )
        if self.url is not None and self.version is None:
            raise ValueError("a measure with url needs its version")
        return self

    @property
    def episode_anchor(self) -> str | None:
        """The date anchor bound to each episode (``encounter``, ``procedure``); None for patient basis."""
        return None if self.basis == "patient" else self.basis
