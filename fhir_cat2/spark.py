"""The Spark executor: replay on Apache Spark, through the same ingest and core as every other executor.

``run(spark, inputs, out, job)`` (notebooks and jobs) and ``fhir-cat2 replay PATH... --engine spark
[--spark-master local[2]]`` read NDJSON (and gzip), Bundles and single resources from any Hadoop-compatible
path, and write Claim, MeasureReport and quarantine NDJSON (one folder each, Spark part files) and a run
report. DataFrame API only: no RDD, no ``sparkContext``, no JVM access, so it runs on Spark Connect and on
Databricks shared and serverless clusters.

1. **Input** (``spark_input.input_rows``): one row per NDJSON line, one per other file, each named and
   numbered as replay names and numbers it.
2. **Ingest** (``mapInArrow``): each row's items (``spark_input.items_of_rows``, replay's own parsing) go
   through ``ingest.Ingest`` with the run's ``Screen``: a row per slim record (patient id, input order,
   the pickled record), a row per quarantine entry, and one row of ingest counts per partition. Kept
   (``persist``) for the next steps: the counts are collected first, because the default measurement
   period is the year of the input's latest encounter.
3. **Evaluate** (``mapInArrow`` after ``repartition`` by patient and ``sortWithinPartitions`` by patient
   and input order): consecutive rows of one patient are one patient's records, in input order; each
   patient goes through ``core.evaluate_patient`` with the run's ``Job``; a row per output line, and one
   row of counts per partition (with the seconds spent in the core: patients per core-second).
4. **Output**: summary MeasureReports are made on the driver from the added-up counts. Each output is
   written sorted (``orderBy``: the order of replay's files), so its part files, concatenated in name
   order (``merge_outputs``, or ``cat part-*``), are byte for byte replay's ``--workers 1`` file:
   resources by patient id (summary reports last), quarantine entries from ingest in input order, then
   those from evaluation by patient id.

A bad line or resource is quarantined as in replay (path and line); a patient whose evaluation raises is
quarantined with the exception's type (``core.evaluate_patient``) and never fails the job; a malformed rules
table or an unknown measure fails before any Spark job (``job.prepare_job`` / ``selected_measures``).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import evaluate_patient, quarantine_line, resource_line
from .emit.claim import EmitDefaults
from .ingest import Ingest, Screen
from .job import Job, RunOptions, emitted_types, prepare_job, selected_measures
from .quarantine import QuarantineEntry
from .rules.loader import RuleSet
from .sources.records import ResourceRecord
from .spark_input import input_rows, items_of_rows
from .stats import RunStats, default_period

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("fhir_cat2.spark")

__all__ = ["OUTPUTS", "SparkRun", "local_session", "merge_outputs", "replay", "run"]

OUTPUTS = ("Claim", "MeasureReport", "quarantine")
"""The output folders (one NDJSON file each once merged)."""

INGESTED = "kind string, patient string, file_index long, line long, item long, payload binary"
"""Stage 2 rows: ``R`` a record (pickled), ``Q`` a quarantine entry (its NDJSON line), ``S`` a partition's
ingest counts (pickled ``RunStats`` and the file indexes it read); ``item`` orders the items of one row (a
Bundle's entries)."""

EVALUATED = "kind string, patient string, seq long, payload binary"
"""Stage 3 rows: an output line (``kind`` the resource type or ``quarantine``) in the patient's emission
order, or ``S``: a partition's counts (pickled ``RunStats`` and the seconds spent in the core)."""

PICKLE = pickle.HIGHEST_PROTOCOL
SHUFFLE_PARTITIONS = 8
"""The CLI session's shuffle partitions (Spark's default, 200, costs a Python task each: the job is unpickled
and the evaluator prepared per task). On a cluster set ``spark.sql.shuffle.partitions`` to about 2-4 per
core; adaptive execution coalesces small ones."""


@dataclass
class SparkRun:
    """What a Spark run did: its statistics and job (for the run report) and the evaluation stage's cost."""

    stats: RunStats
    job: Job
    partitions: int
    core_seconds: float

    def facts(self) -> dict[str, Any]:
        """The run report's ``spark`` section."""
        patients = self.stats.patients
        return {
            "evaluation_partitions": self.partitions,
            "evaluate_core_seconds": round(self.core_seconds, 3),
            "patients_per_core_second": round(patients / self.core_seconds, 1) if self.core_seconds else None,
        }


def run(spark: SparkSession, inputs: list[str], out: str, job: Job) -> SparkRun:
    """Replay ``inputs`` into ``out`` (a folder per output, Spark part files) with a prepared ``job``."""
    return _execute(spark, inputs, out, Screen(job.ruleset, job.options.only_patient), lambda _: job)


def replay(
    spark: SparkSession,
    inputs: list[str],
    out: str,
    ruleset: RuleSet,
    options: RunOptions,
    defaults: EmitDefaults | None = None,
) -> SparkRun:
    """``run`` as ``fhir-cat2 replay`` does it: the period, unless given, is the year of the input's latest
    encounter (known after ingest). Unknown measures and programs are refused before any Spark job."""
    selected_measures(ruleset, options)

    def make_job(latest_year: int | None) -> Job:
        return prepare_job(ruleset, options, default_period(options.period_year, latest_year), defaults)

    return _execute(spark, inputs, out, Screen(ruleset, options.only_patient), make_job)


def _execute(
    spark: SparkSession,
    inputs: list[str],
    out: str,
    screen: Screen,
    make_job: Callable[[int | None], Job],
) -> SparkRun:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    out = out if "://" in out or out.startswith("file:") else os.path.abspath(out)  # the JVM's cwd differs
    rows = input_rows(spark, inputs)
    ingested = rows.mapInArrow(_ingest_partition(screen), INGESTED).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        stats = RunStats()
        files: set[int] = set()
        for (payload,) in ingested.filter(F.col("kind") == "S").select("payload").collect():
            delta, indexes = pickle.loads(payload)
            stats.take_ingest(delta)
            files |= indexes
        stats.files = len(files)
        job = make_job(stats.latest_encounter_year)
        log.info("evaluating patients for measurement period %d", job.year)
        records = ingested.filter(F.col("kind") == "R")
        evaluated = (
            records.repartition("patient")
            .sortWithinPartitions("patient", "file_index", "line", "item")
            .select("patient", "payload")
            .mapInArrow(_evaluate_partition(job), EVALUATED)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        try:
            partitions, core_seconds = 0, 0.0
            for (payload,) in evaluated.filter(F.col("kind") == "S").select("payload").collect():
                delta, seconds = pickle.loads(payload)
                stats.take_evaluated(delta)
                partitions += 1
                core_seconds += seconds
            summaries = [resource_line(report) for report in stats.summary_reports(job)]
            outputs = (*emitted_types(job.options.emit), "quarantine")
            _write_outputs(spark, out, ingested, evaluated, summaries, outputs)
        finally:
            evaluated.unpersist()
    finally:
        ingested.unpersist()
    stats.finish(job)
    return SparkRun(stats, job, partitions, core_seconds)


def _write_outputs(
    spark: SparkSession,
    out: str,
    ingested: DataFrame,
    evaluated: DataFrame,
    summaries: list[bytes],
    outputs: tuple[str, ...],
) -> None:
    """Each output sorted as replay writes it, into ``out/<output>/part-*``."""
    from pyspark.sql import functions as F

    # (block, file_index, line, item, patient, seq): ingest entries first in input order, then per patient
    zero, empty = F.lit(0).cast("long"), F.lit("")
    order = ["block", "file_index", "line", "item", "patient", "seq"]
    from_ingest = ingested.filter(F.col("kind") == "Q").select(
        F.lit("quarantine").alias("kind"),
        F.lit(0).alias("block"),
        "file_index",
        "line",
        "item",
        empty.alias("patient"),
        zero.alias("seq"),
        "payload",
    )
    from_evaluation = evaluated.filter(F.col("kind") != "S").select(
        "kind",
        F.lit(1).alias("block"),
        zero.alias("file_index"),
        zero.alias("line"),
        zero.alias("item"),
        "patient",
        "seq",
        "payload",
    )
    lines = from_ingest.unionByName(from_evaluation)
    if summaries:
        summary_rows = spark.createDataFrame(
            [("MeasureReport", 2, 0, 0, 0, "", seq, line) for seq, line in enumerate(summaries)],
            "kind string, block int, file_index long, line long, item long, patient string, seq long,"
            " payload binary",
        )
        lines = lines.unionByName(summary_rows)
    # one sort and one write for every output: a folder per output (``kind=<output>``), part files in order
    (
        lines.filter(F.col("kind").isin(*outputs))
        .orderBy("kind", *order)
        .select("kind", F.col("payload").cast("string").alias("value"))
        .write.mode("overwrite")
        .partitionBy("kind")
        .text(out)
    )


def _ingest_partition(screen: Screen) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """The stage 2 function: input rows -> record, quarantine and count rows (see ``INGESTED``)."""

    def ingest(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        out: dict[str, list[Any]] = {name: [] for name in ("kind", "patient", "file_index", "line", "item")}
        payloads: list[bytes] = []
        where = [0, 0, 0]  # file_index, line, item of the item being ingested

        def emit(kind: str, patient: str | None, payload: bytes) -> None:
            out["kind"].append(kind)
            out["patient"].append(patient)
            out["file_index"].append(where[0])
            out["line"].append(where[1])
            out["item"].append(where[2])
            payloads.append(payload)

        def add(patient_id: str, record: ResourceRecord) -> None:
            emit("R", patient_id, pickle.dumps(record, protocol=PICKLE))

        def quarantine(entry: QuarantineEntry) -> None:
            emit("Q", None, quarantine_line(entry))

        stats = RunStats()
        ingest = Ingest(screen, add, quarantine, stats)
        files: set[int] = set()
        for batch in batches:
            for row in zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True):
                files.add(row[1])
                for number, item in enumerate(items_of_rows([row])):
                    where[:] = [row[1], row[2], number]
                    ingest.feed((item,))
            if len(payloads) >= 4096:
                yield _batch(pa, out, payloads)
        where[:] = [0, 0, 0]
        emit("S", None, pickle.dumps((stats, files), protocol=PICKLE))
        yield _batch(pa, out, payloads)

    return ingest


def _batch(pa: Any, columns: dict[str, list[Any]], payloads: list[bytes]) -> Any:
    """An Arrow batch of ``INGESTED`` rows from the columns collected so far (which are then emptied)."""
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array(columns["kind"], pa.string()),
            pa.array(columns["patient"], pa.string()),
            pa.array(columns["file_index"], pa.int64()),
            pa.array(columns["line"], pa.int64()),
            pa.array(columns["item"], pa.int64()),
            pa.array(payloads, pa.binary()),
        ],
        names=["kind", "patient", "file_index", "line", "item", "payload"],
    )
    for values in columns.values():
        values.clear()
    payloads.clear()
    return batch


