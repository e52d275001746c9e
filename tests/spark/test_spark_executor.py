"""The Spark executor writes, after the documented merge, byte for byte what ``replay --workers 1`` writes:
on the fixtures (with input that goes to quarantine at ingest and at evaluation) and on a generated corpus;
through the Python entry point and through ``fhir-cat2 replay --engine spark``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from fhir_cat2 import spark as engine
from fhir_cat2.cli import main
from fhir_cat2.errors import ConfigError
from fhir_cat2.gaps_csv import write_gaps_csv
from fhir_cat2.job import RunOptions, emitted_types, prepare_job
from fhir_cat2.rules.loader import load_rules

from ..conftest import ROOT, patient
from .conftest import SPARK_MARKS, skip_or_fail_without_spark

OUTPUTS = ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson", "unrecognised-codes.csv")
NOW = "2026-01-15T00:00:00Z"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The fixtures plus input quarantined at ingest (a file that is not JSON, a line cut short in NDJSON)
    and at evaluation (an HbA1c in a unit that cannot be converted)."""
    folder = tmp_path_factory.mktemp("in") / "in"
    shutil.copytree(ROOT / "fixtures", folder)
    (folder / "broken.json").write_text("{not json")
    bundle = json.loads((folder / "patients" / "a1c-poor.json").read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["valueQuantity"].update(unit="mg/dL", code="mg/dL")
    (folder / "patients" / "a1c-poor.json").write_text(json.dumps(bundle))
    (folder / "extra.ndjson").write_text(json.dumps(patient("px")) + "\n\n" + '{"resourceType": "Pat\n')
    return folder


def _generated(root: Path) -> Path:
    """A small corpus from the benchmark's generator: bundles and bulk NDJSON of the same patients."""
    spec = importlib.util.spec_from_file_location("bench_replay", ROOT / "benchmarks" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(root, 3_000, ["bundles", "ndjson"], 7, False)
    return root


def _replay(source: Path, out: Path, *extra: str, outputs: tuple[str, ...] = OUTPUTS) -> dict[str, bytes]:
    code = main(["replay", str(source), "--out", str(out), "--now", NOW, "--workers", "1", *extra])
    assert code in (0, 1)
    return {name: (out / name).read_bytes() for name in outputs}


def _on_spark(
    spark, source: Path, out: Path, options: RunOptions, outputs: tuple[str, ...] = OUTPUTS
) -> dict[str, bytes]:
    result = engine.replay(spark, [str(source)], str(out / "parts"), load_rules(), options)
    engine.merge_outputs(out / "parts", out, (*emitted_types(options.emit), "quarantine"))
    from fhir_cat2.codes import write_csv

    write_csv(str(out), result.stats.unrecognised_codes)
    if "gaps" in options.emit:
        write_gaps_csv(out)
    return {name: (out / name).read_bytes() for name in outputs}


class TestOnSpark:
    pytestmark = SPARK_MARKS

    def test_the_fixtures_and_bad_input_give_replays_bytes(self, spark, data, tmp_path):
        single = _replay(data, tmp_path / "single")
        on_spark = _on_spark(spark, data, tmp_path / "spark", RunOptions(now=NOW))
        assert single["Claim.ndjson"].count(b"\n") >= 15 and single["quarantine.ndjson"].count(b"\n") >= 3
        assert b'"position":"line 3"' in single["quarantine.ndjson"]  # the cut line, by its number
        assert on_spark == single

    def test_care_gaps_give_replays_bytes(self, spark, data, tmp_path):
        """--emit gaps: the Gaps in Care Bundles and gaps.csv too."""
        outputs = (*OUTPUTS, "Bundle.ndjson", "gaps.csv")
        emit = frozenset({"claim", "measure-report", "gaps"})
        single = _replay(data, tmp_path / "single", "--emit", ",".join(sorted(emit)), outputs=outputs)
        on_spark = _on_spark(spark, data, tmp_path / "spark", RunOptions(now=NOW, emit=emit), outputs)
        assert single["Bundle.ndjson"].count(b"\n") >= 10 and single["gaps.csv"].count(b"\n") >= 50
        assert on_spark == single

    def test_a_generated_corpus_gives_replays_bytes_with_summaries(self, spark, tmp_path):
        corpus = _generated(tmp_path / "corpus")
        single = _replay(corpus, tmp_path / "single", "--report", "both", "--program", "mips-claims")
        options = RunOptions(now=NOW, report="both", program="mips-claims")
        on_spark = _on_spark(spark, corpus, tmp_path / "spark", options)
        reports = [json.loads(line) for line in single["MeasureReport.ndjson"].splitlines()]
        assert Counter(r["type"] for r in reports)["summary"] >= 5 and single["Claim.ndjson"]
        assert on_spark == single

    def test_run_with_a_prepared_job_writes_a_folder_per_output(self, spark, data, tmp_path):
        ruleset = load_rules()
        job = prepare_job(
            ruleset, RunOptions(period_year=2025, now=NOW), (date(2025, 1, 1), date(2025, 12, 31))
        )
        result = engine.run(spark, [str(data)], str(tmp_path / "parts"), job)
        assert result.job is job and result.stats.patients >= 19
        assert result.facts()["patients_per_core_second"]
        assert sorted(p.name for p in (tmp_path / "parts").iterdir() if p.is_dir()) == [
            "kind=Claim",
            "kind=MeasureReport",
            "kind=quarantine",
        ]

    def test_an_unknown_measure_fails_before_any_spark_job(self, spark, data, tmp_path):
        with pytest.raises(ConfigError, match="NOPE"):
            engine.replay(
                spark, [str(data)], str(tmp_path / "parts"), load_rules(), RunOptions(measures=("NOPE",))
            )
        assert not (tmp_path / "p").exists()


def test_the_cli_engine_spark_writes_replays_files(data, tmp_path):
    """``fhir-cat2 replay --engine spark``, in a process of its own (its own Spark session and JVM)."""
    skip_or_fail_without_spark()
    single = _replay(data, tmp_path / "single")
    out = tmp_path / "spark"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    argv = [sys.executable, "-m", "fhir_cat2", "replay", str(data), "--out", str(out), "--now", NOW]
    argv += ["--engine", "spark", "--spark-master", "local[2]"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]  # completed, with quarantined input
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == single
    report = json.loads((out / "run-report.json").read_text())
    assert report["engine"] == "spark" and report["patients"] >= 19 and report["files_read"] >= 20
    assert not (out / ".spark-parts").exists()


def test_a_patient_whose_evaluation_raises_is_quarantined_not_the_job(monkeypatch):
    """The evaluation stage's function, as Spark calls it on a partition: one patient raising costs that
    patient only (a quarantine line naming the exception's type); the next patient is evaluated."""
    pa = pytest.importorskip("pyarrow")
    import pickle

    from fhir_cat2 import core
    from fhir_cat2.ingest import Ingest, Screen
    from fhir_cat2.sources.files import InputItem
    from fhir_cat2.sources.records import Src
    from fhir_cat2.sources.values import plain_resolver

    from ..conftest import encounter

    ruleset = load_rules()
    rows: list[tuple[str, bytes]] = []
    ingest = Ingest(Screen(ruleset), lambda pid, record: rows.append((pid, pickle.dumps(record))), print)
    resources = [patient("p1"), encounter("e1"), patient("p2"), encounter("e2", pid="p2")]
    ingest.feed(
        InputItem(r, Src("t.ndjson", f"line {i}"), plain_resolver, r["id"]) for i, r in enumerate(resources)
    )
    rows.sort(key=lambda row: row[0])
    job = prepare_job(ruleset, RunOptions(period_year=2025, now=NOW), (date(2025, 1, 1), date(2025, 12, 31)))
    real = core.assess

    def broken(patient_id, records, job):
        if patient_id == "p1":
            raise KeyError("a value from the input")
        return real(patient_id, records, job)

    monkeypatch.setattr(core, "assess", broken)
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[0] for r in rows]), pa.array([r[1] for r in rows], pa.binary())],
        names=["patient", "payload"],
    )
    out = pa.Table.from_batches(list(engine._evaluate_partition(job)([batch]))).to_pylist()
    p1 = [row for row in out if row["patient"] == "p1"]
    assert [row["kind"] for row in p1] == ["quarantine"]
    assert b"could not be evaluated (KeyError)" in p1[0]["payload"] and b"a value" not in p1[0]["payload"]
    assert any(row["kind"] == "MeasureReport" and row["patient"] == "p2" for row in out)
    stats, _ = pickle.loads(next(row["payload"] for row in out if row["kind"] == "S"))
    assert stats.patients == 1 and stats.quarantine_reasons == {"evaluation-failed": 1}
