"""The forked executor (``replay --workers N``): map, then reduce, on forked worker processes.

Map: tasks of a few input parts each are read, parsed and screened (``Ingest``); each task's records are split
into buckets by a hash of the patient id and pickled into a file, bucket after bucket. The parent takes back,
in input order, the counts and quarantine entries.
Reduce (once all input is read, so the default period is known and the ``Job`` can be prepared): each bucket
is grouped by patient (spilling past the budget) and every patient goes through ``core.evaluate_patient``,
in patient-id order, into a file of per-patient blocks of serialised lines. The parent merges the buckets'
blocks by patient id into the sink: the order, and so the bytes, of one process. Records never pass through
the parent. A task whose worker failed is done in the parent: nothing is lost.
"""

from __future__ import annotations

import heapq
import logging
import os
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

import orjson

from ..core import evaluate_patient, quarantine_line, resource_line
from ..ingest import Ingest, Screen
from ..job import Job
from ..pipeline import Pipeline
from ..quarantine import QuarantineEntry
from ..sources.files import InputPart, read_part
from ..sources.grouping import PatientGrouper
from ..sources.records import ResourceRecord
from ..stats import RunStats
from .pool import ForkPool, can_fork

log = logging.getLogger("fhir_cat2.executors.forked")

MIN_INGEST_BYTES = 8 * 1024 * 1024
"""Below this much input, one process is quicker than forking workers."""
TASK_BYTES = 8 * 1024 * 1024
"""At most this much input per map task: a worker holds one task's records at a time (flat memory)."""
BUCKET_BYTES = 16 * 1024 * 1024
"""About this much input per reduce bucket."""
SLICES_PER_WORKER = 8
"""Map tasks (at least) and reduce buckets per worker: enough to balance the load, few enough to keep
per-task overhead low."""


def worth_forking(parts: list[InputPart], workers: int) -> bool:
    """Whether ``workers`` forked processes beat one on this input (and this system can fork)."""
    return workers > 1 and sum(part.size for part in parts) >= MIN_INGEST_BYTES and can_fork()


def bucket_of(patient_id: str, buckets: int) -> int:
    """The reduce bucket of a patient: the same in every process (unlike ``hash``, salted per run)."""
    return zlib.crc32(patient_id.encode("utf-8", "surrogatepass")) % buckets


# ---------------------------------------------------------------------------------------------- map


@dataclass
class MapResult:
    path: str
    spans: list[tuple[int, int]]
    """(offset, length) in ``path`` of each bucket's pickled records (length 0: none)."""
    stats: RunStats
    quarantined: list[QuarantineEntry] = field(default_factory=list)


@dataclass(frozen=True)
class MapState:
    screen: Screen
    buckets: int


def map_task(state: MapState, parts: list[InputPart], path: str) -> MapResult:
    """Read, parse and screen ``parts``; pickle their records into ``path``, bucket after bucket."""
    records: list[list[tuple[str, ResourceRecord]]] = [[] for _ in range(state.buckets)]
    quarantined: list[QuarantineEntry] = []

    def add(patient_id: str, record: ResourceRecord) -> None:
        records[bucket_of(patient_id, state.buckets)].append((patient_id, record))

    ingest = Ingest(state.screen, add, quarantined.append)
    for part in parts:
        ingest.feed(read_part(part))
    spans: list[tuple[int, int]] = []
    with open(path, "wb") as handle:
        os.chmod(path, 0o600)
        for rows in records:
            start = handle.tell()
            if rows:
                pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
            spans.append((start, handle.tell() - start))
    return MapResult(path, spans, ingest.stats, quarantined)


# ---------------------------------------------------------------------------------------------- reduce


@dataclass(frozen=True)
class ReduceState:
    job: Job
    budget: int


def reduce_task(state: ReduceState, pieces: list[tuple[str, int, int]], path: str) -> RunStats:
    """Group one bucket's records (its pieces of the map files, in input order) by patient, then evaluate
    each patient, in patient-id order, into ``path`` as blocks of lines; returns the counts."""
    stats = RunStats()
    grouper = PatientGrouper(state.budget)
    handle = open(path, "wb")  # noqa: SIM115 - closed below
    os.chmod(path, 0o600)
    try:
        for map_path, offset, length in pieces:
            with open(map_path, "rb") as source:
                source.seek(offset)
                rows: list[tuple[str, ResourceRecord]] = pickle.loads(source.read(length))
            for patient_id, record in rows:
                grouper.add(patient_id, record)
        for patient_id, records in grouper.patients():
            result = evaluate_patient(records, state.job)
            stats.take_patient(result)
            lines = [b"Q" + quarantine_line(entry) + b"\n" for entry in result.quarantined]
            lines += [
                b"R" + resource["resourceType"].encode() + b"\t" + resource_line(resource) + b"\n"
                for resource in result.resources
            ]
            # a patient with nothing to write still counts (patients, populations): its block is empty
            handle.write(b"P" + orjson.dumps([patient_id, len(lines)]) + b"\n")
            handle.writelines(lines)
    finally:
        grouper.close()
        handle.close()
    return stats


