"""Write the QPP measure facts the MIPS submission export needs, for every measure of the rules table.

Usage: python tools/build_qpp_measures.py --measures-data ../shared/reference/cms-qpp/2025_measures-data.json
       --year 2025 [--rules fhir_cat2/data/rules.yaml] [--out fhir_cat2/data/qpp]

Reads CMS's qpp-measures-data ``measures-data.json`` of one performance year and keeps, for each MIPS
quality measure id the rules table's measures carry (``mips:``), what a submission must agree with: the
metric type (single or multi performance rate), the overall algorithm of multi-rate measures, the strata
names in the order CMS lists them, whether lower is better, the submission methods and the eCQM id. CMS's
measure data is a US government work; titles and descriptions are left out (the export does not need them).
Output is sorted, so rebuilding is reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_cat2.rules.loader import read_table  # noqa: E402


def catalogue_mips_ids(rules: str) -> set[str]:
    table = read_table(rules)
    return {m.mips for m in table.measures if m.mips is not None}


def extract(measures_data: list[dict[str, object]], wanted: set[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for entry in measures_data:
        measure_id = str(entry.get("measureId"))
        if measure_id not in wanted or entry.get("category") != "quality":
            continue
        strata = entry.get("strata") or []
        assert isinstance(strata, list)
        out[measure_id] = {
            "eMeasureId": entry.get("eMeasureId"),
            "metricType": entry.get("metricType"),
            "overallAlgorithm": entry.get("overallAlgorithm"),
            "isInverse": bool(entry.get("isInverse")),
            "submissionMethods": sorted(str(m) for m in entry.get("submissionMethods") or []),  # type: ignore[attr-defined]
            "strata": [s.get("name") for s in strata if isinstance(s, dict)],
        }
    return dict(sorted(out.items()))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measures-data", required=True)
    parser.add_argument("--year", required=True, type=int)
    parser.add_argument("--rules", default=str(ROOT / "fhir_cat2" / "data" / "rules.yaml"))
    parser.add_argument("--out", default=str(ROOT / "fhir_cat2" / "data" / "qpp"))
    args = parser.parse_args()
    source = Path(args.measures_data)
    raw = source.read_bytes()
    data = json.loads(raw)
    wanted = catalogue_mips_ids(args.rules)
    measures = extract(data, wanted)
    missing = sorted(wanted - set(measures))
    document = {
        "performanceYear": args.year,
        "source": {
            "file": f"CMSgov/qpp-measures-data measures/{args.year}/measures-data.json",
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "measures": measures,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"measures-{args.year}.json"
    target.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"{target}: {len(measures)} measures")
    if missing:
        print(f"not in the {args.year} measures data: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
