"""Bulk vs search sync against a local sekmet-fhir holding N copies of the Synthea corpus.

Run by hand with the project's interpreter (it is not a test; skipped when ../shared/corpus is absent)::

    FHIR_CAT2_SEKMET_VENV=/path/to/venv .venv/bin/python benchmarks/sync_bulk.py --copies 11,22

Each copy of ``../shared/corpus/smart-synthea-r4`` gets its own ids (every resource id of a bundle mapped
to a uuid5 of the copy number), so N copies are N times the patients. Measured, each a separate
``fhir-cat2 sync --dry-run`` child process with its own state file (a first run: everything read and
evaluated, nothing written to the server): ``--source search`` and ``--source bulk``. Printed per mode:
wall time, resources read and per second, requests, the child's CPU time (from ``wait4``) as a share of
its wall time (the rest is waiting for the server), the server's CPU meanwhile, the child's peak RSS, and
for bulk the run report's timings (export, download, and last byte downloaded to last output written).
``--copies 11,22`` measures at 11 copies, then loads 11 more and measures again: peak memory at two sizes.
"""

from __future__ import annotations

import argparse
import json
import os
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


def load(base: str, first: int, last: int) -> int:
    """Copies ``first`` to ``last - 1`` of the corpus put on the server; the number of resources."""
    count = 0
    for copy in range(first, last):
        for path in sorted(CORPUS.glob("*.json")):
            entries = corpus_bundle_as_puts(copied(path.read_text(), copy))
            count += len(entries)
            response = requests.post(
                base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, timeout=600
            )
            response.raise_for_status()
    return count


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_sync(base: str, work: Path, source: str, server_pid: int | None) -> dict[str, Any]:
    """One sync child process: wall, its own CPU and peak RSS (from wait4), the server's CPU meanwhile,
    and its run report."""
    server_before = process_cpu(server_pid) if server_pid else 0.0
    started = time.monotonic()
    child = subprocess.Popen(
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
        stderr=subprocess.DEVNULL,
        env={**os.environ, "FHIR_CAT2_SOURCE__BULK__POLL_SECONDS": "0.2"},
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
        "server_cpu": (process_cpu(server_pid) - server_before) if server_pid else None,
        "report": json.loads((work / source / "run-report.json").read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", default="1", help="corpus copies on the server, or sizes measured in turn: 11,22"
    )
    parser.add_argument("--sources", default="search,bulk", help="which sources to measure at each size")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.copies.split(","))
    sources = args.sources.split(",")
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return
    with SekmetServer(settings={"log_inbound": False}) as server, tempfile.TemporaryDirectory() as tmp:
        server_pid = server._proc.pid if server._proc else None
        loaded, on_server = 0, 0
        for copies in sizes:
            started = time.monotonic()
            loaded += load(server.base_url, on_server, copies)
            print(f"loaded {loaded} resources ({copies} copies) in {time.monotonic() - started:.1f}s")
            on_server = copies
            walls = {}
            for source in sources:
                work = Path(tmp) / f"{copies}-{source}"
                work.mkdir()
                got = timed_sync(server.base_url, work, source, server_pid)
                report, wall, cpu = got["report"], got["wall"], got["cpu"]
                walls[source] = wall
                read = report["resources_read"]
                server_cpu = got["server_cpu"]
                line = (
                    f"{copies:>3} copies {source:>6}: {wall:6.1f}s  {read:>7} resources read"
                    f" ({read / wall:,.0f}/s), {report.get('requests')} requests,"
                    f" {report['patients_affected']} patients, fhir-cat2 CPU {cpu:.1f}s ({cpu / wall:.0%} of"
                    f" wall), server CPU {server_cpu or 0:.1f}s, fhir-cat2 peak RSS {got['rss_mib']:.0f} MiB,"
                    f" exit {report.get('exit_code')}"
                )
                seconds = (report.get("bulk_export") or {}).get("seconds")
                if seconds:
                    line += (
                        f"; export {seconds['export']:.1f}s, download {seconds['download']:.1f}s,"
                        f" last byte to last output {seconds['after_last_byte']:.1f}s"
                    )
                print(line, flush=True)
            if {"search", "bulk"} <= walls.keys():
                ratio = walls["search"] / walls["bulk"]
                print(f"{copies:>3} copies: bulk is {ratio:.1f}x search", flush=True)


if __name__ == "__main__":
    main()
