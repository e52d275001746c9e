"""Engines benchmark: the same replay on one process, on forked workers and on Spark ``local[N]``.

Run by hand with the project's interpreter (it is not a test), Spark installed (``pip install -e
'.[spark]'``) and Java 17 on the PATH::

    .venv/bin/python benchmarks/engines.py --resources 400000
    .venv/bin/python benchmarks/engines.py --corpus DIR --engines workers1,workers2,spark2
    .venv/bin/python benchmarks/engines.py --resources 400000 --against-commit 7a0d32f  # old vs new replay

It writes a seeded synthetic corpus (``benchmarks/replay.py``'s generator, bulk NDJSON: one file per resource
type, all patients mixed), then runs each engine as a child process of its own, the engines interleaved over
``--rounds`` so a machine whose speed drifts affects them alike. For every run, sampled from ``/proc``
every 100 ms: wall time; CPU seconds summed over the process tree (Spark's JVM, never reaped, included; a
process that lives less than 100 ms is missed); the peak resident memory of the driver (the ``fhir-cat2``
process), of its largest worker process (a forked worker, or Spark's JVM or a Python worker), and of the
whole tree at its highest. Outputs are compared byte for byte with the first engine's (Spark's after the
documented merge, ``cat part-*``). For Spark it also reports patients per core-second of the evaluation
stage (from the run report), the figure to size a cluster with.

``--against-commit REV`` also times replay of that commit (checked out into a temporary worktree and run from
its source tree with this interpreter), for "the refactor must not slow replay".
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from replay import compile_package, generate

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson")


@dataclass
class Sample:
    wall: float = 0.0
    cpu: float = 0.0
    driver_mb: float = 0.0
    workers_mb: float = 0.0
    tree_mb: float = 0.0
    exit_code: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    report: dict[str, object] = field(default_factory=dict)


def _children(pid: int) -> list[int]:
    try:
        found = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
        return found
    except OSError:
        return []


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (``/proc/PID/stat`` fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run(command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run one engine as a child (in ``cwd``: ``python -m`` imports from the working folder before
    PYTHONPATH, so an older commit runs from its own tree); sample its process tree's memory while it runs
    (CPU: see main)."""
    sample = Sample()
    peaks: dict[int, float] = {}
    cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree (the JVM is never reaped)
    with log.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        while child.poll() is None:
            tree, stack = [], [child.pid]
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack += _children(pid)
            sizes = {pid: _rss_mb(pid) for pid in tree}
            for pid in tree:
                cpu[pid] = max(cpu.get(pid, 0.0), _cpu_seconds(pid))
            for pid, size in sizes.items():
                peaks[pid] = max(peaks.get(pid, 0.0), size)
            sample.tree_mb = max(sample.tree_mb, sum(sizes.values()))
            time.sleep(0.1)
        sample.wall = time.perf_counter() - started
    sample.cpu = sum(cpu.values())
    sample.exit_code = child.returncode
    sample.driver_mb = peaks.get(child.pid, 0.0)
    sample.workers_mb = max((size for pid, size in peaks.items() if pid != child.pid), default=0.0)
    return sample


def digest_outputs(out: Path) -> dict[str, str]:
    """sha256 of each output, Spark's folders of part files concatenated in name order (the merge)."""
    digests = {}
    for name in OUTPUTS:
        path = out / name
        folder = out / name.removesuffix(".ndjson")
        h = hashlib.sha256()
        if path.is_file():
            h.update(path.read_bytes())
        elif folder.is_dir():
            for part in sorted(folder.glob("part-*")):
                h.update(part.read_bytes())
        else:
            continue
        digests[name] = h.hexdigest()
    return digests


