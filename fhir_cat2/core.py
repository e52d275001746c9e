"""The pure per-patient core: one patient's records and the run's job in, what to write out.

``evaluate_patient`` is the only place clinical work happens, for replay (in one process or on forked
workers), live sync and Spark alike: readings, measure populations, quality codes, and the Claims and
MeasureReports that carry them. It does no I/O, reads no clock, touches no global and mutates nothing it is
given: everything it concludes is in the ``PatientResult`` it returns, counts included, which the executor
adds up and hands to a sink.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from .contexts import PatientContext
from .emit.claim import build_claim
from .emit.gaps import build_gaps_bundle
from .emit.ids import claim_key, gaps_bundle_key, measure_report_key
from .emit.measurereport import attribute, build_individual_report, tally_counts
from .errors import InputError, QuarantineKind
from .findings import MeasureResult, QualityCode
from .job import Job
from .logs import safe_traceback
from .measures.claims import claims_codes
from .measures.gaps import CareGap, care_gaps
from .quarantine import QuarantineEntry
from .rules.engine import evaluate_code_rules
from .rules.facts import Readings, extract_readings
from .rules.measure_schema import MeasureDef
from .sources.records import ResourceRecord, Src

log = logging.getLogger("fhir_cat2.core")


@dataclass
class PatientOutcome:
    """Everything concluded about one patient: what ``explain`` shows and the emitters write."""

    ctx: PatientContext
    readings: Readings
    measure_results: dict[str, MeasureResult]
    codes: list[QualityCode]


@dataclass
class PatientResult:
    """What one patient's evaluation gives the executor: resources to write (in order), quarantine entries,
    and counts to add to the run's. Picklable but for ``outcome``, which stays in the process that made it
    (``explain`` and tests read it; executors in other processes drop it)."""

    patient_id: str
    evaluated: bool = True
    """False: evaluating the patient raised; ``quarantined`` says so."""
    resources: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    populations: dict[str, Counter[str]] = field(default_factory=dict)
    """Per measure, the first group's population counts (an initial population only)."""
    tallies: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    """Per measure in an initial population, every group's population counts (the summary reports)."""
    defaults_used: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)
    """Observations only a deviation that is off would read, per deviation (``Readings.left_out``)."""
    encounters: tuple[str, ...] = ()
    """The patient's encounters (references): what an earlier run may have written Claims for."""
    outcome: PatientOutcome | None = None


def assess(patient_id: str, records: Iterable[ResourceRecord], job: Job) -> PatientOutcome:
    """Pure: one patient in, readings, measure results and quality codes out (no resources built)."""
    ctx = PatientContext.build(patient_id, records)
    ruleset, evaluator = job.ruleset, job.evaluator
    readings = extract_readings(ctx, ruleset, job.options.deviations)
    results = {m.id: evaluator.evaluate(m, ctx, readings) for m in job.measures}
    program = job.options.program
    code_readings = readings
    if job.code_criteria is not evaluator.criteria:  # hedis: the code rules' own reading, every deviation on
        code_readings = extract_readings(ctx, ruleset, job.code_deviations)
        known = set(readings.problems)  # what either reading could not use goes to quarantine, once
        readings.problems.extend(p for p in code_readings.problems if p not in known)
    codes = evaluate_code_rules(
        ctx,
        code_readings,
        ruleset,
        program=program,
        period=job.period,
        measure_results=results,
        criteria=job.code_criteria,
    )
    if program == "mips-claims":
        codes += claims_codes(ctx, readings, ruleset, evaluator, job.measures, job.claims_year, job.period)
        codes.sort(key=lambda c: _encounter_position(ctx, c.encounter_ref))
    return PatientOutcome(ctx, readings, results, codes)


def evaluate_patient(records: list[ResourceRecord], job: Job) -> PatientResult:
    """One patient's records (all of one patient, in input order) in; what to write and count out.

    A patient whose evaluation raises is quarantined with the exception's type (a bug to report), never
    failing the run."""
    patient_id = records[0].patient_id if records else None
    assert patient_id is not None, "evaluate_patient needs the records of one patient"
    result = PatientResult(patient_id)
    try:
        outcome = assess(patient_id, records, job)
    except Exception as exc:  # one patient must never stop the run
        # the traceback's frames only: an exception's message can hold a value from the input
        log.error("evaluating Patient/%s failed: %s", patient_id, safe_traceback(exc))
        patient = next((r for r in records if r.resource_type == "Patient"), None)
        where = patient.src if patient is not None else Src(f"Patient/{patient_id}", "")
        result.evaluated = False
        result.quarantined.append(
            QuarantineEntry(
                QuarantineKind.EVALUATION_FAILED,
                where,
                f"Patient/{patient_id}: could not be evaluated ({type(exc).__name__}); report this as a bug",
                f"Patient/{patient_id}",
            )
        )
        return result
    result.outcome = outcome
    result.encounters = tuple(encounter.ref for encounter in outcome.ctx.encounters)
    result.left_out.update(outcome.readings.left_out)
    log.debug(
        "Patient/%s: %d encounters, %d codes",
        patient_id,
        len(outcome.ctx.encounter_by_ref),
        len(outcome.codes),
    )
    for problem in outcome.readings.problems:
        result.quarantined.append(
            QuarantineEntry(problem.kind, problem.src, f"{problem.ref}: {problem.reason}", problem.ref)
        )
    _emit_claims(outcome, job, result)
    _emit_reports(outcome, job, result)
    if job.emits("gaps"):
        _emit_gaps(outcome, job, result)
    return result


