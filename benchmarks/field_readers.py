"""Field-reader benchmark: CPU time per resource of each type's reader (sources/fields.py), in one process.

Run by hand with the project's interpreter (it is not a test)::

    .venv/bin/python benchmarks/field_readers.py ../shared/corpus
    .venv/bin/python benchmarks/field_readers.py fixtures --rounds 20

Reads every resource of a type we read from the folders into memory first, then times ``to_record`` over
them per type (CPU time, the best of ``--rounds``, garbage collection off while timing), so a field added to
a map, or a change to a reader, shows its cost apart from parsing, screening and evaluation. Resources the
fast reader declines are timed too (they go through their pydantic model); their count is shown.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict
from typing import Any

from fhir_cat2.errors import InputError
from fhir_cat2.sources import readers
from fhir_cat2.sources.fields import MAPS, READERS, to_record
from fhir_cat2.sources.files import InputItem, iter_input_files, read_file

Case = tuple[dict[str, Any], Any, Any, str]


def _timed(cases: list[Case]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for resource, src, resolve, resource_id in cases:
            try:  # noqa: SIM105 (contextlib.suppress would time a context manager per resource)
                to_record(resource, src, resolve, resource_id)
            except InputError:
                pass
        return time.process_time() - start
    finally:
        gc.enable()


def _declined(cases: list[Case]) -> int:
    count = 0
    for resource, src, resolve, resource_id in cases:
        try:
            READERS[resource["resourceType"]].read(resource, src, resolve, resource_id)
        except (readers.Unexpected, InputError):
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="files or folders of FHIR JSON")
    parser.add_argument("--rounds", type=int, default=7, help="timings per type; the best is shown")
    args = parser.parse_args()
    by_type: dict[str, list[Case]] = defaultdict(list)
    for path in iter_input_files(args.paths):
        for item in read_file(path):
            if isinstance(item, InputItem) and item.resource.get("resourceType") in MAPS:
                by_type[item.resource["resourceType"]].append(
                    (item.resource, item.src, item.resolve, item.resource_id)
                )
    total_time = 0.0
    total_count = 0
    print(f"{'type':26} {'resources':>9} {'declined':>8} {'us/resource':>11}")
    for resource_type, cases in sorted(by_type.items(), key=lambda pair: -len(pair[1])):
        best = min(_timed(cases) for _ in range(args.rounds))
        total_time += best
        total_count += len(cases)
        print(f"{resource_type:26} {len(cases):9} {_declined(cases):8} {best * 1e6 / len(cases):11.2f}")
    if total_count:
        print(f"{'all':26} {total_count:9} {'':8} {total_time * 1e6 / total_count:11.2f}")


if __name__ == "__main__":
    main()
