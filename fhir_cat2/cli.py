"""Command line: ``fhir-cat2 replay``, ``sync``, ``record``, ``rules check`` and friends.

Exit codes are stable (see README): 0 success; 1 completed with quarantined items; 2 usage or
configuration error; 3 authentication refused; 4 server unavailable; 5 another run holds the lock;
6 completed, writes pending in the outbox; 70 internal error; 130 interrupted (Ctrl-C); 143 terminated
(SIGTERM).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import orjson

from . import __version__, logs
from .cli_live import add_live_commands, cmd_outbox_retry, cmd_record, cmd_sync
from .cli_ops import (
    add_global_options,
    add_ops_commands,
    apply_config,
    cmd_outbox,
    cmd_runs,
    initial_logging,
    new_tracker,
    process_setup,
    requested_format,
)
from .cli_quality import add_quality_commands, cmd_export_qpp, cmd_measures_list, cmd_report
from .codes import write_csv
from .conceptmaps import load_concept_maps
from .config import AppConfig, load_config
from .deviations import parse as parse_deviations
from .emit.claim import EmitDefaults
from .errors import (
    AuthError,
    BulkExportTimeout,
    ConfigError,
    FhirCat2Error,
    InputError,
    LockHeldError,
    RulesError,
    ServerUnavailableError,
)
from .executors import forked
from .explain import outcome_to_json, outcome_to_text
from .gaps_csv import write_gaps_csv
from .job import emitted_types
from .pipeline import EMIT_KINDS, Pipeline, RunOptions, run_in_process, selected_measures
from .report import summary_line
from .rules.loader import RuleSet, load_rules
from .rules.valuesets import ValueSetRegistry
from .runs import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_EXPORT_TIMEOUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_QUARANTINED,
    EXIT_TERMINATED,
    EXIT_UNAVAILABLE,
    RunTracker,
    Terminated,
)
from .sinks.base import NullSink
from .sinks.files import NdjsonSink, check_output_dir
from .sources.files import iter_input_files, plan_parts, read_file
from .sources.values import parse_when

log = logging.getLogger("fhir_cat2")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        if logs.console_format() == "json":
            logs.console(
                f"{self.prog}: error: {message}",
                event="usage-error",
                level="ERROR",
                exit_code=EXIT_CONFIG,
                usage=" ".join(self.format_usage().split()),
            )
        else:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_CONFIG)


def _period(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a year (e.g. 2025)") from None
    if not 1900 <= year <= 2200:
        raise argparse.ArgumentTypeError(f"{year} is not a plausible measurement year")
    return year


def _emit(text: str) -> frozenset[str]:
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = kinds - set(EMIT_KINDS)
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"--emit takes {','.join(EMIT_KINDS)} (got '{text}')")
    return kinds


def _add_rules_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="FILE", help="rules table (YAML); default: the one shipped")
    parser.add_argument(
        "--valuesets", metavar="DIR", help="folder of FHIR ValueSet expansions (e.g. from VSAC)"
    )
    parser.add_argument(
        "--concept-maps",
        metavar="DIR",
        help="folder of FHIR ConceptMaps mapping local codes to standard codes (terminology.concept_maps)",
    )


def _add_run_options(
    parser: argparse.ArgumentParser, period_default: str = "the year of the latest encounter in the input"
) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (YAML); flags override it")
    parser.add_argument(
        "--period", type=_period, help=f"measurement year (default: {period_default}; config run.period)"
    )
    parser.add_argument("--program", choices=("hedis", "mips-claims"), help="default: hedis")
    parser.add_argument(
        "--emit",
        type=_emit,
        help="claim,measure-report,gaps (default: claim,measure-report; gaps: DEQM Gaps in Care Bundles"
        " and gaps.csv)",
    )
    parser.add_argument("--measure", action="append", dest="measures", metavar="ID", help="only this measure")
    parser.add_argument("--now", metavar="DATETIME", help="MeasureReport.date (default: end of the period)")
    parser.add_argument(
        "--report",
        choices=("individual", "summary", "both"),
        help="MeasureReports: one per patient (individual, default), one per measure (summary), or both",
    )
    parser.add_argument(
        "--quarantine-exit-zero",
        action="store_true",
        default=None,
        help="exit 0 instead of 1 when the run completed but quarantined items",
    )
    parser.add_argument(
        "--deviation",
        action="append",
        dest="deviations",
        metavar="NAME",
        help="turn on a named deviation from the published measure logic (repeatable or comma-separated;"
        " 'all'; config logic.deviations; names in the README)",
    )
    _add_rules_options(parser)


def _now(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_when(text, "--now")
    except InputError:
        raise ConfigError(
            f"--now '{text}' is not a FHIR date or dateTime (e.g. 2026-01-15T09:00:00Z)"
        ) from None
    return text


def _deviations(args: argparse.Namespace, config: AppConfig) -> frozenset[str]:
    if args.deviations:
        return parse_deviations([n for text in args.deviations for n in text.split(",")], "--deviation")
    return parse_deviations(config.logic.deviations)


def resolve_run(args: argparse.Namespace) -> tuple[RunOptions, AppConfig]:
    """Merge flags over the configuration file over built-in defaults; refuse bad values before any work."""
    config = load_config(args.config)
    apply_config(args, config)
    run = config.run
    options = RunOptions(
        program=args.program or run.program,
        period_year=args.period if args.period is not None else run.period,
        emit=args.emit or frozenset(run.emit),
        now=_now(args.now),
        measures=tuple(args.measures) if args.measures else (tuple(run.measures) if run.measures else None),
        report=args.report or run.report,
        deviations=_deviations(args, config),
    )
    args.rules = args.rules or run.rules
    args.valuesets = args.valuesets or run.valuesets
    args.concept_maps = args.concept_maps or config.terminology.concept_maps
    if args.quarantine_exit_zero is None:
        args.quarantine_exit_zero = run.quarantine_exit_zero
    return options, config


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fhir-cat2", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    replay = sub.add_parser("replay", help="derive codes from FHIR files (no server)")
    replay.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or folders of FHIR JSON / NDJSON (.gz too)"
    )
    replay.add_argument("--out", required=True, metavar="DIR", help="output folder")
    replay.add_argument(
        "--state", metavar="PATH", help="record the run (and hold the lock) in this state file"
    )
    replay.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes reading input and evaluating patients (default: CPUs, at most 8; 1: none)",
    )
    replay.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this machine (--workers); spark: Apache Spark (pip install 'fhir-cat2[spark]')",
    )
    replay.add_argument(
        "--spark-master",
        default="local[*]",
        metavar="URL",
        help="with --engine spark: local[N] or a cluster's master URL (default local[*])",
    )
    _add_run_options(replay)

    explain = sub.add_parser("explain", help="why a patient earned (or missed) each code and population")
    explain.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of FHIR JSON / NDJSON")
    explain.add_argument("--patient", required=True, metavar="ID", help="Patient id (as in the input)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.add_argument(
        "--full", action="store_true", help="print every criterion, also of exclusions that did not apply"
    )
    _add_run_options(explain)

    add_live_commands(sub, _add_run_options)
    add_ops_commands(sub, _Parser)
    quality_commands = add_quality_commands(sub, _Parser)

    valuesets = sub.add_parser("valuesets", help="value-set expansions")
    valuesets_sub = valuesets.add_subparsers(dest="valuesets_command", required=True, parser_class=_Parser)
    fetch = valuesets_sub.add_parser("fetch", help="download the expansions a rules table needs from VSAC")
    fetch.add_argument(
        "--api-key-env", required=True, metavar="VAR", help="environment variable holding the UMLS API key"
    )
    fetch.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write the ValueSet JSON files into"
    )
    fetch.add_argument("--rules", metavar="FILE", help="rules table (default: the one shipped)")
    fetch.add_argument(
        "--base", default=None, metavar="URL", help="terminology server base (default: VSAC FHIR)"
    )

    codes = sub.add_parser("codes", help="codes in the data that no value set, rule or ConceptMap knows")
    codes_sub = codes.add_subparsers(dest="codes_command", required=True, parser_class=_Parser)
    suggest = codes_sub.add_parser(
        "suggest", help="draft a ConceptMap (targets left for a person) from a run's unrecognised codes"
    )
    suggest.add_argument(
        "source", metavar="REPORT", help="unrecognised-codes.csv, or the run's output folder holding it"
    )
    suggest.add_argument("--out", required=True, metavar="FILE", help="where to write the ConceptMap (JSON)")
    suggest.add_argument(
        "--all",
        action="store_true",
        help="every code; default: local codes (code systems no rule uses) and encounter types",
    )

    rules = sub.add_parser("rules", help="rules tables")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    check = rules_sub.add_parser("check", help="validate a rules table")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--valuesets", metavar="DIR", help="folder of FHIR ValueSet expansions")
    for command in (
        replay,
        explain,
        rules,
        check,
        suggest,
        *quality_commands,
        *(sub.choices[c] for c in ("sync", "record")),
    ):
        add_global_options(command, top=False)
    return parser


def load_ruleset(rules: str | None, valuesets: str | None, concept_maps: str | None = None) -> RuleSet:
    registry = ValueSetRegistry.shipped()
    if valuesets:
        registry.load_dir(valuesets)
    maps = load_concept_maps(concept_maps)  # a bad map is refused here, before any work
    return load_rules(rules, registry, maps)


def cmd_replay(args: argparse.Namespace) -> int:
    tracker: RunTracker = args._tracker
    options, config = resolve_run(args)
    ruleset = load_ruleset(args.rules, args.valuesets, args.concept_maps)
    files = list(iter_input_files(args.paths))  # a missing path is a usage error, found before any work
    selected_measures(ruleset, options)
    workers = _workers(args.workers if args.workers is not None else config.run.workers)
    if args.state:
        tracker.hold(args.state, "replay")
    check_output_dir(args.out, "--out")  # after the lock: a refused second run leaves the folder alone
    defaults = config.defaults.emit_defaults()
    if args.engine == "spark":
        return _replay_on_spark(args, tracker, ruleset, options, defaults)
    sink = NdjsonSink(args.out, emitted_types(options.emit))
    tracker.out_dir = Path(args.out)
    pipeline = Pipeline(ruleset, options, sink, defaults=defaults)
    pipeline.observer = tracker.progress.patient
    tracker.attach(stats=pipeline.stats)
    log.info("replay of %d files into %s", len(files), args.out)
    try:
        pipeline.stats.files += len(files)
        parts = plan_parts(files)
        tracker.progress.reading(sum(part.size for part in parts))
        if forked.worth_forking(parts, workers):
            stats = forked.replay_forked(
                pipeline,
                parts,
                workers,
                resources_done=tracker.progress.add_resources,
                bytes_done=tracker.progress.read_bytes,
            )
        else:
            stats = run_in_process(
                pipeline, parts, counted=tracker.progress.count, bytes_done=tracker.progress.read_bytes
            )
    except BaseException:
        sink.abort()
        raise
    sink.close()
    write_csv(args.out, stats.unrecognised_codes)
    if "gaps" in options.emit:
        write_gaps_csv(args.out)
    tracker.report.job = pipeline.job()
    tracker.summarise = partial(summary_line, "replay")
    if stats.quarantined and not args.quarantine_exit_zero:
        return EXIT_QUARANTINED
    return EXIT_OK


def _replay_on_spark(
    args: argparse.Namespace,
    tracker: RunTracker,
    ruleset: RuleSet,
    options: RunOptions,
    defaults: EmitDefaults,
) -> int:
    """``replay --engine spark``: the Spark executor writes part files into a scratch folder inside --out,
    merged there into the files replay writes (byte for byte those of ``--workers 1``)."""
    try:
        from . import spark as engine
    except ImportError as exc:
        raise ConfigError(f"--engine spark needs PySpark: pip install 'fhir-cat2[spark]' ({exc})") from None
    out = Path(args.out)
    tracker.out_dir = out
    parts = out / ".spark-parts"
    log.info("replay on Spark (%s) into %s", args.spark_master, args.out)
    session = engine.local_session(args.spark_master)
    try:
        result = engine.replay(session, list(args.paths), str(parts), ruleset, options, defaults)
    finally:
        session.stop()
    engine.merge_outputs(parts, out, (*emitted_types(options.emit), "quarantine"))
    shutil.rmtree(parts, ignore_errors=True)
    stats = result.stats
    tracker.attach(stats=stats)
    write_csv(args.out, stats.unrecognised_codes)
    if "gaps" in options.emit:
        write_gaps_csv(args.out)
    tracker.report.job = result.job
    tracker.report.extra = {"engine": "spark", "spark": result.facts()}
    tracker.summarise = partial(summary_line, "replay")
    if stats.quarantined and not args.quarantine_exit_zero:
        return EXIT_QUARANTINED
    return EXIT_OK


def _workers(wanted: int | None) -> int:
    if wanted is not None:
        if wanted < 1:
            raise ConfigError(f"--workers must be 1 or more (got {wanted})")
        return wanted
    return max(1, min(os.cpu_count() or 1, 8))


def cmd_explain(args: argparse.Namespace) -> int:
    patient_id = args.patient.removeprefix("Patient/")
    options, config = resolve_run(args)
    options = replace(options, only_patient=patient_id, thorough=True)
    ruleset = load_ruleset(args.rules, args.valuesets, args.concept_maps)
    files = list(iter_input_files(args.paths))
    pipeline = Pipeline(ruleset, options, NullSink(), defaults=config.defaults.emit_defaults())
    for path in files:
        pipeline.ingest(read_file(path))
    found = None
    for outcome in pipeline.outcomes():
        found = outcome
    if found is None:
        _fail(EXIT_CONFIG, f"fhir-cat2: no data for Patient/{patient_id} in the input")
        return EXIT_CONFIG
    period = pipeline.period()
    measures = list(options.measures) if options.measures else None
    if args.format == "json":
        data = outcome_to_json(found, ruleset, measures, period_end=period[1])
        data["period"] = {"start": period[0].isoformat(), "end": period[1].isoformat()}
        data["program"] = options.program
        data["deviations"] = sorted(options.deviations)
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(
            f"Measurement period {period[0].isoformat()}..{period[1].isoformat()}, program {options.program}"
        )
        on = ", ".join(sorted(options.deviations))
        logic = (
            f"Deviations from the published measure logic: {on}"
            if on
            else "Measures follow the published logic"
        )
        if options.program == "hedis":
            logic += "; CPT II code rules read with every deviation on"
        print(logic)
        sys.stdout.write(outcome_to_text(found, ruleset, measures, full=args.full, period_end=period[1]))
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    """sync and record (see cli_live): configuration is refused before any request."""
    options, config = resolve_run(args)
    ruleset = load_ruleset(args.rules, args.valuesets, args.concept_maps)
    command = cmd_sync if args.command == "sync" else cmd_record
    return command(args, options, config, ruleset)


def cmd_valuesets_fetch(args: argparse.Namespace) -> int:
    from .vsac import VSAC_BASE, VsacClient, api_key_from_env, fetch, valuesets_needed

    api_key = api_key_from_env(args.api_key_env)  # refused before any request when unset
    refs = valuesets_needed(args.rules)
    report = fetch(refs, args.out, VsacClient(api_key, base=args.base or VSAC_BASE))
    code = EXIT_QUARANTINED if report.missing else EXIT_OK
    written = f"fhir-cat2 valuesets fetch: {len(report.written)} value sets written to {args.out}"
    if logs.console_format() == "json" or not report.missing:
        logs.console(
            written + (f"; not found at the server: {', '.join(report.missing)}" if report.missing else ""),
            event="summary",
            level="WARNING" if report.missing else "INFO",
            exit_code=code,
            written=len(report.written),
            missing=list(report.missing),
        )
    else:
        logs.console(written, event="summary")
        logs.console(f"  not found at the server: {', '.join(report.missing)}", event="summary")
    return code


def cmd_codes_suggest(args: argparse.Namespace) -> int:
    from .codes import draft_concept_map, read_csv, worth_mapping

    rows = read_csv(args.source)
    chosen = rows if args.all else [row for row in rows if worth_mapping(row)]
    concept_map = draft_concept_map(chosen)
    out = Path(args.out)
    try:
        out.write_bytes(orjson.dumps(concept_map, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write it ({exc.strerror})") from None
    elements = sum(len(group["element"]) for group in concept_map["group"])
    logs.console(
        f"fhir-cat2 codes suggest: {elements} codes of {len(rows)} in a draft ConceptMap at {out};"
        " fill in the targets, then load it with --concept-maps DIR",
        event="summary",
        codes=elements,
        rows=len(rows),
    )
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    ruleset = load_ruleset(args.file, args.valuesets)
    table = ruleset.table
    print(
        f"{args.file}: OK: {len(table.measurements)} measurements, {len(table.code_rules)} code rules,"
        f" {len(table.measures)} measures"
    )
    return EXIT_OK


@contextmanager
def _tuned_gc() -> Iterator[None]:
    """Slim records are acyclic and long-lived: move startup objects out of the collector's way, collect
    young objects rarely and older generations never during a run (with default settings, collections
    over the growing set of live records took a third of a replay's time; cycles among young objects,
    such as exception tracebacks, are still freed)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 1_000_000, 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # usage errors come before the arguments are understood: json as soon as it was asked for
    logs.set_console_format(requested_format(arguments))
    try:
        with _tuned_gc(), process_setup():
            return _main(arguments)
    except Terminated:  # SIGTERM before a command started or after it finished: nothing to clean up
        logs.console("fhir-cat2: stopped by SIGTERM", event="error", level="ERROR", exit_code=EXIT_TERMINATED)
        return EXIT_TERMINATED
    finally:
        logs.set_console_format("text")