def _emit_claims(outcome: PatientOutcome, job: Job, result: PatientResult) -> None:
    ctx = outcome.ctx
    for code in outcome.codes:
        result.codes[code.display_code] += 1
    if not job.emits("claim") or not outcome.codes:
        return
    by_encounter: dict[str, list[QualityCode]] = {}
    for code in outcome.codes:
        by_encounter.setdefault(code.encounter_ref, []).append(code)
    for encounter_ref, codes in by_encounter.items():
        encounter = ctx.encounter_by_ref[encounter_ref]
        used: Counter[str] = Counter()
        try:
            claim = build_claim(
                ctx,
                encounter,
                codes,
                program=job.options.program,
                year=job.year,
                defaults=job.defaults,
                used=used,
            )
        except InputError as exc:
            result.quarantined.append(QuarantineEntry(exc.kind, encounter.src, str(exc), encounter.ref))
            continue
        result.defaults_used.update(used)
        result.resources.append(claim)
        result.written["Claim"] += 1


def _emit_reports(outcome: PatientOutcome, job: Job, result: PatientResult) -> None:
    for measure in job.measures:
        measure_result = outcome.measure_results.get(measure.id)
        if measure_result is None or not measure_result.in_initial_population:
            continue
        counter = result.populations.setdefault(measure.id, Counter())
        for group in measure_result.groups[:1]:
            for population in group.populations:
                counter[population.code] += population.tally
        tallies = [tally_counts(group) for group in measure_result.groups]
        attribute(tallies, outcome.ctx, measure_result)
        result.tallies[measure.id] = tallies
        if measure.url is None or not job.individual_reports:
            continue
        _add_patient_resource(
            result,
            "MeasureReport",
            partial(
                build_individual_report,
                measure,
                measure_result,
                period=job.period,
                report_date=job.report_date,
                defaults=job.defaults,
            ),
        )


def _emit_gaps(outcome: PatientOutcome, job: Job, result: PatientResult) -> None:
    """The patient's Gaps in Care Bundle, when a gap of theirs is open (measures with MeasureReports)."""
    measures: list[tuple[MeasureDef, MeasureResult, list[CareGap]]] = []
    for measure in job.reported_measures:
        measure_result = outcome.measure_results.get(measure.id)
        if measure_result is None or not measure_result.in_initial_population:
            continue
        measures.append((measure, measure_result, care_gaps(measure, measure_result, job.period[1])))
    _add_patient_resource(
        result,
        "Bundle",
        partial(
            build_gaps_bundle,
            outcome.ctx.patient_id,
            measures,
            period=job.period,
            report_date=job.report_date,
            defaults=job.defaults,
        ),
    )


def _add_patient_resource(
    result: PatientResult, resource_type: str, build: Callable[..., dict[str, Any] | None]
) -> None:
    """Build one of the patient's resources (``build(used=...)``, None: nothing to write) and keep it, or
    quarantine the patient's input the builder refused, with its reason."""
    used: Counter[str] = Counter()
    try:
        resource = build(used=used)
    except InputError as exc:
        ref = f"Patient/{result.patient_id}"
        result.quarantined.append(QuarantineEntry(exc.kind, Src(ref, ""), str(exc), ref))
        return
    if resource is None:
        return
    result.defaults_used.update(used)
    result.resources.append(resource)
    result.written[resource_type] += 1


def expected(result: PatientResult, job: Job) -> Iterator[tuple[str, str, str | None]]:
    """(type, business key, encounter) of all an earlier run may have written for this patient: what this
    run does not write again is stale, withdrawn by a sink that can. Nothing for a patient whose evaluation
    failed (nothing is known of them, so nothing of theirs is withdrawn)."""
    if not result.evaluated:
        return
    if job.emits("claim"):
        program, year = job.options.program, job.year
        for encounter_ref in result.encounters:
            yield "Claim", claim_key(result.patient_id, encounter_ref, program, year), encounter_ref
    yield from expected_reports(result.patient_id, job)


def expected_reports(patient_id: str, job: Job) -> Iterator[tuple[str, str, str | None]]:
    """The individual MeasureReports (and Gaps in Care Bundle) an earlier run may have written for a patient
    (``expected``); also for a patient whose data is all gone from the server (sync)."""
    if job.individual_reports:
        for measure in job.reported_measures:
            assert measure.url is not None
            yield "MeasureReport", measure_report_key(patient_id, measure.url, job.year), None
    if job.emits("gaps"):
        yield "Bundle", gaps_bundle_key(patient_id, job.year), None


def _encounter_position(ctx: PatientContext, ref: str) -> int:
    for index, encounter in enumerate(ctx.encounters):
        if encounter.ref == ref:
            return index
    return len(ctx.encounters)


def resource_line(resource: dict[str, Any]) -> bytes:
    """A resource as one NDJSON line (no newline): the bytes every executor and sink writes."""
    return orjson.dumps(resource)


def quarantine_line(entry: QuarantineEntry) -> bytes:
    """A quarantine entry as one NDJSON line (no newline)."""
    return orjson.dumps(entry.to_json())
