"""``gaps.csv``: the care gaps of a run's Gaps in Care Bundles, one row per gap, for care coordinators.

Read back from ``Bundle.ndjson`` once the run's files are complete, so every engine (one process, forked
workers, Spark) writes the same bytes: its Bundles are the same bytes, in patient order. Owner-only, like
every output with patient data.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson

from .emit.gaps import CSV_COLUMNS, gap_rows
from .sinks.files import open_private

GAPS_CSV = "gaps.csv"


def write_gaps_csv(out_dir: str | Path) -> Path:
    """``OUT/gaps.csv`` from ``OUT/Bundle.ndjson``: Bundles in patient order, each one's rows sorted by
    measure, group and episode (a header only when no patient has an open gap)."""
    folder = Path(out_dir)
    source = folder / "Bundle.ndjson"
    target = folder / GAPS_CSV
    tmp = target.with_name(target.name + ".tmp")
    with open_private(tmp) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        if source.exists():
            with open(source, "rb") as lines:
                for line in lines:
                    bundle = orjson.loads(line)
                    if bundle.get("resourceType") == "Bundle":
                        writer.writerows(gap_rows(bundle))
        text.flush()
        text.detach()
    tmp.replace(target)
    return target
