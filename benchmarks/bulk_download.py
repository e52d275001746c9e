"""Bulk Data download benchmark: ``BulkExport.download`` against reading the same NDJSON files from disk.

Run by hand with the project's interpreter (it is not a test)::

    .venv/bin/python benchmarks/bulk_download.py --resources 400000 --files 8 --concurrency 4
    .venv/bin/python benchmarks/bulk_download.py --resources 400000 --files 8 --gzip

It writes seeded synthetic Observation NDJSON files into a temporary folder and serves them from a local
threaded HTTP server on 127.0.0.1 (real sockets, optional ``Content-Encoding: gzip``), then times

* download: a manifest of those files through ``BulkExport.download`` (streamed, ``--concurrency`` files at
  once, each line parsed into an input item or a rejection), counting items;
* files: the same files read from disk by ``files.read_file`` (what replay reads them with), for comparison.

It prints resources/s on wall time, the CPU time of this process, and the process's peak RSS before and
after the download (it must stay flat in corpus size: run it at two sizes). Network time is loopback only:
against a real EHR the server's export rate (tens of resources/s per the published Epic figures) dominates.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import random
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import orjson

from fhir_cat2.fhir import FhirClient
from fhir_cat2.sources.bulk import BulkExport, Manifest
from fhir_cat2.sources.files import InputItem, read_file


def observation(rng: random.Random, n: int) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Observation",
            "id": f"obs-{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": f"Patient/p{rng.randrange(100000)}"},
            "effectiveDateTime": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "valueQuantity": {"value": round(rng.uniform(4, 12), 1), "unit": "%"},
        }
    )


def write_files(folder: Path, resources: int, files: int, compress: bool) -> list[Path]:
    rng = random.Random(12)
    paths = []
    per_file = resources // files
    for f in range(files):
        path = folder / f"Observation-{f}.ndjson{'.gz' if compress else ''}"
        with gzip.open(path, "wb", 1) if compress else open(path, "wb") as handle:
            for n in range(per_file):  # line by line: the peak RSS measured later is the download's own
                handle.write(observation(rng, f * per_file + n) + b"\n")
        paths.append(path)
    return paths


def serve(folder: Path, compress: bool) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = folder / self.path.rsplit("/", 1)[-1]
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+ndjson")
            if compress:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as handle:  # streamed, so the server's memory does not count
                shutil.copyfileobj(handle, self.wfile)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--resources", type=int, default=200000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--gzip", action="store_true", help="serve with Content-Encoding: gzip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), args.resources, args.files, args.gzip)
        size = sum(p.stat().st_size for p in paths)

        server = serve(Path(tmp), args.gzip)
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        body = {
            "transactionTime": "2026-01-01T00:00:00Z",
            "requiresAccessToken": False,
            "output": [{"type": "Observation", "url": f"{base}/files/{p.name}"} for p in paths],
        }
        client = FhirClient(base)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu = time.perf_counter(), time.process_time()
        items = sum(
            1
            for _ in BulkExport(client, concurrency=args.concurrency).download(Manifest.from_json(body, base))
        )
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        server.shutdown()
        client.close()

        started, cpu = time.perf_counter(), time.process_time()
        parsed = sum(1 for path in paths for item in read_file(path) if isinstance(item, InputItem))
        parse_wall, parse_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert items == parsed == args.resources // args.files * args.files
    print(f"{items} resources in {args.files} files, {size / 1e6:.0f} MB{' gzip' if args.gzip else ''}")
    print(
        f"read_file from disk: {parse_wall:.2f}s wall, {parsed / parse_wall:,.0f} resources/s,"
        f" cpu {parse_cpu:.2f}s"
    )
    print(
        f"download (concurrency {args.concurrency}): {wall:.2f}s wall, {items / wall:,.0f} resources/s,"
        f" cpu {used:.2f}s (server threads included);"
        f" peak RSS {rss_before / 1024:.0f} MB before, {rss_after / 1024:.0f} MB after"
    )


if __name__ == "__main__":
    main()
