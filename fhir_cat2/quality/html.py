"""The quality team's report: one self-contained HTML file from one or more runs' output folders.

No script, no font, no image from the network: hospital networks are closed, and the file must open the
same in a browser, an e-mail attachment or on paper (print styles included). Charts are inline SVG
(``charts.py``). The same run folders give the same bytes: nothing in the page depends on when it was made.

Runs are ordered by their measurement period, then by when they ran; the last one is "this run", the one
before it "the previous run". Strata by clinician, organization and location come from the run report's
``measure_attribution`` (the encounter each patient was attributed to); a stratum with fewer patients in
the initial population than ``min_stratum`` is shown without its numbers (small-number suppression).
``patient_detail=False`` leaves out everything patient-level (the patients not meeting each measure, open
care gaps, the quarantined resources): that file can be shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from ..rules.measure_schema import MeasureDef
from . import charts
from .rundir import GroupCounts, RunFolder

POPULATIONS = (
    ("initial-population", "Initial population"),
    ("denominator", "Denominator"),
    ("denominator-exclusion", "Exclusions"),
    ("denominator-exception", "Exceptions"),
    ("numerator", "Numerator"),
)
PATIENT_LIST_LIMIT = 200
CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""Nothing may load from anywhere, and no script runs: the page is complete in itself."""
FORMULA = "numerator / (denominator \u2212 exclusions \u2212 exceptions)"
DIMENSIONS = (("practitioner", "Clinician"), ("organization", "Organization"), ("location", "Location"))

CSS = """
body{font-family:Helvetica,Arial,sans-serif;color:#222;margin:24px;max-width:1100px}
h1{font-size:24px;margin-bottom:4px}
h2{font-size:20px;border-bottom:2px solid #1f5f8b;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:right;vertical-align:top}
th:first-child,td:first-child,.text{text-align:left}
thead th{background:#eef3f7}
.note{color:#555;font-size:13px}
.inverse{display:inline-block;background:#fbeaea;color:#8b1f1f;border:1px solid #d9a3a3;border-radius:3px;
padding:1px 6px;font-size:12px;margin-left:8px}
.formula{font-family:Menlo,Consolas,monospace;font-size:12px;color:#444}
.suppressed{color:#777;font-style:italic}
.up{color:#1e7b34}.down{color:#a12b2b}
section.measure{page-break-inside:avoid;break-inside:avoid}
figure.chart{margin:8px 0}figure.chart svg{max-width:760px;width:100%;height:auto}
nav ul{columns:3;font-size:13px}
@media print{body{margin:0;max-width:none}nav{display:none}h2{page-break-after:avoid}
section.measure,figure.chart,table{page-break-inside:avoid;break-inside:avoid}}
"""


@dataclass(frozen=True)
class ReportOptions:
    patient_detail: bool = True
    min_stratum: int = 11
    title: str = "Quality measure report"


def rate(counts: Mapping[str, int]) -> float | None:
    """numerator / (denominator - exclusions - exceptions), 0..1 (as the MeasureReports' measureScore)."""
    eligible = (
        counts.get("denominator", 0)
        - counts.get("denominator-exclusion", 0)
        - counts.get("denominator-exception", 0)
    )
    if eligible <= 0:
        return None
    return counts.get("numerator", 0) / eligible


def _table(head: str, rows: Sequence[str]) -> str:
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _rate_cell(measure: MeasureDef, group_id: str, counts: Mapping[str, int]) -> str:
    """The rate, with what a test (or a script reading the page) needs to find it again."""
    where = f'data-measure="{measure.id}" data-group="{escape(group_id)}"'
    return f'<td class="rate" {where}>{_pct(rate(counts))}</td>'


def _pct(value: float | None) -> str:
    return "no rate" if value is None else f"{100 * value:.1f}%"


def _formula(counts: Mapping[str, int]) -> str:
    d = counts.get("denominator", 0)
    x = counts.get("denominator-exclusion", 0)
    e = counts.get("denominator-exception", 0)
    n = counts.get("numerator", 0)
    value = rate(counts)
    result = _pct(value) if value is not None else "no rate: no patient left in the denominator"
    return f"{n} / ({d} \u2212 {x} \u2212 {e}) = {result}"