def _main(arguments: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(arguments)
    level, fmt = initial_logging(args)
    with logs.configured(level, fmt) as handler:
        args._log_handler = handler
        tracker = None
        try:
            tracker = args._tracker = new_tracker(args, arguments, fmt)
            if tracker is not None:
                handler.before_write.append(tracker.progress.clear)
        except ConfigError as exc:
            _fail(EXIT_CONFIG, f"fhir-cat2: configuration error: {exc}")
            return EXIT_CONFIG
        code, error = _dispatch(args, parser)
        if tracker is not None:
            tracker.finish(code, error)
        return code


def _fail(exit_code: int, text: str, details: Sequence[str] = ()) -> None:
    """The error that ends a command: its lines in text mode, one record with the exit code in json mode."""
    if logs.console_format() == "json":
        extra = {"problems": list(details)} if details else {}
        logs.console(text, event="error", level="ERROR", exit_code=exit_code, **extra)
        return
    logs.console(text, event="error")
    for line in details:
        logs.console(f"  {line}", event="error")


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[int, str | None]:
    """Run the command; map what it raised to an exit code and a one-line error (also in the report)."""
    try:
        if args.command == "replay":
            return cmd_replay(args), None
        if args.command == "explain":
            return cmd_explain(args), None
        if args.command == "rules" and args.rules_command == "check":
            return cmd_rules_check(args), None
        if args.command == "codes" and args.codes_command == "suggest":
            return cmd_codes_suggest(args), None
        if args.command in ("sync", "record"):
            return cmd_live(args), None
        if args.command == "valuesets" and args.valuesets_command == "fetch":
            return cmd_valuesets_fetch(args), None
        if args.command == "runs":
            return cmd_runs(args, load_config), None
        if args.command == "outbox":
            if args.action == "retry":
                return cmd_outbox_retry(args), None
            return cmd_outbox(args, load_config), None
        if args.command == "measures" and args.measures_command == "list":
            return cmd_measures_list(args), None
        if args.command == "report":
            return cmd_report(args), None
        if args.command == "export" and args.export_command == "qpp":
            return cmd_export_qpp(args), None
        if args.command == "config" and args.config_command == "check":
            from .config_check import cmd_config_check  # with the HTTP stack, which replay does without

            return cmd_config_check(args), None
        parser.error(f"unknown command {args.command}")
    except RulesError as exc:
        _fail(EXIT_CONFIG, f"fhir-cat2: invalid rules table {exc.source}:", exc.problems)
        return EXIT_CONFIG, f"invalid rules table {exc.source}: {len(exc.problems)} problem(s)"
    except ConfigError as exc:
        _fail(EXIT_CONFIG, f"fhir-cat2: configuration error: {exc}")
        return EXIT_CONFIG, f"configuration error: {exc}"
    except AuthError as exc:
        _fail(EXIT_AUTH, f"fhir-cat2: authentication refused: {exc}")
        return EXIT_AUTH, f"authentication refused: {exc}"
    except BulkExportTimeout as exc:
        _fail(EXIT_EXPORT_TIMEOUT, f"fhir-cat2: {exc}")
        return EXIT_EXPORT_TIMEOUT, str(exc)
    except ServerUnavailableError as exc:
        _fail(EXIT_UNAVAILABLE, f"fhir-cat2: server unavailable: {exc}")
        return EXIT_UNAVAILABLE, f"server unavailable: {exc}"
    except LockHeldError as exc:
        _fail(EXIT_LOCKED, f"fhir-cat2: {exc}")
        return EXIT_LOCKED, str(exc)
    except Terminated:
        _fail(EXIT_TERMINATED, "fhir-cat2: stopped by SIGTERM")
        return EXIT_TERMINATED, "stopped by SIGTERM"
    except KeyboardInterrupt:
        _fail(EXIT_INTERRUPTED, "fhir-cat2: interrupted")
        return EXIT_INTERRUPTED, "interrupted"
    except FhirCat2Error as exc:
        _fail(EXIT_CONFIG, f"fhir-cat2: {exc}")
        return EXIT_CONFIG, str(exc)
    except OSError as exc:
        # disk full, permission denied...: name the file, never the data
        where = f" {exc.filename}" if exc.filename else ""
        _fail(EXIT_INTERNAL, f"fhir-cat2: cannot use{where}: {exc.strerror or type(exc).__name__}")
        return EXIT_INTERNAL, f"operating system error{where}: {exc.strerror or type(exc).__name__}"
    except Exception as exc:  # a bug: say where, never with the message (it may hold patient data)
        _fail(EXIT_INTERNAL, f"fhir-cat2: internal error: {logs.safe_traceback(exc)}; please report it")
        return EXIT_INTERNAL, f"internal error: {logs.safe_traceback(exc)}"
    return EXIT_OK, None
