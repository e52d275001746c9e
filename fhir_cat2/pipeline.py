"""The one way through: source -> contexts -> rules -> measures -> emitters -> sink.

``Pipeline.ingest`` takes input items from any source (files, a server, a recording) and groups slim
records by patient; ``Pipeline.run`` evaluates each patient and hands what it emits to the sink. Replay and
live sync both come through here, so they give the same answer on the same data by construction.
"""

from __future__ import annotations

import copy
import heapq
import logging
import multiprocessing
import os
import pickle
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from typing import IO, Any, Protocol

import orjson

from .codes import UnrecognisedCode, count_codes, unrecognised_codes
from .contexts import PatientContext
from .emit.claim import EmitDefaults, build_claim
from .emit.ids import TAG_CODE, TAG_SYSTEM
from .emit.measurereport import SummaryTally, build_individual_report, build_summary_report
from .errors import ConfigError, InputError
from .findings import MeasureResult, QualityCode
from .logs import safe_traceback
from .measures.claims import claims_codes
from .measures.engine import MeasureEvaluator
from .rules.engine import evaluate_code_rules
from .rules.facts import Readings, extract_readings
from .rules.loader import RuleSet
from .rules.schema import MeasureDef
from .run_warnings import period_warnings, population_warnings, unrecognised_warnings
from .sources.files import InputItem, InputPart, Rejected, read_part
from .sources.grouping import DEFAULT_BUDGET, PatientGrouper
from .sources.records import (
    ConditionRecord,
    EncounterRecord,
    EventRecord,
    ObservationRecord,
    PatientRecord,
    ResourceRecord,
    Src,
)
from .sources.slim import CODE_ELEMENT, SLIM_MODELS, to_record
from .terminology import KNOWN_SYSTEMS, normalise_system

log = logging.getLogger("fhir_cat2.pipeline")

EMIT_KINDS = ("claim", "measure-report")


@dataclass(frozen=True)
class RunOptions:
    program: str = "hedis"
    period_year: int | None = None
    emit: frozenset[str] = frozenset(EMIT_KINDS)
    now: str | None = None
    measures: tuple[str, ...] | None = None
    """Only these measure ids (None: every measure of the rules table)."""
    only_patient: str | None = None
    """Keep only this patient's records (explain)."""
    thorough: bool = False
    """Judge every sub-criterion for the explanation trail (explain) instead of stopping at the decision."""
    report: str = "individual"
    """MeasureReports to write: individual (one per patient in an initial population), summary (one per
    measure), or both."""
    period_defaulted_on: date | None = None
    """The day ``period_year`` was defaulted to the current year on (sync without --period): None when it
    was given, or follows the data (replay)."""


@dataclass(frozen=True)
class QuarantineEntry:
    src: Src
    reason: str
    ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.src.file,
            "position": self.src.position,
            "resource": self.ref,
            "reason": self.reason,
        }


class Sink(Protocol):
    def write(self, resource: dict[str, Any]) -> None: ...

    def quarantine(self, entry: QuarantineEntry) -> None: ...


@dataclass
class PatientOutcome:
    """Everything concluded about one patient: what ``explain`` shows and the emitters write."""

    ctx: PatientContext
    readings: Readings
    measure_results: dict[str, MeasureResult]
    codes: list[QualityCode]


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


def _reason_kind(reason: str) -> str:
    """A short, data-free category of a quarantine reason, for counting."""
    for marker, kind in (
        ("not valid JSON", "invalid-json"),
        ("input file unreadable", "unreadable-file"),
        ("malformed", "malformed-resource"),
        ("cannot be converted", "unconvertible-unit"),
        ("has no unit", "missing-unit"),
        ("plausible range", "implausible-value"),
        ("comparator", "value-with-comparator"),
        ("no effective", "undated-observation"),
        ("not a known code system", "unknown-code-system"),
        ("no Patient reference", "no-patient-reference"),
        ("FHIR R4B validation", "output-validation"),
        ("not a FHIR", "not-fhir"),
        ("no resourceType", "not-fhir"),
        ("text, not a quantity", "text-value"),
    ):
        if marker in reason:
            return kind
    return "other"


def selected_measures(ruleset: RuleSet, options: RunOptions) -> tuple[MeasureDef, ...]:
    """The measures a run evaluates; refuses unknown measures and programs (a configuration error)."""
    if options.program not in ("hedis", "mips-claims"):
        raise ConfigError(f"unknown program '{options.program}' (hedis or mips-claims)")
    measures = ruleset.table.measures
    if options.measures is not None:
        unknown = set(options.measures) - {m.id for m in measures}
        if unknown:
            raise ConfigError(f"unknown measure(s): {', '.join(sorted(unknown))}")
        measures = tuple(m for m in measures if m.id in options.measures)
    return measures