def run_label(run: RunFolder, runs: Sequence[RunFolder]) -> str:
    period = run.period
    if period is None:
        text = run.path.name
    elif (period[0].month, period[0].day, period[1].month, period[1].day) == (1, 1, 12, 31) and (
        period[0].year == period[1].year
    ):
        text = str(period[0].year)
    else:
        text = f"{period[0].isoformat()}..{period[1].isoformat()}"
    same = [r for r in runs if r.period == period]
    if len(same) > 1:
        started = str(run.run_report.get("started_at") or run.path.name)
        text += f" (run {started[:16].replace('T', ' ')})"
    return text


def order_runs(runs: Sequence[RunFolder]) -> list[RunFolder]:
    def key(run: RunFolder) -> tuple[str, str, str]:
        period = run.period
        return (
            period[0].isoformat() if period else "",
            str(run.run_report.get("started_at") or ""),
            str(run.path),
        )

    return sorted(runs, key=key)


def render(runs: Sequence[RunFolder], catalogue: Sequence[MeasureDef], options: ReportOptions) -> str:
    ordered = order_runs(runs)
    latest = ordered[-1]
    previous = ordered[-2] if len(ordered) > 1 else None
    labels = [run_label(r, ordered) for r in ordered]
    measures = [m for m in catalogue if m.url and latest.summary(m.url) is not None]
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(options.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(options.title)}</h1>",
        _runs_line(ordered, labels, options),
        _overview(measures, latest, labels[-1]),
    ]
    for measure in measures:
        parts.append(_measure_section(measure, ordered, labels, options))
    parts.append(_codes_section(latest, previous, labels))
    parts.append(_data_quality(latest, options))
    if options.patient_detail:
        parts.append(_patient_detail(measures, latest))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def _runs_line(runs: Sequence[RunFolder], labels: Sequence[str], options: ReportOptions) -> str:
    latest = runs[-1].run_report
    program = latest.get("program")
    deviations = latest.get("deviations") or []
    items = "".join(
        f"<li>{escape(label)}: <code>{escape(r.path.name)}</code></li>"
        for r, label in zip(runs, labels, strict=True)
    )
    extra = []
    if program:
        extra.append(f"Program of this run: <b>{escape(str(program))}</b>.")
    extra.append(
        "Deviations from the published logic: "
        + (escape(", ".join(str(d) for d in deviations)) if deviations else "none (measures as published)")
        + "."
    )
    extra.append(f"Strata with fewer than {options.min_stratum} patients are shown without numbers.")
    if not options.patient_detail:
        extra.append("Patient-level detail left out (this copy can be shared).")
    return (
        f'<p class="note">Runs ({len(runs)}), oldest first; the last is this run:</p>'
        f'<ul class="note">{items}</ul><p class="note">{" ".join(extra)}</p>'
    )


def _group_name(measure: MeasureDef, index: int) -> str:
    if len(measure.groups) == 1:
        return measure.id
    rate_id = measure.groups[index].mips_rate
    return f"{measure.id} group {index + 1}" + (f" (MIPS {rate_id})" if rate_id else "")


def _overview(measures: Sequence[MeasureDef], latest: RunFolder, label: str) -> str:
    names: list[str] = []
    values: list[float | None] = []
    rows = []
    for measure in measures:
        summary = latest.summary(str(measure.url))
        assert summary is not None
        for index, group_def in enumerate(measure.groups):
            group = summary.group(group_def.id)
            counts = group.counts if group else {}
            value = rate(counts)
            if value is not None:  # the chart compares rates; the table lists every measure
                names.append(_group_name(measure, index))
                values.append(round(100 * value, 1))
            inverse = (
                ' <span class="inverse">lower is better</span>'
                if measure.improvement_notation == "decrease"
                else ""
            )
            rows.append(
                f'<tr><td><a href="#{measure.id}">{escape(_group_name(measure, index))}</a>{inverse}</td>'
                f'<td class="text">{escape(measure.title)}</td>'
                + "".join(f"<td>{counts.get(code, 0)}</td>" for code, _ in POPULATIONS)
                + _rate_cell(measure, group_def.id, counts)
                + "</tr>"
            )
    chart = charts.rate_bars("overview", f"Performance rate by measure, {label}", names, values)
    head = "".join(f"<th>{escape(title)}</th>" for _, title in POPULATIONS)
    nav = "".join(f'<li><a href="#{m.id}">{m.id}: {escape(m.title)}</a></li>' for m in measures)
    return (
        f'<nav><ul>{nav}</ul></nav><h2 id="overview">All measures, {escape(label)}</h2>'
        f'<figure class="chart" data-chart="overview">{chart}</figure>'
        + _table(f'<th>Measure</th><th class="text">Title</th>{head}<th>Rate</th>', rows)
    )


