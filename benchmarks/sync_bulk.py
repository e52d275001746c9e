"""Bulk vs search sync against a local sekmet-fhir holding N copies of the Synthea corpus.

Run by hand with the project's interpreter (it is not a test; skipped when ../shared/corpus is absent)::

    FHIR_CAT2_SEKMET_VENV=/path/to/venv .venv/bin/python benchmarks/sync_bulk.py --copies 4

Each copy of ``../shared/corpus/smart-synthea-r4`` gets its own ids (every resource id of a bundle mapped
to a uuid5 of the copy number), so N copies are N times the patients. Measured, each a separate
``fhir-cat2 sync --dry-run`` child process with its own state file (a first run: everything read and
evaluated, nothing written to the server): ``--source search`` and ``--source bulk``. Printed per mode:
wall time, resources read and per second, requests, the child's CPU time as a share of its wall time (the
rest is waiting for the server), and its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live.conftest import corpus_bundle_as_puts  # noqa: E402
from tests.support.sekmet_server import SekmetServer  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "smart-synthea-r4"
COPY_NAMESPACE = uuid.UUID("6f1d2c4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f")


def copied(bundle_text: str, copy: int) -> dict[str, Any]:
    """The bundle with every entry's uuid replaced by one of its own for this copy (references too)."""
    bundle = json.loads(bundle_text)
    if copy == 0:
        return bundle
    ids = {e["fullUrl"].removeprefix("urn:uuid:") for e in bundle["entry"]}
    ids |= {e["resource"]["id"] for e in bundle["entry"] if e["resource"].get("id")}
    for old in sorted(ids, key=len, reverse=True):
        bundle_text = bundle_text.replace(old, str(uuid.uuid5(COPY_NAMESPACE, f"{copy}:{old}")))
    return json.loads(bundle_text)


def load(base: str, copies: int) -> int:
    count = 0
    for copy in range(copies):
        for path in sorted(CORPUS.glob("*.json")):
            entries = corpus_bundle_as_puts(copied(path.read_text(), copy))
            count += len(entries)
            response = requests.post(
                base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, timeout=600
            )
            response.raise_for_status()
    return count


def timed_sync(base: str, work: Path, source: str) -> tuple[float, float, int, dict[str, Any]]:
    """(wall seconds, CPU seconds, peak RSS KiB, run report) of one sync child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_cat2",
            "sync",
            "--base-url",
            base,
            "--state",
            str(work / f"{source}.sqlite"),
            "--out",
            str(work / source),
            "--source",
            source,
            "--dry-run",
            "--period",
            "2020",
            "--no-progress",
        ],
        check=False,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "FHIR_CAT2_SOURCE__BULK__POLL_SECONDS": "0.2"},
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads((work / source / "run-report.json").read_text())
    return wall, cpu, after.ru_maxrss, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return
    with SekmetServer(settings={"log_inbound": False}) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.monotonic()
        loaded = load(server.base_url, args.copies)
        print(f"loaded {loaded} resources ({args.copies} copies) in {time.monotonic() - started:.1f}s")
        results = {}
        for source in ("search", "bulk"):
            wall, cpu, rss, report = timed_sync(server.base_url, work, source)
            results[source] = wall
            read = report["resources_read"]
            print(
                f"{source:>6}: {wall:6.1f}s  {read:>7} resources read ({read / wall:,.0f}/s),"
                f" {report.get('requests')} requests, {report['patients_affected']} patients,"
                f" CPU {cpu:.1f}s ({cpu / wall:.0%} of wall), peak RSS (max so far) {rss / 1024:.0f} MiB,"
                f" exit {report.get('exit_code')}"
            )
        print(f"bulk is {results['search'] / results['bulk']:.1f}x search")


if __name__ == "__main__":
    main()
