"""The in-process executor: source -> ingest -> core -> sink, in one process.

``Pipeline.ingest`` takes input items from any source (files, a server, a recording) and groups slim
records by patient; ``Pipeline.run`` hands each patient to ``core.evaluate_patient`` and what it returns to
the sink, in patient-id order. Replay (``--workers 1``) and live sync both come through here, and the forked
(``fhir_cat2.executors.forked``) and Spark (``fhir_cat2.spark``) executors compose the same ingest and core,
so every engine gives the same answer on the same data by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date

from .core import PatientOutcome, PatientResult, assess, evaluate_patient, expected, quarantine_line
from .emit.claim import EmitDefaults
from .ingest import Ingest, Items, Screen
from .job import EMIT_KINDS, Job, RunOptions, prepare_job, selected_measures
from .quarantine import QuarantineEntry, QuarantineKind
from .rules.loader import RuleSet
from .sinks.base import Sink
from .sources.files import InputPart
from .sources.grouping import DEFAULT_BUDGET, PatientGrouper
from .stats import RunStats, default_period

log = logging.getLogger("fhir_cat2.pipeline")

__all__ = [
    "EMIT_KINDS",
    "PatientOutcome",
    "Pipeline",
    "QuarantineEntry",
    "QuarantineKind",
    "RunOptions",
    "RunStats",
    "quarantine_line",
    "selected_measures",
]


class Pipeline:
    """One run in this process: ingest into a grouper (spilling past ``budget`` records), then evaluate."""

    def __init__(
        self,
        ruleset: RuleSet,
        options: RunOptions,
        sink: Sink,
        *,
        defaults: EmitDefaults | None = None,
        budget: int | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.options = options
        self.sink = sink
        self.defaults = defaults or EmitDefaults()
        self.stats = RunStats()
        self.measures = selected_measures(ruleset, options)  # refused before any work
        self._grouper = PatientGrouper(DEFAULT_BUDGET if budget is None else budget)
        self._ingest = Ingest(
            Screen(ruleset, options.only_patient), self._grouper.add, sink.quarantine, self.stats
        )
        self._job: Job | None = None
        self.observer: Callable[[], None] | None = None
        """Called after each patient is evaluated (progress on a terminal)."""

    # ------------------------------------------------------------------------------------------ ingest

    @property
    def budget(self) -> int:
        return self._grouper.budget

    @property
    def screen(self) -> Screen:
        return self._ingest.screen

    def ingest(self, items: Items) -> None:
        self._ingest.feed(items)

    def ingest_parts(
        self,
        parts: list[InputPart],
        *,
        counted: Callable[[Items], Items] | None = None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> None:
        self._ingest.feed_parts(parts, counted=counted, bytes_done=bytes_done)

    # ------------------------------------------------------------------------------------------ run

    def period(self) -> tuple[date, date]:
        if self._job is not None:
            return self._job.period
        return default_period(self.options.period_year, self.stats.latest_encounter_year)

    def job(self) -> Job:
        """The run's job, prepared once its period is known (after ingest)."""
        if self._job is None:
            self._job = prepare_job(self.ruleset, self.options, self.period(), self.defaults)
        return self._job

    def outcomes(self) -> Iterator[PatientOutcome]:
        """Evaluate every patient, in patient-id order, without emitting (explain)."""
        job = self.job()
        try:
            for patient_id, records in self._grouper.patients():
                yield assess(patient_id, records, job)
        finally:
            self._grouper.close()

    def close(self) -> None:
        """Release the grouper's temporary storage (run() does this itself)."""
        self._grouper.close()

    def run(self, observer: Callable[[PatientOutcome], None] | None = None) -> RunStats:
        """Evaluate and emit every patient, in patient-id order; returns the run statistics. ``observer``
        sees each outcome."""
        job = self.job()
        try:
            log.info("evaluating patients for measurement period %d", job.year)
            for _, records in self._grouper.patients():
                result = evaluate_patient(records, job)
                if observer is not None and result.outcome is not None:
                    observer(result.outcome)
                self.deliver(result)
            for report in self.stats.summary_reports(job):
                self.sink.write(report)
        finally:
            self._grouper.close()
        self.stats.finish(job)
        return self.stats

    def deliver(self, result: PatientResult) -> None:
        """Hand one patient's result to the sink and add its counts."""
        for entry in result.quarantined:
            self.sink.quarantine(entry)
        self.sink.expect(expected(result, self.job()))  # lazy: a file sink does not even look
        for resource in result.resources:
            self.sink.write(resource)
        self.stats.take_patient(result)
        if self.observer is not None:
            self.observer()


def run_in_process(
    pipeline: Pipeline,
    parts: list[InputPart],
    *,
    counted: Callable[[Items], Items] | None = None,
    bytes_done: Callable[[int], None] | None = None,
) -> RunStats:
    """Replay ``parts`` in this process (``--workers 1``)."""
    pipeline.ingest_parts(parts, counted=counted, bytes_done=bytes_done)
    return pipeline.run()