def _measure_section(
    measure: MeasureDef, runs: Sequence[RunFolder], labels: Sequence[str], options: ReportOptions
) -> str:
    latest = runs[-1]
    summary = latest.summary(str(measure.url))
    assert summary is not None
    inverse = (
        ' <span class="inverse">lower is better</span>' if measure.improvement_notation == "decrease" else ""
    )
    mips = f" · MIPS {measure.mips}" if measure.mips else ""
    parts = [
        f'<section class="measure" id="{measure.id}" data-measure="{measure.id}">',
        f"<h2>{measure.id}: {escape(measure.title)}{inverse}</h2>",
        f'<p class="note">{escape(str(measure.url))} version {escape(str(measure.version))}{mips}</p>',
    ]
    head = "".join(f"<th>{escape(title)}</th>" for _, title in POPULATIONS)
    rows = []
    for index, group_def in enumerate(measure.groups):
        group = summary.group(group_def.id)
        counts = group.counts if group else {}
        rows.append(
            f"<tr><td>{escape(_group_name(measure, index))}</td>"
            + "".join(f"<td>{counts.get(code, 0)}</td>" for code, _ in POPULATIONS)
            + _rate_cell(measure, group_def.id, counts)
            + f'<td class="formula">{escape(_formula(counts))}</td></tr>'
        )
    parts.append(_table(f"<th>Group</th>{head}<th>Rate</th><th>{FORMULA}</th>", rows))
    series = []
    for index, group_def in enumerate(measure.groups):
        values: list[float | None] = []
        for run in runs:
            run_summary = run.summary(str(measure.url))
            group = run_summary.group(group_def.id) if run_summary else None
            value = rate(group.counts) if group else None
            values.append(None if value is None else round(100 * value, 1))
        series.append((_group_name(measure, index), values))
    trend = charts.rate_trend(f"trend-{measure.id}", f"{measure.id} performance rate by run", labels, series)
    parts.append(f'<figure class="chart" data-chart="trend-{measure.id}">{trend}</figure>')
    for index, group_def in enumerate(measure.groups):
        group = summary.group(group_def.id)
        if group is None:
            continue
        parts.append(_published_strata(measure, index, group, options))
        parts.append(_attribution(measure, index, latest, options))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _strata_table(title: str, rows: Sequence[tuple[str, Mapping[str, int]]], options: ReportOptions) -> str:
    body = []
    for name, counts in rows:
        if counts.get("initial-population", 0) < options.min_stratum:
            body.append(
                f'<tr><td>{escape(name)}</td><td class="suppressed" colspan="{len(POPULATIONS) + 1}">'
                f"fewer than {options.min_stratum} patients: not shown</td></tr>"
            )
            continue
        body.append(
            f"<tr><td>{escape(name)}</td>"
            + "".join(f"<td>{counts.get(code, 0)}</td>" for code, _ in POPULATIONS)
            + f"<td>{_pct(rate(counts))}</td></tr>"
        )
    head = "".join(f"<th>{escape(t)}</th>" for _, t in POPULATIONS)
    return f"<h3>{escape(title)}</h3>" + _table(f"<th>Stratum</th>{head}<th>Rate</th>", body)


def _published_strata(measure: MeasureDef, index: int, group: GroupCounts, options: ReportOptions) -> str:
    labels = {s.id: s.label for s in measure.groups[index].stratifiers}
    rows = [(labels.get(s.id, s.id), s.counts) for s in group.strata]
    if not rows:
        return ""
    return _strata_table(f"{_group_name(measure, index)}: strata of the published measure", rows, options)


def _attribution(measure: MeasureDef, index: int, run: RunFolder, options: ReportOptions) -> str:
    by_measure = (run.run_report.get("measure_attribution") or {}).get(measure.id) or []
    if index >= len(by_measure):
        return ""
    dimensions: Mapping[str, Mapping[str, Mapping[str, int]]] = by_measure[index]
    parts = []
    for key, title in DIMENSIONS:
        refs = dimensions.get(key) or {}
        if not refs:
            continue
        rows = sorted(refs.items())
        parts.append(_strata_table(f"{_group_name(measure, index)} by {title.lower()}", rows, options))
        shown = [(ref, rate(c)) for ref, c in rows if c.get("initial-population", 0) >= options.min_stratum]
        if shown:
            chart_id = f"{key}-{measure.id}-{index + 1}"
            svg = charts.rate_bars(
                chart_id,
                f"{_group_name(measure, index)} rate by {title.lower()}",
                [ref for ref, _ in shown],
                [None if v is None else round(100 * v, 1) for _, v in shown],
            )
            parts.append(f'<figure class="chart" data-chart="{chart_id}">{svg}</figure>')
    return "\n".join(parts)