def _blocks(handle: IO[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """The (patient id, lines) blocks of a reduce task's file, in order."""
    for header in handle:
        patient_id, count = orjson.loads(header[1:])
        yield patient_id, [handle.readline() for _ in range(count)]


def _block_key(block: tuple[str, list[bytes]]) -> str:
    return block[0]


# ---------------------------------------------------------------------------------------------- run


def replay_forked(
    pipeline: Pipeline,
    parts: list[InputPart],
    workers: int,
    *,
    resources_done: Callable[[int], None] | None = None,
    bytes_done: Callable[[int], None] | None = None,
) -> RunStats:
    """Replay ``parts`` on ``workers`` forked processes into the pipeline's sink and statistics; what reaches
    the sink, and the statistics, are byte for byte those of ``Pipeline`` in one process.
    ``resources_done`` is told how many resources each map task read, ``bytes_done`` how many input bytes
    (progress)."""
    total = sum(part.size for part in parts)
    task_bytes = max(1, min(TASK_BYTES, total // (workers * SLICES_PER_WORKER)))
    tasks: list[list[InputPart]] = [[]]
    held = 0
    for part in parts:
        if tasks[-1] and held + part.size > task_bytes:
            tasks.append([])
            held = 0
        tasks[-1].append(part)
        held += part.size
    # enough buckets to balance the load, and more for larger input: a bucket's records stay about the same
    # in number whatever the input size (flat memory, no spill but for a giant patient)
    buckets = max(workers * SLICES_PER_WORKER, -(-total // BUCKET_BYTES))
    log.info(
        "reading %d input parts in %d tasks on %d workers, evaluating in %d buckets",
        len(parts),
        len(tasks),
        workers,
        buckets,
    )
    stats, sink = pipeline.stats, pipeline.sink
    try:
        with tempfile.TemporaryDirectory(prefix="fhir-cat2-") as folder:
            os.chmod(folder, 0o700)
            maps = _map(pipeline, tasks, workers, buckets, folder, resources_done, bytes_done)
            job = pipeline.job()
            log.info("evaluating patients for measurement period %d", job.year)
            pieces = [
                [(result.path, *result.spans[bucket]) for result in maps if result.spans[bucket][1]]
                for bucket in range(buckets)
            ]
            outputs = [os.path.join(folder, f"out-{bucket:05d}") for bucket in range(buckets)]
            state = ReduceState(job, pipeline.budget)
            pool = ForkPool(workers, reduce_task, state)
            for delta in pool.run(
                list(zip(pieces, outputs, strict=True)),
                lambda bucket, why: log.warning(
                    "worker for bucket %d failed (%s); evaluating it here", bucket, why
                ),
            ):
                stats.take_evaluated(delta)
                if pipeline.observer is not None:
                    for _ in range(delta.patients):
                        pipeline.observer()
            _merge_outputs(outputs, pipeline)
            for report in stats.summary_reports(job):
                sink.write(report)
    finally:
        pipeline.close()
    stats.finish(job)
    return stats


def _map(
    pipeline: Pipeline,
    tasks: list[list[InputPart]],
    workers: int,
    buckets: int,
    folder: str,
    resources_done: Callable[[int], None] | None,
    bytes_done: Callable[[int], None] | None,
) -> list[MapResult]:
    """Run the map tasks; take back their counts and quarantine entries in input order."""
    paths = [os.path.join(folder, f"map-{index:05d}") for index in range(len(tasks))]
    pool = ForkPool(workers, map_task, MapState(pipeline.screen, buckets))
    results: list[MapResult] = []
    stats, sink = pipeline.stats, pipeline.sink
    outcomes = pool.run(
        list(zip(tasks, paths, strict=True)),
        lambda index, why: log.warning("worker for input task %d failed (%s); reading it here", index, why),
    )
    for index, (result, task) in enumerate(zip(outcomes, tasks, strict=True)):
        stats.take_ingest(result.stats)
        for entry in result.quarantined:
            sink.quarantine(entry)
        results.append(result)
        read = sum(result.stats.resources_read.values())
        log.debug("input task %d of %d: %d resources", index + 1, len(tasks), read)
        if resources_done is not None:
            resources_done(read)
        if bytes_done is not None:
            bytes_done(sum(part.size for part in task))
    return results


def _merge_outputs(paths: list[str], pipeline: Pipeline) -> None:
    """Copy the buckets' per-patient blocks into the sink in patient-id order (each bucket's blocks are in
    that order already, and a patient is in one bucket only)."""
    sink = pipeline.sink
    handles = [open(path, "rb") for path in paths]  # noqa: SIM115 - closed below
    try:
        for _, lines in heapq.merge(*(_blocks(handle) for handle in handles), key=_block_key):
            for line in lines:
                kind, payload = line[:1], line[1:-1]
                if kind == b"Q":
                    sink.quarantine_line(payload)
                else:
                    resource_type, _, body = payload.partition(b"\t")
                    sink.write_line(resource_type.decode(), body)
    finally:
        for handle in handles:
            handle.close()
