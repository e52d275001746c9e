"""Command line for the quality team's products, built from finished runs' output folders:
``fhir-cat2 export qpp`` (the MIPS quality submission file) and ``fhir-cat2 report`` (the HTML report);
and ``fhir-cat2 measures list``, the catalogue they are about."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from . import logs
from .catalogue import as_json, as_markdown, as_text, catalogue, hedis_codes
from .errors import ConfigError
from .quality.qpp import SUBMISSION_METHODS, build_submission, npi_check_digit_ok, qpp_measures
from .quality.rundir import read_run_folder, read_summaries
from .rules.loader import read_table
from .runs import EXIT_OK, EXIT_QUARANTINED


def add_quality_commands(
    sub: argparse._SubParsersAction[Any], parser_class: type
) -> list[argparse.ArgumentParser]:
    export = sub.add_parser("export", help="files for others to submit, from a run's output folder")
    export_sub: argparse._SubParsersAction[argparse.ArgumentParser] = export.add_subparsers(
        dest="export_command", required=True, parser_class=parser_class
    )
    qpp = export_sub.add_parser(
        "qpp", help="MIPS quality submission (QPP measurement set JSON) from the summary MeasureReports"
    )
    qpp.add_argument(
        "run_dir", metavar="RUN_DIR", help="output folder of a replay or sync run (--report summary|both)"
    )
    qpp.add_argument("--performance-year", type=int, required=True, metavar="YEAR")
    qpp.add_argument(
        "--tin", required=True, metavar="TIN", help="the practice's taxpayer identification number (9 digits)"
    )
    qpp.add_argument(
        "--npi",
        metavar="NPI",
        help="the clinician's NPI (10 digits): an individual submission; without: group",
    )
    qpp.add_argument(
        "--submission-method",
        choices=SUBMISSION_METHODS,
        default="electronicHealthRecord",
        help="electronicHealthRecord (eCQMs, default) or registry",
    )
    qpp.add_argument(
        "--end-to-end",
        action="store_true",
        help="isEndToEndReported: true (certified EHR technology produced the data, no manual step)",
    )
    qpp.add_argument("--rules", metavar="FILE", help="rules table the run used (default: the one shipped)")
    qpp.add_argument(
        "--out", metavar="FILE", help="where to write (default: RUN_DIR/qpp-submission-YEAR.json)"
    )
    measures = sub.add_parser("measures", help="the measures catalogue")
    measures_sub: argparse._SubParsersAction[argparse.ArgumentParser] = measures.add_subparsers(
        dest="measures_command", required=True, parser_class=parser_class
    )
    listing = measures_sub.add_parser(
        "list", help="id, MIPS number, version, groups and quality-data codes per program of every measure"
    )
    listing.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    listing.add_argument("--rules", metavar="FILE", help="rules table (default: the one shipped)")
    report = sub.add_parser(
        "report", help="one self-contained HTML report for the quality team, from runs' folders"
    )
    report.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="output folders of runs (--report summary|both)"
    )
    report.add_argument("--html", required=True, metavar="FILE", help="the HTML file to write")
    report.add_argument(
        "--no-patient-detail",
        action="store_true",
        help="leave out everything patient-level (patients to act on, care gaps): a copy to share",
    )
    report.add_argument(
        "--min-stratum",
        type=int,
        default=11,
        metavar="N",
        help="strata with fewer patients than this are shown without numbers (default 11)",
    )
    report.add_argument("--title", default="Quality measure report", help="the page's title")
    report.add_argument(
        "--rules", metavar="FILE", help="rules table the runs used (default: the one shipped)"
    )
    return [export, qpp, report, measures, listing]


def cmd_measures_list(args: argparse.Namespace) -> int:
    table = read_table(args.rules)
    entries = catalogue(table)
    if args.format == "json":
        sys.stdout.write(
            orjson.dumps(as_json(entries, hedis_codes(table)), option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    elif args.format == "markdown":
        sys.stdout.write(as_markdown(entries))
    else:
        sys.stdout.write(as_text(entries, hedis_codes(table)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    if args.min_stratum < 1:
        raise ConfigError("--min-stratum must be 1 or more")
    from .quality.html import ReportOptions, render  # the chart library, only for this command

    catalogue = read_table(args.rules).measures
    runs = [read_run_folder(path) for path in args.run_dirs]
    for run in runs:
        if not run.summaries:
            raise ConfigError(f"{run.path}: no summary MeasureReports (run with --report summary or both)")
    options = ReportOptions(
        patient_detail=not args.no_patient_detail, min_stratum=args.min_stratum, title=args.title
    )
    page = render(runs, catalogue, options).encode("utf-8")
    out = Path(args.html)
    temporary = out.with_name(f".{out.name}.tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(page)
        if not options.patient_detail:
            os.fchmod(handle.fileno(), 0o644)  # aggregates only: made to be shared
    os.replace(temporary, out)
    logs.console(f"fhir-cat2: wrote {out} from {len(runs)} run(s)", event="report-written")
    return EXIT_OK


def cmd_export_qpp(args: argparse.Namespace) -> int:
    tin = re.sub(r"[\s-]", "", args.tin)
    if not re.fullmatch(r"\d{9}", tin):
        raise ConfigError("--tin must be 9 digits")
    npi = args.npi
    if npi is not None and (not re.fullmatch(r"\d{10}", npi) or not npi_check_digit_ok(npi)):
        raise ConfigError("--npi must be 10 digits with a valid check digit")
    facts = qpp_measures(args.performance_year)
    catalogue = read_table(args.rules).measures
    reports = read_summaries(args.run_dir)
    export = build_submission(
        reports,
        catalogue,
        facts,
        year=args.performance_year,
        tin=tin,
        npi=npi,
        method=args.submission_method,
        end_to_end=args.end_to_end,
    )
    for line in export.skipped:
        logs.console(f"fhir-cat2: not in the file: {line}", event="qpp-skipped")
    for line in export.refused:
        logs.console(f"fhir-cat2: refused: {line}", event="qpp-refused")
    if export.document is None:
        logs.console("fhir-cat2: no measure could be submitted: no file written", event="qpp-empty")
        return EXIT_QUARANTINED
    out = Path(args.out) if args.out else Path(args.run_dir) / f"qpp-submission-{args.performance_year}.json"
    body = orjson.dumps(export.document, option=orjson.OPT_INDENT_2) + b"\n"
    temporary = out.with_name(f".{out.name}.tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(body)
    os.replace(temporary, out)
    logs.console(
        f"fhir-cat2: wrote {out}: {len(export.included)} measure(s) ({', '.join(export.included)})",
        event="qpp-written",
    )
    return EXIT_QUARANTINED if export.refused else EXIT_OK