def engine_command(engine: str, corpus: Path, out: Path, period: int) -> list[str]:
    command = [sys.executable, "-m", "fhir_cat2", "replay", str(corpus), "--out", str(out)]
    command += ["--period", str(period), "--now", "2025-06-01T00:00:00Z", "--quarantine-exit-zero"]
    if engine.startswith("workers"):
        return [*command, "--workers", engine.removeprefix("workers")]
    if engine.startswith("spark"):
        return [*command, "--engine", "spark", "--spark-master", f"local[{engine.removeprefix('spark')}]"]
    raise SystemExit(f"unknown engine {engine}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; without --keep its work folder (corpus, outputs, the old commit's worktree) goes."""
    work: list[Path] = []
    try:
        return _main(argv, work)
    finally:
        for folder in work:
            for tree in [p for p in folder.glob("commit-*") if p.is_dir()]:
                # a worktree is registered in the repository too: remove it there, not only its files
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
                )
            shutil.rmtree(folder, ignore_errors=True)


def _main(argv: list[str] | None, cleanup: list[Path]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=400_000)
    parser.add_argument("--corpus", metavar="DIR", help="replay this corpus instead of generating one")
    parser.add_argument("--engines", default="workers1,workers2,spark2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--period", type=int, default=2024)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--against-commit", metavar="REV", help="also time replay of this commit")
    parser.add_argument("--keep", metavar="DIR", help="work here and keep it")
    args = parser.parse_args(argv)
    compile_package()
    work = Path(args.keep or tempfile.mkdtemp(prefix="fhir-cat2-engines-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.keep:
        cleanup.append(work)
    corpus = Path(args.corpus) if args.corpus else work / "corpus"
    if not args.corpus and not corpus.exists():
        generate(corpus, args.resources, ["ndjson"], args.seed, gz=False)
    engines = args.engines.split(",")
    env = dict(os.environ)
    old_env = None
    tree = None
    if args.against_commit:
        tree = work / f"commit-{args.against_commit}"
        if not tree.exists():
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.against_commit]
            )
        old_env = {**env, "PYTHONPATH": str(tree)}
        engines += [f"{e}@{args.against_commit}" for e in engines if e.startswith("workers")]
    results: dict[str, list[Sample]] = {e: [] for e in engines}
    for round_ in range(args.rounds):
        for engine in engines:
            name, _, commit = engine.partition("@")
            out = work / f"out-{engine}-{round_}"
            sample = run(
                engine_command(name, corpus, out, args.period),
                work / f"{engine}-{round_}.log",
                old_env if commit else env,
                tree if commit else None,
            )
            if sample.exit_code != 0:
                raise SystemExit(f"{engine} failed ({sample.exit_code}): see {work}/{engine}-{round_}.log")
            sample.digests = digest_outputs(out)
            report_path = out / "run-report.json"
            sample.report = orjson.loads(report_path.read_bytes()) if report_path.exists() else {}
            results[engine].append(sample)
            print(
                f"  round {round_ + 1} {engine}: {sample.wall:.1f}s wall, {sample.cpu:.1f}s CPU,"
                f" driver {sample.driver_mb:.0f} MB, workers {sample.workers_mb:.0f} MB",
                flush=True,
            )
    reference = results[engines[0]][0].digests
    resources = results[engines[0]][0].report.get("resources_read")
    patients = results[engines[0]][0].report.get("patients")
    print(
        f"\ncorpus: {resources} resources, {patients} patients; {os.cpu_count()} CPUs; {args.rounds} rounds"
    )
    print(
        "| engine | wall (best / mean) | CPU | driver peak RSS | largest worker peak RSS | tree peak RSS |"
        " outputs |"
    )
    print("|---|---|---|---|---|---|---|")
    for engine, samples in results.items():
        walls = [s.wall for s in samples]
        same = all(s.digests == reference for s in samples)
        print(
            f"| {engine} | {min(walls):.1f} s / {sum(walls) / len(walls):.1f} s |"
            f" {min(s.cpu for s in samples):.1f} s | {max(s.driver_mb for s in samples):.0f} MB |"
            f" {max(s.workers_mb for s in samples):.0f} MB | {max(s.tree_mb for s in samples):.0f} MB |"
            f" {'identical' if same else 'DIFFER'} |"
        )
    for engine, samples in results.items():
        spark = samples[0].report.get("spark")
        if isinstance(spark, dict) and spark.get("evaluate_core_seconds"):
            rate = float(str(patients)) / float(str(spark["evaluate_core_seconds"]))
            print(f"{engine}: {rate:.0f} patients per core-second in the evaluation stage")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
