"""The pure per-patient core: the same records and job give the same result, in any process, and a
patient whose evaluation raises is quarantined by kind, never failing the run."""

from __future__ import annotations

import os
import pickle
from datetime import date
from typing import Any

import pytest

from fhir_cat2 import core
from fhir_cat2.core import evaluate_patient, expected
from fhir_cat2.executors.pool import ForkPool, can_fork
from fhir_cat2.ingest import Ingest, Screen
from fhir_cat2.job import RunOptions, prepare_job
from fhir_cat2.quarantine import QuarantineEntry, QuarantineKind
from fhir_cat2.sources.files import InputItem
from fhir_cat2.sources.records import ResourceRecord, Src
from fhir_cat2.sources.values import plain_resolver
from fhir_cat2.stats import RunStats

from .conftest import a1c, bp_panel, encounter, patient


def records_of(ruleset, *resources: dict[str, Any]) -> list[ResourceRecord]:
    grouped: list[ResourceRecord] = []
    quarantined: list[QuarantineEntry] = []
    ingest = Ingest(Screen(ruleset), lambda _, record: grouped.append(record), quarantined.append)
    ingest.feed(
        InputItem(r, Src("test.json", f"entry[{i}]"), plain_resolver, r["id"])
        for i, r in enumerate(resources)
    )
    assert not quarantined
    return grouped


@pytest.fixture
def job(ruleset):
    return prepare_job(ruleset, RunOptions(period_year=2025), (date(2025, 1, 1), date(2025, 12, 31)))


def _plain(result: core.PatientResult) -> dict[str, Any]:
    data = dict(vars(result))
    data.pop("outcome")
    return data


def test_the_same_records_and_job_give_the_same_result(ruleset, job):
    records = records_of(ruleset, patient(), encounter(), bp_panel("bp", 128, 78), a1c("a1", 7.5))
    first = evaluate_patient(records, job)
    assert first.written["Claim"] == 1 and first.codes
    again = evaluate_patient(records, job)
    assert _plain(again) == _plain(first)
    # a job sent to another process (forked worker, Spark executor) gives the same result there
    shipped = pickle.loads(pickle.dumps(job))
    assert shipped.evaluator is not job.evaluator
    assert _plain(evaluate_patient(pickle.loads(pickle.dumps(records)), shipped)) == _plain(first)


def test_a_patient_whose_evaluation_raises_is_quarantined_by_kind(ruleset, job, monkeypatch, caplog):
    records = records_of(ruleset, patient(), encounter())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a value from the input: 123-45-6789")

    monkeypatch.setattr(core, "extract_readings", broken)
    result = evaluate_patient(records, job)
    assert not result.evaluated and not result.resources
    [entry] = result.quarantined
    assert entry.kind is QuarantineKind.EVALUATION_FAILED
    assert "ValueError" in entry.reason and "123-45-6789" not in entry.reason
    assert "123-45-6789" not in caplog.text
    stats = RunStats()
    stats.take_patient(result)
    assert stats.patients == 0 and stats.quarantine_reasons == {"evaluation-failed": 1}
    assert list(expected(result, job)) == []  # nothing known of them: nothing of theirs withdrawn


def test_the_defaults_used_are_counted_per_patient_not_in_the_shared_job(ruleset, job):
    records = records_of(ruleset, patient(), encounter(), bp_panel("bp", 128, 78))
    result = evaluate_patient(records, job)
    assert result.defaults_used["provider"] == 1
    assert not hasattr(job.defaults, "used")


def test_expected_names_every_claim_and_report_an_earlier_run_may_have_written(ruleset, job):
    records = records_of(ruleset, patient(), encounter("e1"), encounter("e2", "2025-05-01T09:00:00Z"))
    result = evaluate_patient(records, job)
    keys = list(expected(result, job))
    assert [k[2] for k in keys if k[0] == "Claim"] == ["Encounter/e1", "Encounter/e2"]
    assert {k[0] for k in keys} == {"Claim", "MeasureReport"}


# ---------------------------------------------------------------------------------------------- pool


def _square(state: int, value: int) -> int:
    if value == 3 and os.getpid() != state:
        raise RuntimeError("fails in a worker only")
    if value == 5 and os.getpid() != state:
        os._exit(7)  # the worker dies with its task in hand
    return value * value


@pytest.mark.skipif(not can_fork(), reason="needs fork")
def test_the_fork_pool_gives_results_in_order_and_redoes_what_failed():
    failures: list[tuple[int, str]] = []
    pool = ForkPool(2, _square, os.getpid())
    tasks = [(n,) for n in range(12)]
    assert list(pool.run(tasks, lambda index, why: failures.append((index, why)))) == [
        n * n for n in range(12)
    ]
    assert (3, "RuntimeError") in failures and (5, "worker died") in failures