class Pipeline:
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
        self._grouper = PatientGrouper(DEFAULT_BUDGET if budget is None else budget)
        self._latest_encounter_year: int | None = None
        self._relevant = ruleset.relevant_codes()
        self._relevant_code_values: dict[str, dict[str, set[str]]] = {}
        for resource_type, codes in self._relevant.items():
            by_value: dict[str, set[str]] = {}
            for system, code in codes:
                by_value.setdefault(code, set()).add(system)
            self._relevant_code_values[resource_type] = by_value
        # How each resource type is taken in, decided once: read whole (None), screened by the codes of one
        # element (most Observations are vitals and labs no rule reads), or, when absent, counted and dropped.
        self._screens: dict[str, tuple[str, dict[str, set[str]]] | None] = {}
        for resource_type in SLIM_MODELS:
            element = CODE_ELEMENT.get(resource_type) if resource_type != "Condition" else None
            if element is None:
                self._screens[resource_type] = None
            elif self._relevant.get(resource_type):
                self._screens[resource_type] = (element, self._relevant_code_values[resource_type])
        maps = ruleset.concept_maps
        self._maps = maps if maps else None
        known = ruleset.known_codes()
        # Kept whole, whatever their codes: counted as unrecognised when none of their codes is known.
        self._known_whole = {t: known.get(t, frozenset()) for t in ("Encounter", "Condition")}
        self.measures = selected_measures(ruleset, options)
        self._summaries: dict[str, SummaryTally] = {}
        self.observer: Callable[[], None] | None = None
        """Called after each patient is evaluated (progress on a terminal)."""

    # ------------------------------------------------------------------------------------------ ingest

    def quarantine(self, src: Src, reason: str, ref: str | None = None) -> None:
        kind = _reason_kind(reason)
        self.stats.quarantined += 1
        self.stats.quarantine_reasons[kind] += 1
        # the reason itself can quote a value: it goes to quarantine.ndjson only, the log gets its kind
        # and no file name either (exports are often named after the patient)
        log.debug("quarantined %s: %s", ref or f"an input item ({src.position or 'whole file'})", kind)
        self.sink.quarantine(QuarantineEntry(src, reason, ref))

    def ingest(self, items: Iterable[InputItem | Rejected]) -> None:
        # The hot loop of replay: most items are dropped here, so that path does as little as it can.
        resources_read = self.stats.resources_read
        unrecognised = self.stats.unrecognised
        screens = self._screens
        for item in items:
            if isinstance(item, Rejected):
                if item.unreadable:
                    self._unreadable(item)
                self.quarantine(item.src, item.reason, item.ref)
                continue
            resource = item.resource
            resource_type: str = resource["resourceType"]
            resources_read[resource_type] += 1
            screen = screens.get(resource_type, _DROPPED)
            if screen is _DROPPED:
                continue  # no rule reads this type
            if screen is not None:
                concept = resource.get(screen[0])
                if not _has_wanted_code(concept, screen[1]):
                    count_codes(concept, unrecognised, resource_type)  # no second pass for the report
                    continue  # no code any rule reads, under any system
            self._ingest_one(item, resource_type, screen)

    def _unreadable(self, item: Rejected) -> None:
        """A file the system would not let us read is no bad data: the operator has to act, so it is named
        (its path only; the reason holds no data) and counted."""
        self.stats.files_unreadable += 1
        where = f" ({item.src.position})" if item.src.position else ""
        log.warning("cannot read input file %s%s: %s", item.src.file, where, item.reason)

    def ingest_parts(
        self,
        parts: list[InputPart],
        *,
        counted: Callable[[Iterable[InputItem | Rejected]], Iterable[InputItem | Rejected]] | None = None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> None:
        """Ingest input parts (files, or line ranges of large NDJSON files) here, in order. ``counted``
        wraps a part's items (a progress count); ``bytes_done`` is told each part's size once it is read."""
        for number, part in enumerate(parts, start=1):
            before = sum(self.stats.resources_read.values())
            items = read_part(part)
            self.ingest(counted(items) if counted is not None else items)
            # by number, not name: exported files are often named after the patient (Synthea's are)
            log.debug(
                "input part %d of %d: %d resources",
                number,
                len(parts),
                sum(self.stats.resources_read.values()) - before,
            )
            if bytes_done is not None:
                bytes_done(part.size)

    def replay(
        self,
        parts: list[InputPart],
        *,
        workers: int = 1,
        counted: Callable[[Iterable[InputItem | Rejected]], Iterable[InputItem | Rejected]] | None = None,
        resources_done: Callable[[int], None] | None = None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> RunStats:
        """Ingest the parts, then evaluate and emit every patient; returns the run statistics.

        With ``workers`` > 1, fork available and enough input, both steps run in forked worker processes
        (see ``_replay_parallel``); what reaches the sink, and the statistics, are byte for byte those of
        one process. ``counted`` wraps a part's items when read here; ``resources_done`` is told how many
        resources a worker's parts held; ``bytes_done`` how many input bytes are read (progress).
        """
        total = sum(part.size for part in parts)
        if workers > 1 and total >= PARALLEL_MIN_INGEST_BYTES and _can_fork():
            return self._replay_parallel(parts, total, workers, resources_done, bytes_done)
        self.ingest_parts(parts, counted=counted, bytes_done=bytes_done)
        return self.run()

    def _ingest_one(
        self, item: InputItem, resource_type: str, screen: tuple[str, dict[str, set[str]]] | None
    ) -> None:
        resource = item.resource
        if screen is not None:
            concept = resource.get(screen[0])
            verdict = self._relevance(resource_type, concept)
            if verdict is not True:
                if verdict:
                    ref = f"{resource_type}/{item.resource_id}"
                    self.quarantine(item.src, f"{ref}: {verdict}", ref)
                else:  # a code value some rule reads, but under another (known) system
                    count_codes(concept, self.stats.unrecognised, resource_type)
                return
        elif resource_type == "Claim" and _is_ours(resource):
            return
        src = item.src
        try:
            record = to_record(resource, src, item.resolve, item.resource_id)
        except InputError as exc:
            self.quarantine(src, str(exc), f"{resource_type}/{item.resource_id}")
            return
        patient_id = record.patient_id
        if patient_id is None:
            ref = f"{resource_type}/{item.resource_id}"
            self.quarantine(
                src, f"{ref}: no Patient reference in its subject/patient; cannot attach it to a patient", ref
            )
            return
        if self._maps is not None:
            self._map_codes(record)
        if isinstance(record, EncounterRecord):
            if record.when is not None:
                year = record.when.start_day.year
                if self._latest_encounter_year is None or year > self._latest_encounter_year:
                    self._latest_encounter_year = year
                self.stats.encounter_spans[year, record.when.end_day.year] += 1
            if record.type_codes.isdisjoint(self._known_whole["Encounter"]):
                self.stats.unrecognised.update((resource_type, s, c) for s, c in record.type_codes)
        elif isinstance(record, ConditionRecord):
            if record.codes.isdisjoint(self._known_whole["Condition"]):
                self.stats.unrecognised.update((resource_type, s, c) for s, c in record.codes)
        elif isinstance(record, PatientRecord) and record.birth_date is not None:
            self.stats.birth_years[record.birth_date.year] += 1
        if self.options.only_patient is not None and patient_id != self.options.only_patient:
            return
        self.stats.resources_used[resource_type] += 1
        self._grouper.add(patient_id, record)

    def _map_codes(self, record: ResourceRecord) -> None:
        """Add the codes the site's ConceptMaps map the record's codes to, marked as mapped."""
        assert self._maps is not None
        if isinstance(record, EncounterRecord):
            codes, mapped = self._maps.apply(record.type_codes)
            if mapped:
                record.type_codes, record.mapped = codes, mapped
        elif isinstance(record, (ObservationRecord, ConditionRecord, EventRecord)):
            codes, mapped = self._maps.apply(record.codes)
            if mapped:
                record.codes, record.mapped = codes, mapped
        else:
            return
        for mapping in record.mapped:
            self.stats.mapped[
                record.resource_type,
                mapping.map,
                f"{mapping.source[0]}|{mapping.source[1]}",
                f"{mapping.target[0]}|{mapping.target[1]}",
            ] += 1

    def _relevance(self, resource_type: str, concept: Any) -> bool | str | None:
        """True: a rule reads it. None: nobody reads it. A string: why it is unusable (quarantine)."""
        codings: list[Any]
        if isinstance(concept, list):  # CarePlan/Consent category is a list of concepts
            codings = [c for cc in concept if isinstance(cc, dict) for c in _list_or_none(cc.get("coding"))]
        elif isinstance(concept, dict):
            codings = _list_or_none(concept.get("coding"))
        else:
            return None
        wanted = self._relevant[resource_type]
        by_value = self._relevant_code_values[resource_type]
        suspicious: str | None = None
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            code = coding.get("code")
            if not isinstance(code, str) or code not in by_value:
                continue  # a code no rule reads, under any system
            system = normalise_system(coding.get("system") if isinstance(coding.get("system"), str) else None)
            if (system, code) in wanted:
                return True
            expected = by_value.get(code)
            if expected and system not in KNOWN_SYSTEMS and suspicious is None:
                shown = system or "(none)"
                suspicious = (
                    f"code {code} has system '{shown}', which is not a known code system;"
                    f" expected {' or '.join(sorted(expected))}"
                )
        return suspicious

    # ------------------------------------------------------------------------------------------ run

    def period(self) -> tuple[date, date]:
        year = self.options.period_year or self._latest_encounter_year
        if year is None:
            year = date.today().year  # noqa: DTZ011 - only when the input has no encounter at all
            log.warning("no encounters in the input; measurement period defaults to %s", year)
        return date(year, 1, 1), date(year, 12, 31)

    def outcomes(self) -> Iterator[PatientOutcome]:
        """Evaluate every patient, in patient-id order."""
        period = self.period()
        evaluator = MeasureEvaluator(self.ruleset, *period, thorough=self.options.thorough)
        for patient_id, records in self._grouper.patients():
            outcome = self._outcome(patient_id, records, evaluator, period)
            if outcome is not None:
                yield outcome

    def _outcome(
        self,
        patient_id: str,
        records: list[ResourceRecord],
        evaluator: MeasureEvaluator,
        period: tuple[date, date],
    ) -> PatientOutcome | None:
        ctx = PatientContext.build(patient_id, records)
        try:
            return evaluate_patient(ctx, self.ruleset, evaluator, self.measures, self.options.program, period)
        except Exception as exc:  # one patient must never stop the run
            # the traceback's frames only: an exception's message can hold a value from the input
            log.error("evaluating Patient/%s failed: %s", patient_id, safe_traceback(exc))
            where = ctx.patient.src if ctx.patient else Src(f"Patient/{patient_id}", "")
            self.quarantine(
                where,
                f"Patient/{patient_id}: could not be evaluated ({type(exc).__name__}); report this as a bug",
                f"Patient/{patient_id}",
            )
            return None

    def close(self) -> None:
        """Release the grouper's temporary storage (run() does this itself)."""
        self._grouper.close()

    def run(self, observer: Callable[[PatientOutcome], None] | None = None) -> RunStats:
        """Evaluate and emit every patient, in patient-id order; returns the run statistics. ``observer``
        sees each outcome."""
        period = self.period()
        report_date = self.options.now or period[1].isoformat()
        try:
            log.info("evaluating patients for measurement period %d", period[0].year)
            evaluator = MeasureEvaluator(self.ruleset, *period, thorough=self.options.thorough)
            for patient_id, records in self._grouper.patients():
                self._evaluate_and_emit(patient_id, records, evaluator, period, report_date, observer)
            self._emit_summaries(period, report_date)
        finally:
            self._grouper.close()
        self.finish(period)
        return self.stats

    def finish(self, period: tuple[date, date]) -> None:
        """Sort out the unrecognised codes and warn about what the data says of the run (logged, and kept in
        the statistics for the run report)."""
        stats = self.stats
        stats.unrecognised_codes = unrecognised_codes(
            stats.unrecognised, self.ruleset.known_codes(), self.ruleset.concept_maps
        )
        warnings = period_warnings(period, stats.encounter_spans, self.options.period_defaulted_on)
        if self.options.only_patient is None:
            warnings += population_warnings(
                self.measures, self.ruleset.table.library, stats.populations, stats.birth_years, period
            )
        warnings += unrecognised_warnings(stats.unrecognised_codes)
        for warning in warnings:
            log.warning("%s", warning)
        stats.warnings = warnings

    def _evaluate_and_emit(
        self,
        patient_id: str,
        records: list[ResourceRecord],
        evaluator: MeasureEvaluator,
        period: tuple[date, date],
        report_date: str,
        observer: Callable[[PatientOutcome], None] | None = None,
    ) -> None:
        outcome = self._outcome(patient_id, records, evaluator, period)
        if outcome is not None:
            if observer is not None:
                observer(outcome)
            self.stats.patients += 1
            log.debug(
                "Patient/%s: %d encounters, %d codes",
                outcome.ctx.patient_id,
                len(outcome.ctx.encounter_by_ref),
                len(outcome.codes),
            )
            for problem in outcome.readings.problems:
                self.quarantine(problem.src, f"{problem.ref}: {problem.reason}", problem.ref)
            self._emit(outcome, period, report_date)
        if self.observer is not None:
            self.observer()

    def _replay_parallel(
        self,
        parts: list[InputPart],
        total: int,
        workers: int,
        resources_done: Callable[[int], None] | None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> RunStats:
        """Replay in forked workers, map then reduce, the parent only gathering.

        Map: tasks of a few input parts each are read, parsed and screened; each task's records are split
        into buckets by a hash of the patient id and pickled into a file, bucket after bucket. The parent
        takes back, in input order, the counts and quarantine entries.
        Reduce (once all input is read, so the default period is known): each bucket is grouped by patient
        (spilling past the budget), evaluated and emitted in patient-id order into a file of per-patient
        blocks. The parent merges the buckets' blocks by patient id into the sink: the order of one process.
        Records never pass through the parent. A task whose worker failed is done here: nothing is lost.
        """
        task_bytes = max(1, min(PARALLEL_TASK_BYTES, total // (workers * PARALLEL_SLICES_PER_WORKER)))
        tasks: list[list[InputPart]] = [[]]
        held = 0
        for part in parts:
            if tasks[-1] and held + part.size > task_bytes:
                tasks.append([])
                held = 0
            tasks[-1].append(part)
            held += part.size
        # enough buckets to balance the load, and more for larger input: a bucket's records stay about the
        # same in number whatever the input size (flat memory, no spill but for a giant patient)
        buckets = max(workers * PARALLEL_SLICES_PER_WORKER, -(-total // PARALLEL_BUCKET_BYTES))
        log.info(
            "reading %d input parts in %d tasks on %d workers, evaluating in %d buckets",
            len(parts),
            len(tasks),
            workers,
            buckets,
        )
        global _FORKED, _FORKED_EVALUATOR
        _FORKED = self
        try:
            with tempfile.TemporaryDirectory(prefix="fhir-cat2-") as folder:
                os.chmod(folder, 0o700)
                maps = self._map(tasks, workers, buckets, folder, resources_done, bytes_done)
                period = self.period()
                report_date = self.options.now or period[1].isoformat()
                log.info("evaluating patients for measurement period %d", period[0].year)
                pieces = [
                    [(result.path, *result.spans[bucket]) for result in maps if result.spans[bucket][1]]
                    for bucket in range(buckets)
                ]
                outputs = self._reduce(pieces, workers, folder, period, report_date)
                self._merge_outputs(outputs)
                self._emit_summaries(period, report_date)
        finally:
            _FORKED = _FORKED_EVALUATOR = None
            self._grouper.close()
        self.finish(period)
        return self.stats

    def _map(
        self,
        tasks: list[list[InputPart]],
        workers: int,
        buckets: int,
        folder: str,
        resources_done: Callable[[int], None] | None,
        bytes_done: Callable[[int], None] | None = None,
    ) -> list[_MapResult]:
        """Run the map tasks; take back their counts and quarantine entries in input order."""
        results: list[_MapResult] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            paths = [os.path.join(folder, f"map-{index:05d}") for index in range(len(tasks))]
            futures = [
                pool.submit(_map_task, task, path, buckets) for task, path in zip(tasks, paths, strict=True)
            ]
            for index, (future, task, path) in enumerate(zip(futures, tasks, paths, strict=True)):
                try:
                    result = future.result()
                except Exception as exc:  # a worker that died: read its parts here, nothing is lost
                    log.warning(
                        "worker for input task %d failed (%s); reading it here", index, type(exc).__name__
                    )
                    result = _map_parts(self, task, path, buckets)
                read = self._take_map(result)
                results.append(result)
                log.debug("input task %d of %d: %d resources", index + 1, len(tasks), read)
                if resources_done is not None:
                    resources_done(read)
                if bytes_done is not None:
                    bytes_done(sum(part.size for part in task))
        return results

    def _reduce(
        self,
        pieces: list[list[tuple[str, int, int]]],
        workers: int,
        folder: str,
        period: tuple[date, date],
        report_date: str,
    ) -> list[str]:
        """Run the reduce tasks, one per bucket; take back their counts. Returns their output files."""
        outputs = [os.path.join(folder, f"out-{bucket:05d}") for bucket in range(len(pieces))]
        global _FORKED_EVALUATOR
        # prepared once here, inherited by every worker, instead of once per bucket
        evaluator = _FORKED_EVALUATOR = MeasureEvaluator(
            self.ruleset, *period, thorough=self.options.thorough
        )
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [
                pool.submit(_reduce_task, mine, path, period, report_date)
                for mine, path in zip(pieces, outputs, strict=True)
            ]
            for bucket, (future, mine, path) in enumerate(zip(futures, pieces, outputs, strict=True)):
                try:
                    result = future.result()
                except Exception as exc:  # a worker that died: evaluate its bucket here
                    log.warning(
                        "worker for bucket %d failed (%s); evaluating it here", bucket, type(exc).__name__
                    )
                    result = _reduce_pieces(self, evaluator, mine, path, period, report_date)
                self._take_counts(result)
        return outputs

    def _take_map(self, result: _MapResult) -> int:
        """Add a map task's counts and quarantine entries to ours; returns the resources it read."""
        delta = result.stats
        self.stats.take_ingest(delta)
        for entry in result.quarantined:
            self.sink.quarantine(entry)
        year = result.latest_encounter_year
        if year is not None and (self._latest_encounter_year is None or year > self._latest_encounter_year):
            self._latest_encounter_year = year
        return sum(delta.resources_read.values())

    def _take_counts(self, result: _ReduceResult) -> None:
        """Add a reduce task's counts, summary tallies and defaults used to ours."""
        delta = result.stats
        stats = self.stats
        stats.patients += delta.patients
        stats.codes.update(delta.codes)
        stats.written.update(delta.written)
        stats.quarantined += delta.quarantined
        stats.quarantine_reasons.update(delta.quarantine_reasons)
        for measure_id, population_counts in delta.populations.items():
            stats.populations.setdefault(measure_id, Counter()).update(population_counts)
        by_id = {measure.id: measure for measure in self.measures}
        for measure_id, (group_counts, patients) in result.summaries.items():
            tally = self._summaries.setdefault(measure_id, SummaryTally(by_id[measure_id]))
            tally.merge(group_counts, patients)
        self.defaults.used.update(result.defaults_used)
        if self.observer is not None:
            for _ in range(delta.patients):
                self.observer()

    def _merge_outputs(self, paths: list[str]) -> None:
        """Copy the buckets' per-patient blocks into the sink in patient-id order (each bucket's blocks are
        in that order already, and a patient is in one bucket only)."""
        raw_write = getattr(self.sink, "write_raw", None)
        raw_quarantine = getattr(self.sink, "quarantine_raw", None)
        handles = [open(path, "rb") for path in paths]  # noqa: SIM115 - closed below
        try:
            for _, lines in heapq.merge(*(_blocks(handle) for handle in handles), key=_block_key):
                for line in lines:
                    kind, payload = line[:1], line[1:-1]
                    if kind == b"Q":
                        if raw_quarantine is not None:
                            raw_quarantine(payload)
                            continue
                        entry = orjson.loads(payload)
                        self.sink.quarantine(
                            QuarantineEntry(
                                Src(entry["file"], entry["position"]), entry["reason"], entry["resource"]
                            )
                        )
                    else:
                        resource_type, _, body = payload.partition(b"\t")
                        if raw_write is not None:
                            raw_write(resource_type.decode(), body)
                        else:
                            self.sink.write(orjson.loads(body))
        finally:
            for handle in handles:
                handle.close()

    def _emit_summaries(self, period: tuple[date, date], report_date: str) -> None:
        if "measure-report" not in self.options.emit or self.options.report not in ("summary", "both"):
            return
        for measure in self.measures:
            if measure.url is None:
                continue
            tally = self._summaries.get(measure.id) or SummaryTally(measure)
            self.sink.write(
                build_summary_report(tally, period=period, report_date=report_date, defaults=self.defaults)
            )
            self.stats.written["MeasureReport"] += 1

    def _emit(self, outcome: PatientOutcome, period: tuple[date, date], report_date: str) -> None:
        ctx = outcome.ctx
        for code in outcome.codes:
            self.stats.codes[code.display_code] += 1
        if "claim" in self.options.emit and outcome.codes:
            by_encounter: dict[str, list[QualityCode]] = {}
            for code in outcome.codes:
                by_encounter.setdefault(code.encounter_ref, []).append(code)
            for encounter_ref, codes in by_encounter.items():
                encounter = ctx.encounter_by_ref[encounter_ref]
                try:
                    claim = build_claim(
                        ctx,
                        encounter,
                        codes,
                        program=self.options.program,
                        year=period[0].year,
                        defaults=self.defaults,
                    )
                except InputError as exc:
                    self.quarantine(encounter.src, str(exc), encounter.ref)
                    continue
                self.sink.write(claim)
                self.stats.written["Claim"] += 1
        for measure in self.measures:
            result = outcome.measure_results.get(measure.id)
            if result is None or not result.in_initial_population:
                continue
            counter = self.stats.populations.setdefault(measure.id, Counter())
            for group in result.groups[:1]:
                for population in group.populations:
                    counter[population.code] += population.tally
            self._summaries.setdefault(measure.id, SummaryTally(measure)).add(result)
            if (
                "measure-report" not in self.options.emit
                or measure.url is None
                or self.options.report not in ("individual", "both")
            ):
                continue
            try:
                report = build_individual_report(
                    measure, result, period=period, report_date=report_date, defaults=self.defaults
                )
            except InputError as exc:
                self.quarantine(Src(f"Patient/{ctx.patient_id}", ""), str(exc), f"Patient/{ctx.patient_id}")
                continue
            self.sink.write(report)
            self.stats.written["MeasureReport"] += 1


PARALLEL_MIN_INGEST_BYTES = 8 * 1024 * 1024
"""Below this much input, one process is quicker than forking workers."""
PARALLEL_TASK_BYTES = 8 * 1024 * 1024
"""At most this much input per map task: a worker holds one task's records at a time (flat memory)."""
PARALLEL_BUCKET_BYTES = 16 * 1024 * 1024
"""About this much input per reduce bucket."""
PARALLEL_SLICES_PER_WORKER = 8
"""Map tasks (at least) and reduce buckets per worker: enough to balance the load, few enough to keep
per-task overhead low."""
_FORKED: Pipeline | None = None
"""The pipeline a forked worker inherits (rules, options, screens: nothing is pickled to the workers)."""
_FORKED_EVALUATOR: MeasureEvaluator | None = None
"""The measure evaluator a reduce worker inherits, its criteria prepared once for the period."""


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def bucket_of(patient_id: str, buckets: int) -> int:
    """The reduce bucket of a patient: the same in every process (unlike ``hash``, salted per run)."""
    return zlib.crc32(patient_id.encode("utf-8", "surrogatepass")) % buckets


def _worker_copy(pipeline: Pipeline) -> Pipeline:
    """A copy of the pipeline for one task: shared rules and screens, its own counts and outputs."""
    worker = copy.copy(pipeline)
    worker.stats = RunStats()
    worker._summaries = {}
    worker.defaults = replace(pipeline.defaults, used=Counter())
    worker.observer = None
    worker._latest_encounter_year = None
    return worker


@dataclass
class _MapResult:
    path: str
    spans: list[tuple[int, int]]
    """(offset, length) in ``path`` of each bucket's pickled records (length 0: none)."""
    stats: RunStats
    quarantined: list[QuarantineEntry]
    latest_encounter_year: int | None


class _Buckets:
    """A map task's stand-in for the grouper and the sink: records by bucket, quarantine entries kept."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.records: list[list[tuple[str, ResourceRecord]]] = [[] for _ in range(buckets)]
        self.quarantined: list[QuarantineEntry] = []

    def add(self, patient_id: str, record: ResourceRecord) -> None:
        self.records[bucket_of(patient_id, self.buckets)].append((patient_id, record))

    def write(self, resource: dict[str, Any]) -> None:  # pragma: no cover - ingest writes nothing
        raise AssertionError("ingest does not write resources")

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantined.append(entry)


def _map_task(parts: list[InputPart], path: str, buckets: int) -> _MapResult:
    """In a forked worker: ``_map_parts`` with the inherited pipeline."""
    assert _FORKED is not None
    return _map_parts(_FORKED, parts, path, buckets)


def _map_parts(pipeline: Pipeline, parts: list[InputPart], path: str, buckets: int) -> _MapResult:
    """Read, parse and screen ``parts``; pickle their records into ``path``, bucket after bucket."""
    worker = _worker_copy(pipeline)
    collected = _Buckets(buckets)
    worker.sink = collected
    worker._grouper = collected  # type: ignore[assignment]
    for part in parts:
        worker.ingest(read_part(part))
    spans: list[tuple[int, int]] = []
    with open(path, "wb") as handle:
        os.chmod(path, 0o600)
        for rows in collected.records:
            start = handle.tell()
            if rows:
                pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
            spans.append((start, handle.tell() - start))
    return _MapResult(path, spans, worker.stats, collected.quarantined, worker._latest_encounter_year)


@dataclass
class _ReduceResult:
    stats: RunStats
    summaries: dict[str, tuple[list[dict[str, int]], int]]
    """Per measure, the summary tally's counts and patients: not the tally itself, whose measure definition
    would come back as a copy per bucket."""
    defaults_used: Counter[str]


class _BlockSink:
    """A reduce task's output: per patient, a block of tagged lines (resources, quarantine entries) in
    emission order, headed by the patient id and the block's line count."""

    def __init__(self, path: str) -> None:
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        os.chmod(path, 0o600)
        self._lines: list[bytes] = []

    def write(self, resource: dict[str, Any]) -> None:
        self._lines.append(b"R" + resource["resourceType"].encode() + b"\t" + orjson.dumps(resource) + b"\n")

    def quarantine(self, entry: QuarantineEntry) -> None:
        self._lines.append(b"Q" + orjson.dumps(entry.to_json()) + b"\n")

    def end_patient(self, patient_id: str) -> None:
        if self._lines:
            self._handle.write(b"P" + orjson.dumps([patient_id, len(self._lines)]) + b"\n")
            self._handle.writelines(self._lines)
            self._lines = []

    def close(self) -> None:
        self._handle.close()


def _blocks(handle: IO[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """The (patient id, lines) blocks of a ``_BlockSink`` file, in order."""
    for header in handle:
        patient_id, count = orjson.loads(header[1:])
        yield patient_id, [handle.readline() for _ in range(count)]


def _block_key(block: tuple[str, list[bytes]]) -> str:
    return block[0]


def _reduce_task(
    pieces: list[tuple[str, int, int]], path: str, period: tuple[date, date], report_date: str
) -> _ReduceResult:
    """In a forked worker: ``_reduce_pieces`` with the inherited pipeline."""
    assert _FORKED is not None and _FORKED_EVALUATOR is not None
    return _reduce_pieces(_FORKED, _FORKED_EVALUATOR, pieces, path, period, report_date)


def _reduce_pieces(
    pipeline: Pipeline,
    evaluator: MeasureEvaluator,
    pieces: list[tuple[str, int, int]],
    path: str,
    period: tuple[date, date],
    report_date: str,
) -> _ReduceResult:
    """Group one bucket's records (its pieces of the map files, in input order) by patient, then evaluate
    and emit each patient, in patient-id order, into ``path``."""
    worker = _worker_copy(pipeline)
    sink = _BlockSink(path)
    worker.sink = sink
    grouper = PatientGrouper(pipeline._grouper.budget)
    try:
        for map_path, offset, length in pieces:
            with open(map_path, "rb") as handle:
                handle.seek(offset)
                rows: list[tuple[str, ResourceRecord]] = pickle.loads(handle.read(length))
            for patient_id, record in rows:
                grouper.add(patient_id, record)
        for patient_id, records in grouper.patients():
            worker._evaluate_and_emit(patient_id, records, evaluator, period, report_date)
            sink.end_patient(patient_id)
    finally:
        grouper.close()
        sink.close()
    summaries = {measure: (tally.counts, tally.patients) for measure, tally in worker._summaries.items()}
    return _ReduceResult(worker.stats, summaries, worker.defaults.used)


def evaluate_patient(
    ctx: PatientContext,
    ruleset: RuleSet,
    evaluator: MeasureEvaluator,
    measures: Iterable[MeasureDef],
    program: str,
    period: tuple[date, date],
) -> PatientOutcome:
    """Pure: one patient in, readings, measure results and quality codes out."""
    readings = extract_readings(ctx, ruleset)
    measures = tuple(measures)
    results = {m.id: evaluator.evaluate(m, ctx, readings) for m in measures}
    codes = evaluate_code_rules(
        ctx, readings, ruleset, program=program, period=period, measure_results=results, evaluator=evaluator
    )
    if program == "mips-claims":
        codes += claims_codes(ctx, readings, ruleset, evaluator, measures, results, period)
        codes.sort(key=lambda c: _encounter_position(ctx, c.encounter_ref))
    return PatientOutcome(ctx, readings, results, codes)


def _encounter_position(ctx: PatientContext, ref: str) -> int:
    for index, encounter in enumerate(ctx.encounters):
        if encounter.ref == ref:
            return index
    return len(ctx.encounters)


_DROPPED: tuple[str, dict[str, set[str]]] = ("", {})  # Pipeline._screens of a type no rule reads


def _list_or_none(codings: Any) -> list[Any]:
    return codings if isinstance(codings, list) else []  # not a list of codings: none a rule could read


def _has_wanted_code(concept: Any, by_value: dict[str, set[str]]) -> bool:
    """Whether the code element may hold a code some rule reads (``Pipeline._relevance`` then decides): a
    code no rule reads under any system, the common case, needs no closer look."""
    if isinstance(concept, dict):
        codings = concept.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if isinstance(coding, dict):
                    code = coding.get("code")
                    if isinstance(code, str) and code in by_value:
                        return True
        return False
    return isinstance(concept, list)  # CarePlan/Consent category, a list of concepts: _relevance reads it


def _is_ours(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == TAG_SYSTEM and t.get("code") == TAG_CODE for t in tags
    )
