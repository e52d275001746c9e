"""Regenerate the README's measures catalogue table from the rules table (``fhir-cat2 measures list``).

Usage: python tools/readme_catalogue.py [--check]

The table sits between the markers ``<!-- catalogue:start -->`` and ``<!-- catalogue:end -->``; what each
row says comes from the measure definitions (``what:``, ``logic:``, groups, basis, claims codes) and CMS's
QPP measures data. ``--check`` exits 1 when the README is not what the table would generate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_cat2.catalogue import as_markdown, catalogue  # noqa: E402
from fhir_cat2.rules.loader import read_table  # noqa: E402

START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def regenerated(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md: the markers {START} ... {END} are missing")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    table = as_markdown(catalogue(read_table()))
    return f"{head}{START}\n{table}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    path = ROOT / "README.md"
    current = path.read_text(encoding="utf-8")
    wanted = regenerated(current)
    if args.check:
        if current != wanted:
            print(
                "README.md: the catalogue table is stale: python tools/readme_catalogue.py", file=sys.stderr
            )
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
