"""The one way through: source -> contexts -> rules -> measures -> emitters -> sink.

``Pipeline.ingest`` takes input items from any source (files, a server, a recording) and groups slim
records by patient; ``Pipeline.run`` evaluates each patient and hands what it emits to the sink. Replay and
live sync both come through here, so they give the same answer on the same data by construction.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import orjson

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
from .sources.files import InputItem, InputPart, Rejected, read_part
from .sources.grouping import DEFAULT_BUDGET, PatientGrouper
from .sources.records import EncounterRecord, ResourceRecord, Src
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
    started: float = field(default_factory=time.monotonic)


def _reason_kind(reason: str) -> str:
    """A short, data-free category of a quarantine reason, for counting."""
    for marker, kind in (
        ("not valid JSON", "invalid-json"),
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
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self.ruleset = ruleset
        self.options = options
        self.sink = sink
        self.defaults = defaults or EmitDefaults()
        self.stats = RunStats()
        self._grouper = PatientGrouper(budget)
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
        screens = self._screens
        for item in items:
            if isinstance(item, Rejected):
                self.quarantine(item.src, item.reason, item.ref)
                continue
            resource = item.resource
            resource_type: str = resource["resourceType"]
            resources_read[resource_type] += 1
            screen = screens.get(resource_type, _DROPPED)
            if screen is _DROPPED:
                continue  # no rule reads this type
            if screen is not None and not _has_wanted_code(resource.get(screen[0]), screen[1]):
                continue  # no code any rule reads, under any system
            self._ingest_one(item, resource_type, screen)

    def ingest_parts(
        self,
        parts: list[InputPart],
        *,
        workers: int = 1,
        counted: Callable[[Iterable[InputItem | Rejected]], Iterable[InputItem | Rejected]] | None = None,
        resources_done: Callable[[int], None] | None = None,
    ) -> None:
        """Ingest input parts (files, or line ranges of large NDJSON files) in order.

        With ``workers`` > 1 (fork available, enough input), the parts are read, parsed and screened in
        forked worker processes; their records, quarantine entries and counts are taken back part by part in
        input order, so what the grouper holds and what quarantine.ndjson says are those of one process.
        ``counted`` wraps a part's items when read here (a progress count); ``resources_done`` is told how
        many resources a worker's parts held.
        """
        total = sum(part.size for part in parts)
        if workers > 1 and len(parts) > 1 and total >= PARALLEL_MIN_INGEST_BYTES and _can_fork():
            self._ingest_parallel(parts, workers, resources_done)
            return
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

    def _ingest_parallel(
        self, parts: list[InputPart], workers: int, resources_done: Callable[[int], None] | None
    ) -> None:
        # tasks of a few parts each, never more than PART_BYTES-ish of input, so a worker's records stay few
        budget = max(
            1, min(PARALLEL_TASK_BYTES, sum(p.size for p in parts) // (workers * PARALLEL_SLICES_PER_WORKER))
        )
        tasks: list[list[InputPart]] = [[]]
        held = 0
        for part in parts:
            if tasks[-1] and held + part.size > budget:
                tasks.append([])
                held = 0
            tasks[-1].append(part)
            held += part.size
        log.info("reading %d input parts in %d tasks on %d workers", len(parts), len(tasks), workers)
        global _FORKED
        _FORKED = self
        try:
            with tempfile.TemporaryDirectory(prefix="fhir-cat2-") as folder:
                os.chmod(folder, 0o700)
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    futures = [
                        pool.submit(_ingest_task, task, os.path.join(folder, f"in-{index:05d}"))
                        for index, task in enumerate(tasks)
                    ]
                    for index, (future, task) in enumerate(zip(futures, tasks, strict=True)):
                        try:
                            path = future.result()
                        except Exception as exc:  # a worker that died: read its parts here, nothing is lost
                            log.warning(
                                "worker for input task %d failed (%s); reading it here",
                                index,
                                type(exc).__name__,
                            )
                            before = sum(self.stats.resources_read.values())
                            for part in task:
                                self.ingest(read_part(part))
                            if resources_done is not None:
                                resources_done(sum(self.stats.resources_read.values()) - before)
                            continue
                        read = self._take_ingested(path)
                        log.debug("input task %d of %d: %d resources", index + 1, len(tasks), read)
                        if resources_done is not None:
                            resources_done(read)
        finally:
            _FORKED = None

    def _take_ingested(self, path: str) -> int:
        """Add a worker's ingest (records, quarantine entries, counts) to ours; returns resources read."""
        with open(path, "rb") as handle:
            result: _IngestResult = pickle.load(handle)
        os.unlink(path)
        stats = self.stats
        delta = result.stats
        stats.resources_read.update(delta.resources_read)
        stats.resources_used.update(delta.resources_used)
        stats.quarantined += delta.quarantined
        stats.quarantine_reasons.update(delta.quarantine_reasons)
        for entry in result.quarantined:
            self.sink.quarantine(entry)
        year = result.latest_encounter_year
        if year is not None and (self._latest_encounter_year is None or year > self._latest_encounter_year):
            self._latest_encounter_year = year
        add = self._grouper.add
        for patient_id, record in result.records:
            add(patient_id, record)
        return sum(delta.resources_read.values())

    def _ingest_one(
        self, item: InputItem, resource_type: str, screen: tuple[str, dict[str, set[str]]] | None
    ) -> None:
        resource = item.resource
        if screen is not None:
            verdict = self._relevance(resource_type, resource.get(screen[0]))
            if verdict is not True:
                if verdict:
                    ref = f"{resource_type}/{item.resource_id}"
                    self.quarantine(item.src, f"{ref}: {verdict}", ref)
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
        if isinstance(record, EncounterRecord) and record.when is not None:
            year = record.when.start_day.year
            if self._latest_encounter_year is None or year > self._latest_encounter_year:
                self._latest_encounter_year = year
        if self.options.only_patient is not None and patient_id != self.options.only_patient:
            return
        self.stats.resources_used[resource_type] += 1
        self._grouper.add(patient_id, record)

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

    def run(self, observer: Callable[[PatientOutcome], None] | None = None, *, workers: int = 1) -> RunStats:
        """Evaluate and emit every patient; returns the run statistics. ``observer`` sees each outcome
        (in this process: with an observer, patients are evaluated here, whatever ``workers`` says).

        With ``workers`` > 1 (and fork available), patients are evaluated in forked worker processes,
        by contiguous slices of the sorted patient ids; the slices' output is concatenated in order, so
        the files are byte for byte those of a single process.
        """
        period = self.period()
        report_date = self.options.now or period[1].isoformat()
        try:
            log.info("evaluating patients for measurement period %d", period[0].year)
            patient_ids = self._grouper.patient_ids()
            if observer is None and workers > 1 and len(patient_ids) >= PARALLEL_MIN_PATIENTS and _can_fork():
                self._run_parallel(patient_ids, workers, period, report_date)
            else:
                evaluator = MeasureEvaluator(self.ruleset, *period, thorough=self.options.thorough)
                for patient_id, records in self._grouper.patients_of(patient_ids):
                    self._evaluate_and_emit(patient_id, records, evaluator, period, report_date, observer)
            self._emit_summaries(period, report_date)
        finally:
            self._grouper.close()
        return self.stats

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

    def _run_parallel(
        self, patient_ids: list[str], workers: int, period: tuple[date, date], report_date: str
    ) -> None:
        size = max(PARALLEL_MIN_SLICE, -(-len(patient_ids) // (workers * PARALLEL_SLICES_PER_WORKER)))
        slices = [patient_ids[i : i + size] for i in range(0, len(patient_ids), size)]
        global _FORKED
        _FORKED = self
        with tempfile.TemporaryDirectory(prefix="fhir-cat2-") as folder:
            os.chmod(folder, 0o700)
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [
                    pool.submit(
                        _evaluate_slice, index, ids, os.path.join(folder, f"{index:05d}"), period, report_date
                    )
                    for index, ids in enumerate(slices)
                ]
                for index, (future, ids) in enumerate(zip(futures, slices, strict=True)):
                    try:
                        result = future.result()
                    except Exception as exc:  # a worker that died: do its slice here, nothing is lost
                        log.warning(
                            "worker for slice %d failed (%s); evaluating it here", index, type(exc).__name__
                        )
                        evaluator = MeasureEvaluator(self.ruleset, *period, thorough=self.options.thorough)
                        for patient_id, records in self._grouper.patients_of(ids):
                            self._evaluate_and_emit(patient_id, records, evaluator, period, report_date)
                        continue
                    self._take_slice(result, len(ids))
        _FORKED = None

    def _take_slice(self, result: _SliceResult, patients: int) -> None:
        """Copy a worker's output into the sink, in order, and add its counts to ours."""
        raw_write = getattr(self.sink, "write_raw", None)
        raw_quarantine = getattr(self.sink, "quarantine_raw", None)
        with open(result.path, "rb") as handle:
            for line in handle:
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
        delta = result.stats
        stats = self.stats
        stats.patients += delta.patients
        stats.codes.update(delta.codes)
        stats.written.update(delta.written)
        stats.quarantined += delta.quarantined
        stats.quarantine_reasons.update(delta.quarantine_reasons)
        for measure_id, counts in delta.populations.items():
            stats.populations.setdefault(measure_id, Counter()).update(counts)
        for measure_id, tally in result.summaries.items():
            mine = self._summaries.get(measure_id)
            if mine is None:
                self._summaries[measure_id] = tally
            else:
                mine.merge(tally)
        self.defaults.used.update(result.defaults_used)
        if self.observer is not None:
            for _ in range(patients):
                self.observer()

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


PARALLEL_MIN_PATIENTS = 200
"""Below this, forking workers costs more than it saves."""
PARALLEL_MIN_SLICE = 25
PARALLEL_SLICES_PER_WORKER = 8
"""Slices per worker: small enough to balance the load, large enough to keep per-slice overhead low."""
_FORKED: Pipeline | None = None
"""The pipeline a forked worker inherits (its records included: nothing is pickled to the workers)."""


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


@dataclass
class _SliceResult:
    path: str
    stats: RunStats
    summaries: dict[str, SummaryTally]
    defaults_used: Counter[str]


class _SliceSink:
    """A worker's output: one line per resource or quarantine entry, tagged, in emission order."""

    def __init__(self, path: str) -> None:
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        os.chmod(path, 0o600)

    def write(self, resource: dict[str, Any]) -> None:
        self._handle.write(b"R" + resource["resourceType"].encode() + b"\t")
        self._handle.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))

    def quarantine(self, entry: QuarantineEntry) -> None:
        self._handle.write(b"Q")
        self._handle.write(orjson.dumps(entry.to_json(), option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        self._handle.close()


def _evaluate_slice(
    index: int, ids: list[str], path: str, period: tuple[date, date], report_date: str
) -> _SliceResult:
    """In a forked worker: evaluate and emit a slice of patients into ``path``; return the counts."""
    pipeline = _FORKED
    assert pipeline is not None
    sink = _SliceSink(path)
    pipeline.sink = sink
    pipeline.stats = RunStats()
    pipeline._summaries = {}
    pipeline.defaults.used = Counter()
    pipeline.observer = None
    evaluator = MeasureEvaluator(pipeline.ruleset, *period, thorough=pipeline.options.thorough)
    try:
        for patient_id, records in pipeline._grouper.patients_of(ids):
            pipeline._evaluate_and_emit(patient_id, records, evaluator, period, report_date)
    finally:
        sink.close()
    return _SliceResult(path, pipeline.stats, pipeline._summaries, pipeline.defaults.used)


PARALLEL_MIN_INGEST_BYTES = 8 * 1024 * 1024
"""Below this much input, reading it here is quicker than forking readers."""
PARALLEL_TASK_BYTES = 32 * 1024 * 1024
"""At most this much input per ingest task: a worker holds one task's records at a time (flat memory)."""


@dataclass
class _IngestResult:
    stats: RunStats
    quarantined: list[QuarantineEntry]
    latest_encounter_year: int | None
    records: list[tuple[str, ResourceRecord]]


class _Collected:
    """A worker's stand-in for the grouper and the sink during ingest: keeps what the parent must add."""

    def __init__(self) -> None:
        self.records: list[tuple[str, ResourceRecord]] = []
        self.quarantined: list[QuarantineEntry] = []

    def add(self, patient_id: str, record: ResourceRecord) -> None:
        self.records.append((patient_id, record))

    def write(self, resource: dict[str, Any]) -> None:  # pragma: no cover - ingest writes nothing
        raise AssertionError("ingest does not write resources")

    def quarantine(self, entry: QuarantineEntry) -> None:
        self.quarantined.append(entry)


def _ingest_task(parts: list[InputPart], path: str) -> str:
    """In a forked worker: read, parse and screen ``parts``; pickle what the parent needs into ``path``."""
    pipeline = _FORKED
    assert pipeline is not None
    collected = _Collected()
    pipeline.sink = collected
    pipeline._grouper = collected  # type: ignore[assignment]
    pipeline.stats = RunStats()
    pipeline._latest_encounter_year = None
    for part in parts:
        pipeline.ingest(read_part(part))
    result = _IngestResult(
        pipeline.stats, collected.quarantined, pipeline._latest_encounter_year, collected.records
    )
    with open(path, "wb") as handle:
        os.chmod(path, 0o600)
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


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
