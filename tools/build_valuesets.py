"""Write the compact value-set tables shipped in the package, for every value set a rules table names.

Usage: python tools/build_valuesets.py [--rules fhir_cat2/data/rules.yaml] --vsac DIR
       [--out fhir_cat2/data/valuesets]

Reads FHIR ValueSet expansions (as VSAC serves them) and keeps only system and code: no display text,
so no CPT descriptors are ever shipped (licensing). Output is sorted, so rebuilding is reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_cat2.rules.loader import read_table, referenced_valuesets  # noqa: E402
from fhir_cat2.rules.valuesets import ValueSetRegistry  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", default=str(ROOT / "fhir_cat2" / "data" / "rules.yaml"))
    parser.add_argument("--vsac", required=True)
    parser.add_argument("--out", default=str(ROOT / "fhir_cat2" / "data" / "valuesets"))
    args = parser.parse_args()
    wanted = referenced_valuesets(read_table(args.rules))  # with the files the table includes
    registry = ValueSetRegistry()
    registry.load_dir(args.vsac)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    missing = []
    written: set[str] = set()
    for ref in sorted(wanted):
        if ref not in registry:
            missing.append(ref)
            continue
        vs = registry.get(ref)
        codes: dict[str, list[str]] = {}
        for system, code in sorted(vs.codes):
            codes.setdefault(system, []).append(code)
        data = {
            "oid": vs.oid,
            "url": vs.url,
            "name": vs.name,
            "version": vs.version,
            "source": (
                "VSAC expansion as published in cqframework/ecqm-content-qicore-2024 (CC0-1.0); codes only"
            ),
            "codes": codes,
        }
        name = f"{vs.oid or ref}.json"
        (out / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        written.add(name)
    stale = [p for p in out.glob("*.json") if p.name not in written]
    for path in stale:  # a value set the rules table no longer names
        path.unlink()
    print(f"wrote {len(written)} value sets to {out}; removed {len(stale)} no longer named", file=sys.stderr)
    if missing:
        print("not found: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