def _evaluate_partition(job: Job) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """The stage 3 function: one partition's records, sorted by patient and input order -> output lines."""

    def evaluate(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        kinds: list[str] = []
        patients: list[str] = []
        seqs: list[int] = []
        payloads: list[bytes] = []
        stats = RunStats()
        seconds = 0.0

        def flush() -> Any:
            batch = pa.RecordBatch.from_arrays(
                [
                    pa.array(kinds, pa.string()),
                    pa.array(patients, pa.string()),
                    pa.array(seqs, pa.int64()),
                    pa.array(payloads, pa.binary()),
                ],
                names=["kind", "patient", "seq", "payload"],
            )
            for values in (kinds, patients, seqs, payloads):
                values.clear()
            return batch

        def finish(patient_id: str, records: list[ResourceRecord]) -> None:
            nonlocal seconds
            started = time.process_time()  # CPU, not wall: other work on the machine does not count
            result = evaluate_patient(records, job)
            seconds += time.process_time() - started
            stats.take_patient(result)
            lines = [("quarantine", quarantine_line(entry)) for entry in result.quarantined]
            lines += [(resource["resourceType"], resource_line(resource)) for resource in result.resources]
            for seq, (kind, line) in enumerate(lines):
                kinds.append(kind)
                patients.append(patient_id)
                seqs.append(seq)
                payloads.append(line)

        current: str | None = None
        records: list[ResourceRecord] = []
        for batch in batches:
            for patient_id, payload in zip(
                batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
            ):
                if patient_id != current:
                    if current is not None:
                        finish(current, records)
                    current, records = patient_id, []
                records.append(pickle.loads(payload))
            if len(payloads) >= 4096:
                yield flush()
        if current is not None:
            finish(current, records)
        kinds.append("S")
        patients.append("")
        seqs.append(0)
        payloads.append(pickle.dumps((stats, seconds), protocol=PICKLE))
        yield flush()

    return evaluate


def local_session(master: str) -> SparkSession:
    """A Spark session for ``fhir-cat2 replay --engine spark`` (``--spark-master``: ``local[N]``, or a
    cluster's master URL); the Python workers run this interpreter unless PYSPARK_PYTHON says otherwise."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(master)
        .appName("fhir-cat2 replay")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")  # the CLI's session only: the executor never needs it
    return session


def merge_outputs(
    out: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    outputs: tuple[str, ...] = OUTPUTS,
) -> list[Path]:
    """Concatenate each output folder's part files (``kind=<output>/part-*``), in name order, into
    ``<output>.ndjson`` (a local folder): the per-run folder replay writes. Removes the folders. Returns the
    files written; an output Spark wrote no row of (no folder) is an empty file, as replay writes it."""
    source, target = Path(out), Path(into if into is not None else out)
    written = []
    for output in outputs:
        folder = source / f"kind={output}"
        final = target / f"{output}.ndjson"
        partial = final.with_name(final.name + ".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as merged:
            for part in sorted(folder.glob("part-*")):
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, merged)
        os.replace(partial, final)
        shutil.rmtree(folder, ignore_errors=True)
        written.append(final)
    return written
