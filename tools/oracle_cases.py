"""Cross-check the generated cases (tests/oracle) with the reference engine, and record what it returned.

Run by hand from the project root, next to ``../shared`` or with ``FHIR_CAT2_SHARED`` naming it (needs
node; the oracle installs fqm-execution from npm once)::

    .venv/bin/python tools/oracle_cases.py                      # every measure that has cases
    .venv/bin/python tools/oracle_cases.py --measures CMS165    # some
    .venv/bin/python tools/oracle_cases.py --record             # and keep the oracle's populations

Writes each case as a Bundle to WORK/patients, runs ``../shared/tools/fqm-oracle/oracle.sh run`` on them
for the measures they were built for, runs ``fhir-cat2 replay`` on the same files (individual
MeasureReports, deviations off) and prints ``oracle.sh compare``. ``--record`` merges the oracle's
populations of the measures run into ``tests/oracle/expected.json`` (per measure: the patients evaluated and
the counts that are not 0), which ``tests/test_oracle_cases.py`` checks offline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.oracle.cases import PERIOD, all_cases, bundle  # noqa: E402

SHARED = Path(os.environ.get("FHIR_CAT2_SHARED", ROOT.parent / "shared"))  # as tests/conftest.py finds it
ORACLE = SHARED / "tools" / "fqm-oracle" / "oracle.sh"
EXPECTED = ROOT / "tests" / "oracle" / "expected.json"


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The oracle's results, per measure: every patient it evaluated, and only the counts that are not 0."""
    out: dict[str, Any] = {}
    for url, patients in results.items():
        counts = {}
        for patient, groups in patients.items():
            kept = {g: {c: n for c, n in pops.items() if n} for g, pops in groups.items()}
            kept = {g: pops for g, pops in kept.items() if pops}
            if kept:
                counts[patient] = kept
        out[url] = {"patients": sorted(patients), "counts": counts}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measures", help="CMS ids, comma-separated (default: every measure with cases)")
    parser.add_argument("--record", action="store_true", help="merge the oracle's results into expected.json")
    parser.add_argument("--work", type=Path, help="keep the patients, results and outputs here")
    args = parser.parse_args()
    if not ORACLE.is_file():
        print(f"the oracle is not here: {ORACLE}", file=sys.stderr)
        return 2
    cases = all_cases()
    wanted = sorted({m for c in cases for m in c.measures})
    if args.measures:
        wanted = [m.strip().upper() for m in args.measures.split(",")]
    chosen = [c for c in cases if set(c.measures) & set(wanted)]
    work = args.work or Path(tempfile.mkdtemp(prefix="oracle-cases-"))
    patients = work / "patients"
    patients.mkdir(parents=True, exist_ok=True)
    for made in chosen:
        (patients / f"{made.name}.json").write_text(json.dumps(bundle(made), indent=1))
    results = work / "oracle.json"
    run = [str(ORACLE), "run", "--measures", ",".join(wanted), "--period", str(PERIOD), "--out", str(results)]
    subprocess.run([*run, str(patients)], check=True)
    out = work / "out"
    replay = [sys.executable, "-m", "fhir_cat2", "replay", str(patients), "--out", str(out)]
    replay += ["--period", str(PERIOD), "--emit", "measure-report", "--report", "individual", "--no-progress"]
    subprocess.run(replay, check=False)
    compared = subprocess.run([str(ORACLE), "compare", str(results), str(out)], check=False)
    if args.record:
        recorded = json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}
        recorded.update(compact(json.loads(results.read_text())))
        EXPECTED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"recorded -> {EXPECTED.relative_to(ROOT)}")
    print(f"work folder: {work}")
    return compared.returncode


if __name__ == "__main__":
    sys.exit(main())
