"""Reading the MeasureReports of a test run: the reports of one measure, and the counts of a group's
populations and of its strata."""

from __future__ import annotations

from typing import Any

from ..conftest import Run

Report = dict[str, Any]


def reports_of(run: Run, measure: str) -> list[Report]:
    """The MeasureReports of ``measure``: its canonical URL, with or without ``|version``."""
    return [r for r in run.reports if r["measure"] == measure or r["measure"].startswith(f"{measure}|")]


def summary_of(run: Run, measure: str) -> Report:
    """The one summary MeasureReport of ``measure`` (see ``reports_of``)."""
    [summary] = [r for r in reports_of(run, measure) if r["type"] == "summary"]
    return summary


def counts_of(populations: list[dict[str, Any]]) -> dict[str, int]:
    """Population code -> count, of a group's or a stratum's populations."""
    return {p["code"]["coding"][0]["code"]: p["count"] for p in populations}


def strata_of(group: Report) -> dict[str, dict[str, int]]:
    """Stratifier id -> the population counts of its (first) stratum."""
    return {s["id"]: counts_of(s["stratum"][0]["population"]) for s in group["stratifier"]}
