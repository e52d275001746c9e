"""What a finished run left in its output folder, read back for the quality team's products (the HTML
report, the MIPS submission file): the summary MeasureReports' counts per measure, group and stratifier.

A run folder is trusted no more than any input: a line that is not a MeasureReport, a count that is not a
whole number, a report without a period is refused with the file, line and field named.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from ..errors import FhirCat2Error

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"


class RunFolderError(FhirCat2Error):
    """A run folder that cannot be read back: names the folder or the file and line."""


@dataclass(frozen=True)
class StratumCounts:
    id: str
    """The stratifier id of the published Measure (our stratifiers have one boolean stratum)."""
    counts: Mapping[str, int]


@dataclass(frozen=True)
class GroupCounts:
    id: str
    counts: Mapping[str, int]
    """Population code (initial-population, denominator, ...) -> count."""
    strata: tuple[StratumCounts, ...] = ()


@dataclass(frozen=True)
class SummaryReport:
    measure: str
    """The Measure's canonical URL, without its version."""
    version: str | None
    period: tuple[date, date]
    groups: tuple[GroupCounts, ...]
    where: str
    """File and line, for messages."""

    def group(self, group_id: str) -> GroupCounts | None:
        return next((g for g in self.groups if g.id == group_id), None)


def read_summaries(run_dir: str | Path) -> list[SummaryReport]:
    """The summary MeasureReports of a run folder, in file order. Individual reports are skipped."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: not a run output folder (no such folder)")
    path = folder / "MeasureReport.ndjson"
    if not path.is_file():
        raise RunFolderError(
            f"{folder}: no MeasureReport.ndjson "
            "(run replay or sync with --emit measure-report --report summary)"
        )
    reports: list[SummaryReport] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise RunFolderError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(resource, dict) or resource.get("resourceType") != "MeasureReport":
                raise RunFolderError(f"{where}: not a MeasureReport")
            if resource.get("type") != "summary":
                continue
            reports.append(_summary(resource, where))
    return reports


def _summary(resource: Mapping[str, Any], where: str) -> SummaryReport:
    canonical = resource.get("measure")
    if not isinstance(canonical, str) or not canonical:
        raise RunFolderError(f"{where}: MeasureReport.measure is missing")
    url, _, version = canonical.partition("|")
    period = resource.get("period") or {}
    try:
        start = date.fromisoformat(str(period["start"])[:10])
        end = date.fromisoformat(str(period["end"])[:10])
    except (KeyError, ValueError, TypeError):
        raise RunFolderError(f"{where}: MeasureReport.period needs a start and an end date") from None
    groups = tuple(_group(g, f"{where} group[{i}]") for i, g in enumerate(resource.get("group") or []))
    return SummaryReport(url, version or None, (start, end), groups, where)


def _group(group: Mapping[str, Any], where: str) -> GroupCounts:
    group_id = group.get("id")
    if not isinstance(group_id, str):
        raise RunFolderError(f"{where}: group.id is missing")
    strata = tuple(
        StratumCounts(str(s.get("id")), _counts(stratum.get("population") or [], f"{where} stratifier[{i}]"))
        for i, s in enumerate(group.get("stratifier") or [])
        for stratum in (s.get("stratum") or [])[:1]
    )
    return GroupCounts(group_id, _counts(group.get("population") or [], where), strata)


def _counts(populations: list[Mapping[str, Any]], where: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index, population in enumerate(populations):
        codings = (population.get("code") or {}).get("coding") or []
        code = next((c.get("code") for c in codings if c.get("system") == POPULATION_SYSTEM), None)
        count = population.get("count")
        if not isinstance(code, str):
            raise RunFolderError(f"{where} population[{index}]: no measure-population code")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise RunFolderError(f"{where} population[{index}] ({code}): count is not a whole number >= 0")
        counts[code] = count
    return counts


@dataclass(frozen=True)
class IndividualReport:
    subject: str
    """Patient/<id>."""
    measure: str
    groups: tuple[GroupCounts, ...]


@dataclass(frozen=True)
class RunFolder:
    """Everything the HTML report reads from one run's output folder."""

    path: Path
    run_report: Mapping[str, Any]
    """run-report.json ({} when the folder has none)."""
    summaries: tuple[SummaryReport, ...]
    individuals: tuple[IndividualReport, ...]
    unrecognised: tuple[Mapping[str, str], ...]
    """Rows of unrecognised-codes.csv."""
    gaps: tuple[Mapping[str, str], ...]
    """Rows of gaps.csv (care gaps), when the run wrote it."""

    @property
    def period(self) -> tuple[date, date] | None:
        if self.summaries:
            return self.summaries[0].period
        period = self.run_report.get("period") or {}
        try:
            return date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
        except (KeyError, TypeError, ValueError):
            return None

    def summary(self, url: str) -> SummaryReport | None:
        return next((s for s in self.summaries if s.measure == url), None)


def read_run_folder(run_dir: str | Path) -> RunFolder:
    folder = Path(run_dir)
    summaries = read_summaries(folder)
    report_path = folder / "run-report.json"
    run_report: Mapping[str, Any] = {}
    if report_path.is_file():
        try:
            loaded = orjson.loads(report_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise RunFolderError(f"{report_path}: not JSON ({exc.msg})") from None
        if not isinstance(loaded, dict):
            raise RunFolderError(f"{report_path}: not a run report")
        run_report = loaded
    return RunFolder(
        folder,
        run_report,
        tuple(summaries),
        tuple(_individuals(folder / "MeasureReport.ndjson")),
        _csv_rows(folder / "unrecognised-codes.csv"),
        _csv_rows(folder / "gaps.csv"),
    )


def _individuals(path: Path) -> list[IndividualReport]:
    out = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            resource = orjson.loads(line)  # read_summaries has checked every line
            if resource.get("type") != "individual":
                continue
            where = f"{path} line {number}"
            subject = (resource.get("subject") or {}).get("reference")
            canonical = resource.get("measure")
            if not isinstance(subject, str) or not isinstance(canonical, str):
                raise RunFolderError(f"{where}: an individual MeasureReport needs subject and measure")
            groups = tuple(
                _group(g, f"{where} group[{i}]") for i, g in enumerate(resource.get("group") or [])
            )
            out.append(IndividualReport(subject, canonical.partition("|")[0], groups))
    return out


def _csv_rows(path: Path) -> tuple[Mapping[str, str], ...]:
    if not path.is_file():
        return ()
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(dict(row) for row in csv.DictReader(handle))
