"""The MIPS quality submission file: the JSON body of a QPP quality measurement set, built from a run's
summary MeasureReports. Nothing is sent anywhere; the practice or its registry submits the file.

Shape and rules come from CMS's QPP Submissions API documentation (CMSgov/qpp-submissions-docs,
``src/app/components/references/data.ts``: submissions, measurementSets, measurements; no machine-readable
schema is published, so the checks below are written from that documentation):

- a submission: ``entityType`` (``individual`` with a TIN and an NPI, ``group`` with a TIN),
  ``taxpayerIdentificationNumber`` (9 digits), ``nationalProviderIdentifier`` (10 digits, check digit by
  Luhn over the ``80840`` prefix), ``performanceYear``, ``measurementSets``;
- a measurement set: ``category`` ``quality``, ``submissionMethod`` (``electronicHealthRecord`` for
  eCQMs, ``registry``), ``programName`` ``mips``, ``performanceStart`` / ``performanceEnd`` (dates),
  ``measurements``;
- a measurement: ``measureId`` (the MIPS quality number, "236"), ``value``: for a single performance rate
  ``isEndToEndReported``, ``performanceMet``, ``performanceNotMet``, ``eligiblePopulationExclusion``,
  ``eligiblePopulationException``, ``eligiblePopulation``; for a multi performance rate
  ``isEndToEndReported`` and ``strata`` (the same counts per stratum, with the stratum name of CMS's
  measures data). Counts are whole numbers >= 0 and performanceMet <= eligiblePopulation.

From a summary MeasureReport group: eligiblePopulation = denominator; eligiblePopulationExclusion =
denominator-exclusion; eligiblePopulationException = denominator-exception; performanceMet = numerator;
performanceNotMet = the rest of the denominator. So met + not met + exclusions + exceptions = eligible
population (a reporting rate of 100%: every patient of the run was evaluated). A measure whose counts do
not add up that way (more in the numerator than the denominator leaves, a denominator larger than the
initial population) is refused, with the reason, and left out of the file.

Which measures and strata: the catalogue's ``mips`` number; the QPP measure facts of the performance year
(``data/qpp/measures-<year>.json``, from CMS's measures data by tools/build_qpp_measures.py). A single
performance rate measure whose eCQM has several population groups (CMS145, CMS157, CMS347) reports their
sum, as the MIPS specification's one performance rate does. A multi performance rate measure maps its
strata to the eCQM's groups in order (CMS138 -> reporting, performance, combinedPopulations; CMS155,
CMS156), or to the stratifiers of a one-group measure; where neither matches (CMS159: CMS lists
adolescents and adults strata, the 2025 eCQM content has no stratifier logic) the measure is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..rules.measure_schema import MeasureDef
from .rundir import GroupCounts, SummaryReport

SUBMISSION_METHODS = ("electronicHealthRecord", "registry")


# ----------------------------------------------------------------------------- the documented shape


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Counts(_Strict):
    performanceMet: int = Field(ge=0)
    performanceNotMet: int = Field(ge=0)
    eligiblePopulationExclusion: int = Field(ge=0)
    eligiblePopulationException: int = Field(ge=0)
    eligiblePopulation: int = Field(ge=0)

    @model_validator(mode="after")
    def _adds_up(self) -> Counts:
        if self.performanceMet > self.eligiblePopulation:
            raise ValueError("performanceMet is larger than eligiblePopulation")
        total = (
            self.performanceMet
            + self.performanceNotMet
            + self.eligiblePopulationExclusion
            + self.eligiblePopulationException
        )
        if total > self.eligiblePopulation:
            raise ValueError(
                "performanceMet + performanceNotMet + exclusions + exceptions "
                "is larger than eligiblePopulation"
            )
        return self


class SingleRate(Counts):
    isEndToEndReported: bool


class Stratum(Counts):
    stratum: str = Field(min_length=1)


class MultiRate(_Strict):
    isEndToEndReported: bool
    strata: tuple[Stratum, ...] = Field(min_length=1)


class Measurement(_Strict):
    measureId: str = Field(pattern=r"^\d{3}$")
    value: SingleRate | MultiRate


class MeasurementSet(_Strict):
    category: Literal["quality"]
    submissionMethod: Literal["electronicHealthRecord", "registry"]
    programName: Literal["mips"] = "mips"
    performanceStart: date
    performanceEnd: date
    measurements: tuple[Measurement, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _period(self) -> MeasurementSet:
        if self.performanceEnd < self.performanceStart:
            raise ValueError("performanceEnd is before performanceStart")
        ids = [m.measureId for m in self.measurements]
        if len(ids) != len(set(ids)):
            raise ValueError("a measure appears twice")
        return self


class Submission(_Strict):
    entityType: Literal["individual", "group"]
    taxpayerIdentificationNumber: str = Field(pattern=r"^\d{9}$")
    nationalProviderIdentifier: str | None = Field(default=None, pattern=r"^\d{10}$")
    performanceYear: int = Field(ge=2017)
    measurementSets: tuple[MeasurementSet, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _entity(self) -> Submission:
        if self.entityType == "individual" and self.nationalProviderIdentifier is None:
            raise ValueError("an individual submission needs nationalProviderIdentifier")
        if self.entityType == "group" and self.nationalProviderIdentifier is not None:
            raise ValueError("a group submission has no nationalProviderIdentifier")
        if self.nationalProviderIdentifier is not None and not npi_check_digit_ok(
            self.nationalProviderIdentifier
        ):
            raise ValueError("nationalProviderIdentifier fails its check digit")
        for measurement_set in self.measurementSets:
            for when in (measurement_set.performanceStart, measurement_set.performanceEnd):
                if when.year != self.performanceYear:
                    raise ValueError(
                        f"performance period {when.isoformat()} is outside {self.performanceYear}"
                    )
        return self


def npi_check_digit_ok(npi: str) -> bool:
    """The NPI's tenth digit: Luhn over '80840' + the first nine (CMS's NPI check digit standard)."""
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:  # the rightmost of the payload is doubled: the check digit is appended after it
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


# ----------------------------------------------------------------------------- CMS's measure facts


@dataclass(frozen=True)
class QppMeasure:
    measure_id: str
    metric_type: str
    strata: tuple[str | None, ...]
    submission_methods: tuple[str, ...]
    inverse: bool
    overall_algorithm: str | None = None


def qpp_measures(year: int) -> dict[str, QppMeasure]:
    """The QPP facts shipped for ``year``; ConfigError when the package has none for that year."""
    name = f"measures-{year}.json"
    folder = resources.files("fhir_cat2") / "data" / "qpp"
    path = folder / name
    if not path.is_file():
        shipped = sorted(p.name for p in folder.iterdir() if p.name.startswith("measures-"))
        raise ConfigError(
            f"no QPP measures data for performance year {year} (shipped: {', '.join(shipped) or 'none'})"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        measure_id: QppMeasure(
            measure_id,
            facts["metricType"],
            tuple(facts["strata"]),
            tuple(facts["submissionMethods"]),
            bool(facts["isInverse"]),
            facts.get("overallAlgorithm"),
        )
        for measure_id, facts in data["measures"].items()
    }


# ----------------------------------------------------------------------------- building the file


@dataclass
class Export:
    document: dict[str, Any] | None
    """The submission body; None when no measure could be submitted."""
    included: list[str] = field(default_factory=list)
    """The measures in the file: 'CMS165 (MIPS 236)'."""
    refused: list[str] = field(default_factory=list)
    """One line per measure left out because something is wrong (counts that do not add up, strata that
    do not match CMS's): a person has to look."""
    skipped: list[str] = field(default_factory=list)
    """One line per measure left out as expected: no eligible patient, not submittable by this method."""


def build_submission(
    reports: Sequence[SummaryReport],
    catalogue: Sequence[MeasureDef],
    facts: Mapping[str, QppMeasure],
    *,
    year: int,
    tin: str,
    npi: str | None,
    method: str = "electronicHealthRecord",
    end_to_end: bool = False,
) -> Export:
    """The QPP submission for the summary reports; measures that cannot be submitted are refused."""
    if method not in SUBMISSION_METHODS:
        raise ConfigError(
            f"--submission-method must be one of {', '.join(SUBMISSION_METHODS)}, not {method!r}"
        )
    periods = {r.period for r in reports}
    if not reports:
        raise ConfigError("the run folder has no summary MeasureReports (run with --report summary or both)")
    if len(periods) > 1:
        raise ConfigError("the summary MeasureReports cover different periods: export one run at a time")
    start, end = next(iter(periods))
    if start.year != year or end.year != year:
        raise ConfigError(
            f"the run's period {start.isoformat()}..{end.isoformat()} is not performance year {year}"
        )
    by_url = {m.url: m for m in catalogue if m.url}
    export = Export(None)
    measurements: list[dict[str, Any]] = []
    seen: set[str] = set()
    for report in reports:
        measure = by_url.get(report.measure)
        if measure is None:
            export.refused.append(f"{report.measure}: not a measure of the rules table ({report.where})")
            continue
        name = f"{measure.id} (MIPS {measure.mips})" if measure.mips else measure.id
        skip = _skip(measure, facts, method, report)
        if skip is not None:
            export.skipped.append(f"{name}: {skip}")
            continue
        reason = _refusal(measure, seen)
        if reason is None:
            assert measure.mips is not None
            value, reason = _value(measure, facts[measure.mips], report, end_to_end)
            if value is not None:
                measurements.append({"measureId": measure.mips, "value": value})
                seen.add(measure.mips)
                export.included.append(name)
                continue
        export.refused.append(f"{name}: {reason}")
    if not measurements:
        return export
    entity: dict[str, Any] = {
        "entityType": "individual" if npi else "group",
        "taxpayerIdentificationNumber": tin,
    }
    if npi:
        entity["nationalProviderIdentifier"] = npi
    document = {
        **entity,
        "performanceYear": year,
        "measurementSets": [
            {
                "category": "quality",
                "submissionMethod": method,
                "programName": "mips",
                "performanceStart": start.isoformat(),
                "performanceEnd": end.isoformat(),
                "measurements": sorted(measurements, key=lambda m: str(m["measureId"])),
            }
        ],
    }
    problems = validate_submission(document, facts)
    if problems:  # the builder's own bug, or a tampered measure facts file: never write an invalid file
        raise ConfigError("the submission built does not validate: " + "; ".join(problems))
    export.document = document
    return export


def _skip(
    measure: MeasureDef, facts: Mapping[str, QppMeasure], method: str, report: SummaryReport
) -> str | None:
    if measure.mips is None:
        return "no MIPS quality number in the catalogue"
    qpp = facts.get(measure.mips)
    if qpp is None:
        return f"MIPS {measure.mips} is not in the QPP measures data of this year"
    if method not in qpp.submission_methods:
        return f"not submittable as {method} (CMS lists {', '.join(qpp.submission_methods)})"
    if not any(group.counts.get("denominator", 0) for group in report.groups):
        return "no eligible patient in the run (denominator 0): nothing to submit"
    return None


def _refusal(measure: MeasureDef, seen: set[str]) -> str | None:
    if measure.mips in seen:
        return f"a second report for MIPS {measure.mips}"
    return None


def _value(
    measure: MeasureDef, qpp: QppMeasure, report: SummaryReport, end_to_end: bool
) -> tuple[dict[str, Any] | None, str]:
    groups: list[GroupCounts] = []
    for group_def in measure.groups:
        group = report.group(group_def.id)
        if group is None:
            return None, f"the report has no group {group_def.id} ({report.where})"
        groups.append(group)
    if qpp.metric_type == "singlePerformanceRate":
        total: dict[str, int] = {}
        for group in groups:
            for code, count in group.counts.items():
                total[code] = total.get(code, 0) + count
        counts, reason = _qpp_counts(total)
        if counts is None:
            return None, reason
        return {"isEndToEndReported": end_to_end, **counts}, ""
    if qpp.metric_type != "multiPerformanceRate":
        return None, f"metric type {qpp.metric_type} is not a proportion this export writes"
    sources = _strata_sources(groups, qpp)
    if sources is None:
        return None, (
            f"CMS lists strata {', '.join(str(s) for s in qpp.strata)}; the eCQM has {len(groups)} group(s) "
            f"and {sum(len(g.strata) for g in groups)} stratifier(s): no one-to-one match"
        )
    strata = []
    for name, source in sources:
        counts, reason = _qpp_counts(source)
        if counts is None:
            return None, f"stratum {name}: {reason}"
        strata.append({**counts, "stratum": name})
    return {"isEndToEndReported": end_to_end, "strata": strata}, ""


def _strata_sources(
    groups: Sequence[GroupCounts], qpp: QppMeasure
) -> list[tuple[str, Mapping[str, int]]] | None:
    names = [s for s in qpp.strata if s]
    if len(names) != len(qpp.strata) or not names:
        return None
    if len(groups) == len(names):
        return [(name, group.counts) for name, group in zip(names, groups, strict=True)]
    if len(groups) == 1 and len(groups[0].strata) == len(names):
        return [(name, stratum.counts) for name, stratum in zip(names, groups[0].strata, strict=True)]
    return None


def _qpp_counts(counts: Mapping[str, int]) -> tuple[dict[str, int] | None, str]:
    initial = counts.get("initial-population", 0)
    denominator = counts.get("denominator", 0)
    exclusions = counts.get("denominator-exclusion", 0)
    exceptions = counts.get("denominator-exception", 0)
    numerator = counts.get("numerator", 0)
    if denominator > initial:
        return None, f"denominator {denominator} is larger than the initial population {initial}"
    not_met = denominator - exclusions - exceptions - numerator
    if not_met < 0:
        return None, (
            f"numerator {numerator} + exclusions {exclusions} + exceptions {exceptions} "
            f"is larger than the denominator {denominator}"
        )
    return {
        "performanceMet": numerator,
        "performanceNotMet": not_met,
        "eligiblePopulationExclusion": exclusions,
        "eligiblePopulationException": exceptions,
        "eligiblePopulation": denominator,
    }, ""


def validate_submission(document: Mapping[str, Any], facts: Mapping[str, QppMeasure]) -> list[str]:
    """Problems of a submission body against the documented shape and CMS's measure facts ([] = valid)."""
    try:
        submission = Submission.model_validate(document)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        ]
    problems = []
    for s_index, measurement_set in enumerate(submission.measurementSets):
        for m_index, measurement in enumerate(measurement_set.measurements):
            where = f"measurementSets.{s_index}.measurements.{m_index} (measure {measurement.measureId})"
            qpp = facts.get(measurement.measureId)
            if qpp is None:
                problems.append(f"{where}: not a quality measure of {submission.performanceYear}")
                continue
            if measurement_set.submissionMethod not in qpp.submission_methods:
                problems.append(f"{where}: not submittable as {measurement_set.submissionMethod}")
            multi = isinstance(measurement.value, MultiRate)
            if multi != (qpp.metric_type == "multiPerformanceRate"):
                problems.append(f"{where}: value does not match the metric type {qpp.metric_type}")
            if isinstance(measurement.value, MultiRate):
                names = [s.stratum for s in measurement.value.strata]
                if sorted(names) != sorted(str(s) for s in qpp.strata):
                    problems.append(f"{where}: strata {names} are not CMS's {list(qpp.strata)}")
    return problems
