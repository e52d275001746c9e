"""Spark input benchmark: replay's reader against ``spark_input`` (Spark ``local[N]``) on the same NDJSON.

Run by hand with the project's interpreter and the ``spark`` extra (it is not a test)::

    .venv/bin/python benchmarks/spark_input.py --resources 400000 --files 8 --master 'local[2]'

Writes a seeded synthetic bulk export (one Patient and Encounters/Observations per patient, spread over
``--files`` NDJSON files, every tenth file gzipped) to a temporary folder, then times (wall) reading it to
items: replay's ``read_file`` in this process, and Spark: ``input_rows`` (two passes over the lines) plus a
``mapInArrow`` that runs ``items_of_rows`` and counts. Both must find the same number of items. Spark's
time includes its job planning but not the session start, which is printed apart.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from fhir_cat2.sources.files import iter_input_files, read_file


def write_corpus(folder: Path, resources: int, files: int) -> None:
    rng = random.Random(11)
    with ExitStack() as stack:
        handles = []
        for n in range(files):
            name = folder / (f"part-{n:03}.ndjson" + (".gz" if n % 10 == 9 else ""))
            opener = gzip.open if n % 10 == 9 else open
            handles.append(stack.enter_context(opener(name, "wb")))
        _write_patients(handles, resources, rng)


def _write_patients(handles: list[Any], resources: int, rng: random.Random) -> None:
    files = len(handles)
    written, patient = 0, 0
    while written < resources:
        patient += 1
        pid = f"p{patient}"
        lines = [{"resourceType": "Patient", "id": pid, "birthDate": "1960-01-01", "gender": "female"}]
        for e in range(rng.randint(2, 8)):
            lines.append(
                {
                    "resourceType": "Observation",
                    "id": f"{pid}-o{e}",
                    "status": "final",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "effectiveDateTime": "2025-03-04T09:00:00Z",
                    "valueQuantity": {"value": rng.randint(100, 180), "unit": "mm[Hg]"},
                }
            )
        for line in lines:
            handles[written % files].write(orjson.dumps(line) + b"\n")
            written += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        write_corpus(folder, args.resources, args.files)
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"corpus: {args.resources} resources, {args.files} files, {size / 1e6:.0f} MB on disk")

        started = time.perf_counter()
        replayed = sum(1 for path in iter_input_files([str(folder)]) for _ in read_file(path))
        replay_s = time.perf_counter() - started
        print(f"replay reader: {replayed} items in {replay_s:.1f}s ({replayed / replay_s:,.0f}/s)")

        from pyspark.sql import SparkSession

        started = time.perf_counter()
        spark = SparkSession.builder.master(args.master).config("spark.ui.enabled", "false").getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        print(f"Spark session ({args.master}): {time.perf_counter() - started:.1f}s")

        from fhir_cat2.spark_input import input_rows, items_of_rows

        def count(batches):  # type: ignore[no-untyped-def]
            import pyarrow as pa

            for batch in batches:
                rows = zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)
                yield pa.RecordBatch.from_arrays([pa.array([sum(1 for _ in items_of_rows(rows))])], ["n"])

        started = time.perf_counter()
        rows = input_rows(spark, [str(folder)])
        counted = rows.mapInArrow(count, "n long").groupBy().sum("n").collect()[0][0]
        spark_s = time.perf_counter() - started
        print(f"Spark reader: {counted} items in {spark_s:.1f}s ({counted / spark_s:,.0f}/s)")
        spark.stop()
        return 0 if counted == replayed else 1


if __name__ == "__main__":
    raise SystemExit(main())
