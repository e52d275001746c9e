"""Per-measure cost benchmark: what each measure costs per patient, and per patient who reaches its initial
population, on a corpus replayed in one process.

Run by hand with the project's interpreter (it is not a test)::

    .venv/bin/python benchmarks/measure_cost.py --corpus /path/to/corpus [--period 2019] [--rounds 3]

It replays the corpus with ``--workers 1`` in this process, wrapping ``MeasureEvaluator.evaluate`` to time
each measure's evaluation of each patient (``perf_counter``; the full-period evaluation only, the one
MeasureReports come from). Reading and parsing the input, grouping, the patient's readings, facts and
code indexes (shared by all measures) and writing outputs are not in these figures: the replay benchmarks
(``benchmarks/replay.py``, ``benchmarks/engines.py``) measure the whole. The best of ``--rounds`` is kept
per measure (the machine's noise only adds time). The claim it checks: a measure whose required codes a
patient lacks costs (next to) nothing for that patient; the cost is paid by those in its initial population.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_cat2.cli import main as cli_main  # noqa: E402
from fhir_cat2.measures.evaluate import MeasureEvaluator  # noqa: E402


def one_round(corpus: str, period: str | None) -> tuple[dict[str, float], Counter[str], Counter[str], float]:
    seconds: dict[str, float] = defaultdict(float)
    patients: Counter[str] = Counter()
    initial: Counter[str] = Counter()
    original = MeasureEvaluator.evaluate

    def timed(self: MeasureEvaluator, measure: Any, ctx: Any, readings: Any, **kwargs: Any) -> Any:
        if kwargs:  # as-of evaluations for claims codes: not the measure's own cost
            return original(self, measure, ctx, readings, **kwargs)
        self.criteria.facts(ctx, readings)  # the patient's facts, shared by every measure: built untimed
        for resource_type in {"Encounter", "Observation", "Condition", *ctx.events}:
            ctx.has_codes(resource_type, frozenset())  # and its code indexes (built by the first to ask)
        started = time.perf_counter()
        result = original(self, measure, ctx, readings)
        seconds[measure.id] += time.perf_counter() - started
        patients[measure.id] += 1
        initial[measure.id] += bool(result.in_initial_population)
        return result

    MeasureEvaluator.evaluate = timed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as out:
            argv = ["replay", corpus, "--out", out, "--workers", "1", "--report", "summary", "--no-progress"]
            if period:
                argv += ["--period", period]
            started = time.perf_counter()
            code = cli_main(argv)
            total = time.perf_counter() - started
            if code not in (0, 1):
                raise SystemExit(f"replay exited {code}")
    finally:
        MeasureEvaluator.evaluate = original  # type: ignore[method-assign]
    return dict(seconds), patients, initial, total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--period")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, float] = {}
    totals = []
    patients: Counter[str] = Counter()
    initial: Counter[str] = Counter()
    for _ in range(args.rounds):
        seconds, patients, initial, total = one_round(args.corpus, args.period)
        totals.append(total)
        for measure, value in seconds.items():
            best[measure] = min(value, best.get(measure, value))
    evaluated = max(patients.values()) if patients else 0
    print(f"corpus {args.corpus}: {evaluated} patients; replay {min(totals):.2f} s best of {args.rounds}")
    print("| measure | patients in IP | all evaluations (ms) | per patient (µs) | per IP patient (µs) |")
    print("|---|---|---|---|---|")
    for measure in sorted(best, key=lambda m: -best[m]):
        per_patient = 1e6 * best[measure] / max(1, patients[measure])
        per_ip = f"{1e6 * best[measure] / initial[measure]:.0f}" if initial[measure] else "-"
        total_ms = 1e3 * best[measure]
        print(f"| {measure} | {initial[measure]} | {total_ms:.1f} | {per_patient:.1f} | {per_ip} |")
    print(f"all measures: {1e3 * sum(best.values()):.0f} ms of {1e3 * min(totals):.0f} ms replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
