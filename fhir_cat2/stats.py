"""A run's statistics, added up from ingest counts and per-patient results whatever the executor, and what
they say at the end (warnings, unrecognised codes, summary MeasureReports)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .codes import UnrecognisedCode, unrecognised_codes
from .core import PatientResult
from .emit.measurereport import SummaryTally, build_summary_report
from .errors import QuarantineKind
from .job import Job
from .run_warnings import deviation_warnings, period_warnings, population_warnings, unrecognised_warnings

log = logging.getLogger("fhir_cat2.stats")


@dataclass
class RunStats:
    files: int = 0
    resources_read: Counter[str] = field(default_factory=Counter)
    resources_used: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    populations: dict[str, Counter[str]] = field(default_factory=dict)
    quarantined: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    files_unreadable: int = 0
    started: float = field(default_factory=time.monotonic)
    unrecognised: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(resource type, system as sent, code) of the codes of resources left out (or kept whole) because no
    code of theirs is known: counted at ingest, sorted out by ``codes.unrecognised_codes``."""
    mapped: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """(resource type, map, source, target): codes a site ConceptMap added, per record."""
    encounter_spans: Counter[tuple[int, int]] = field(default_factory=Counter)
    """Encounters by (first, last) year of their period (the period-without-encounters warning); spans, not
    every year touched, so a placeholder end such as 9999-12-31 costs one count, not 8,000."""
    birth_years: Counter[int] = field(default_factory=Counter)
    """Patients by year of birth (the empty-initial-population warning)."""
    warnings: list[str] = field(default_factory=list)
    """What the data suggests is wrong with the run (no patient data): logged, and in the run report."""
    unrecognised_codes: list[UnrecognisedCode] = field(default_factory=list)
    """``unrecognised``, sorted out at the end of the run (see ``codes.unrecognised_codes``)."""
    latest_encounter_year: int | None = None
    """The year the latest encounter of the input starts in (the default measurement period)."""
    tallies: dict[str, tuple[list[dict[str, int]], int]] = field(default_factory=dict)
    """Per measure, every group's population counts and the patients counted (the summary reports)."""
    defaults_used: Counter[str] = field(default_factory=Counter)
    """How often each emit default had to be used."""
    left_out: Counter[str] = field(default_factory=Counter)
    """Observations only a deviation that is off would read, per deviation (a warning at the end)."""

    def take_ingest(self, delta: RunStats) -> None:
        """Add the counts ingest made in another process (a map task) to these."""
        self.resources_read.update(delta.resources_read)
        self.resources_used.update(delta.resources_used)
        self.quarantined += delta.quarantined
        self.quarantine_reasons.update(delta.quarantine_reasons)
        self.files_unreadable += delta.files_unreadable
        self.unrecognised.update(delta.unrecognised)
        self.mapped.update(delta.mapped)
        self.encounter_spans.update(delta.encounter_spans)
        self.birth_years.update(delta.birth_years)
        self.take_year(delta.latest_encounter_year)

    def take_year(self, year: int | None) -> None:
        if year is not None and (self.latest_encounter_year is None or year > self.latest_encounter_year):
            self.latest_encounter_year = year

    def count_quarantined(self, kind: QuarantineKind, n: int = 1) -> None:
        self.quarantined += n
        self.quarantine_reasons[kind.value] += n

    def take_patient(self, result: PatientResult) -> None:
        """Add one patient's counts (from ``core.evaluate_patient``, here or in another process)."""
        if result.evaluated:
            self.patients += 1
        for entry in result.quarantined:
            self.count_quarantined(entry.kind)
        self.codes.update(result.codes)
        self.written.update(result.written)
        for measure_id, counts in result.populations.items():
            self.populations.setdefault(measure_id, Counter()).update(counts)
        for measure_id, groups in result.tallies.items():
            self.take_tally(measure_id, groups, 1)
        self.defaults_used.update(result.defaults_used)
        self.left_out.update(result.left_out)

    def take_tally(self, measure_id: str, groups: list[dict[str, int]], patients: int) -> None:
        mine = self.tallies.get(measure_id)
        if mine is None:
            self.tallies[measure_id] = ([dict(group) for group in groups], patients)
            return
        counts, seen = mine
        for total, theirs in zip(counts, groups, strict=True):
            for code, count in theirs.items():
                total[code] = total.get(code, 0) + count
        self.tallies[measure_id] = (counts, seen + patients)

    def take_evaluated(self, delta: RunStats) -> None:
        """Add the counts evaluation made in another process (a reduce task) to these."""
        self.patients += delta.patients
        self.codes.update(delta.codes)
        self.written.update(delta.written)
        self.quarantined += delta.quarantined
        self.quarantine_reasons.update(delta.quarantine_reasons)
        for measure_id, population_counts in delta.populations.items():
            self.populations.setdefault(measure_id, Counter()).update(population_counts)
        for measure_id, (groups, patients) in delta.tallies.items():
            self.take_tally(measure_id, groups, patients)
        self.defaults_used.update(delta.defaults_used)
        self.left_out.update(delta.left_out)

    def summary_reports(self, job: Job) -> list[dict[str, Any]]:
        """The run's summary MeasureReports (one per measure with a MeasureReport), counted as written."""
        if not job.summary_reports:
            return []
        reports = []
        for measure in job.reported_measures:
            tally = SummaryTally(measure)
            counts = self.tallies.get(measure.id)
            if counts is not None:
                tally.merge(*counts)
            reports.append(
                build_summary_report(
                    tally,
                    period=job.period,
                    report_date=job.report_date,
                    defaults=job.defaults,
                    used=self.defaults_used,
                )
            )
            self.written["MeasureReport"] += 1
        return reports

    def finish(self, job: Job) -> None:
        """Sort out the unrecognised codes and warn about what the data says of the run (logged, and kept
        for the run report)."""
        ruleset, options, period = job.ruleset, job.options, job.period
        self.unrecognised_codes = unrecognised_codes(
            self.unrecognised, ruleset.known_codes(), ruleset.concept_maps
        )
        warnings = period_warnings(period, self.encounter_spans, options.period_defaulted_on)
        if options.only_patient is None:
            warnings += population_warnings(
                job.measures,
                ruleset.table.library,
                self.populations,
                self.birth_years,
                period,
                selected=options.measures is not None,
            )
        warnings += unrecognised_warnings(self.unrecognised_codes)
        warnings += deviation_warnings(self.left_out)
        for warning in warnings:
            log.warning("%s", warning)
        self.warnings = warnings


def default_period(options_year: int | None, latest_encounter_year: int | None) -> tuple[date, date]:
    """The measurement period: the year asked for, else the year of the input's latest encounter."""
    year = options_year or latest_encounter_year
    if year is None:
        year = date.today().year  # noqa: DTZ011 - only when the input has no encounter at all
        log.warning("no encounters in the input; measurement period defaults to %s", year)
    return date(year, 1, 1), date(year, 12, 31)