def _codes_section(latest: RunFolder, previous: RunFolder | None, labels: Sequence[str]) -> str:
    program = str(latest.run_report.get("program") or "")
    codes: Mapping[str, int] = latest.run_report.get("codes") or {}
    before: Mapping[str, int] = previous.run_report.get("codes") or {} if previous else {}
    if not codes and not before:
        return '<h2 id="codes">Quality-data codes</h2><p class="note">No quality-data code was emitted.</p>'
    rows = []
    for code in sorted(set(codes) | set(before)):
        now, then = codes.get(code, 0), before.get(code, 0)
        change = ""
        if previous is not None:
            delta = now - then
            css = "up" if delta > 0 else "down" if delta < 0 else ""
            change = f'<td class="{css}">{delta:+d}</td>' if delta else "<td>no change</td>"
        rows.append(f"<tr><td>{escape(code)}</td><td>{escape(program)}</td><td>{now}</td>{change}</tr>")
    change_head = f"<th>Since {escape(labels[-2])}</th>" if previous is not None else ""
    return (
        f'<h2 id="codes">Quality-data codes, {escape(labels[-1])}</h2>'
        f"<table><thead><tr><th>Code</th><th>Program</th><th>Emitted</th>{change_head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _data_quality(run: RunFolder, options: ReportOptions) -> str:
    reasons: Mapping[str, int] = run.run_report.get("quarantine_reasons") or {}
    parts = ['<h2 id="data-quality">Data quality</h2>']
    if reasons:
        rows = "".join(
            f"<tr><td>{escape(k)}</td><td>{v}</td></tr>"
            for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        parts.append("<h3>Quarantined, by reason</h3>" + _table("<th>Reason</th><th>Count</th>", [rows]))
    else:
        parts.append('<p class="note">Nothing was quarantined.</p>')
    if run.unrecognised:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{escape(row.get(k, ''))}</td>"
                for k in ("resource_type", "element", "system", "code", "count")
            )
            + "</tr>"
            for row in run.unrecognised
        )
        parts.append(
            "<h3>Codes no value set, rule or ConceptMap knows</h3>"
            + _table("<th>Resource</th><th>Element</th><th>System</th><th>Code</th><th>Count</th>", [rows])
            + '<p class="note">Map local codes with a site ConceptMap'
            " (<code>fhir-cat2 codes suggest</code>).</p>"
        )
    return "\n".join(parts)


def _patient_detail(measures: Sequence[MeasureDef], run: RunFolder) -> str:
    parts = ['<h2 id="patients">Patients to act on</h2>']
    open_gaps = [row for row in run.gaps if row.get("status", "open-gap") == "open-gap"]
    if open_gaps:
        columns = [c for c in run.gaps[0] if c != "status"]
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(row.get(c, '') or '')}</td>" for c in columns) + "</tr>"
            for row in open_gaps[: PATIENT_LIST_LIMIT * 5]
        )
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        parts.append("<h3>Open care gaps (gaps.csv)</h3>" + _table(head, [rows]))
    for measure in measures:
        lists: list[str] = []
        for index, group_def in enumerate(measure.groups):
            patients = sorted(
                {
                    report.subject
                    for report in run.individuals
                    if report.measure == measure.url
                    and (group := next((g for g in report.groups if g.id == group_def.id), None)) is not None
                    and _needs_action(group.counts, measure.improvement_notation == "decrease")
                }
            )
            if not patients:
                continue
            shown = ", ".join(escape(p) for p in patients[:PATIENT_LIST_LIMIT])
            more = (
                f" and {len(patients) - PATIENT_LIST_LIMIT} more"
                if len(patients) > PATIENT_LIST_LIMIT
                else ""
            )
            lists.append(
                f"<p><b>{escape(_group_name(measure, index))}</b> ({len(patients)}): {shown}{more}</p>"
            )
        if lists:
            parts.append(f"<h3>{measure.id}: {escape(measure.title)}</h3>" + "".join(lists))
    return "\n".join(parts)


def _needs_action(counts: Mapping[str, int], inverse: bool) -> bool:
    if (
        not counts.get("denominator")
        or counts.get("denominator-exclusion")
        or counts.get("denominator-exception")
    ):
        return False
    met = bool(counts.get("numerator"))
    return met if inverse else not met
