"""Command line of the live-server commands: ``fhir-cat2 sync`` and ``fhir-cat2 record``.

Every setting is a flag, a configuration key, or a ``FHIR_CAT2_<SECTION>__<KEY>`` environment variable
(flags win over the environment, which wins over the file).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .runs import EXIT_OK, EXIT_QUARANTINED, EXIT_WRITES_PENDING

if TYPE_CHECKING:  # the HTTP stack (fhir, sync) is imported by the commands that use it, not by replay
    from .config import AppConfig
    from .pipeline import RunOptions
    from .rules.loader import RuleSet
    from .sync import LiveSettings


def add_live_commands(
    sub: argparse._SubParsersAction[Any],
    add_run_options: Callable[..., None],
) -> None:
    sync = sub.add_parser("sync", help="pull what changed from a FHIR server, derive codes, write them back")
    _add_server_options(sync)
    sync.add_argument(
        "--dry-run", action="store_true", help="write to --out as replay does; nothing to the server"
    )
    sync.add_argument(
        "--write-to", metavar="URL", help="FHIR base URL for the write-back (default: the source)"
    )
    sync.add_argument(
        "--source",
        choices=("search", "bulk", "patients"),
        help="how to read the server: search (change scan, then patient searches; default), bulk"
        " (FHIR Bulk Data $export), or patients (one patient at a time) (config source.mode)",
    )
    sync.add_argument(
        "--group",
        metavar="ID",
        help="bulk: export the members of Group/ID; patients: read them (config source.group)",
    )
    sync.add_argument(
        "--keep-export",
        action="store_true",
        default=None,
        help="bulk: on Ctrl-C or SIGTERM leave the export running (resumed by the next run) instead of"
        " cancelling it (config source.bulk.keep_export)",
    )
    sync.add_argument(
        "--patients-file",
        metavar="FILE",
        help="patients mode: patient ids, one a line, instead of a Group (config source.patients_file)",
    )
    # as run_sync defaults it: not guessed from the data, which a sync reads only the changes of
    add_run_options(sync, period_default="the current year in UTC, or the year of --until")

    record = sub.add_parser("record", help="save what the server returns as fixtures that replay reads")
    _add_server_options(record)
    add_run_options(record)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", metavar="URL", help="FHIR R4 base URL (config server.base_url)")
    parser.add_argument(
        "--state", metavar="PATH", help="sync state file (SQLite); default fhir-cat2-state.sqlite"
    )
    parser.add_argument(
        "--since", metavar="INSTANT", help="backfill: changes after this (watermark untouched)"
    )
    parser.add_argument(
        "--until", metavar="INSTANT", help="backfill: changes up to this (watermark untouched)"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="folder for the run report, quarantine and dry-run output"
    )


def resolve_live(args: argparse.Namespace, config: AppConfig) -> LiveSettings:
    from .fhir import refuse_insecure
    from .sync import LiveSettings, parse_time_option

    base_url = args.base_url or config.server.base_url
    if not base_url:
        raise ConfigError("no server: give --base-url or set server.base_url (or FHIR_CAT2_SERVER__BASE_URL)")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url must be an http(s) URL, not '{base_url}'")
    write_to = getattr(args, "write_to", None)
    if write_to is not None and not write_to.startswith(("http://", "https://")):
        raise ConfigError(f"--write-to must be an http(s) URL, not '{write_to}'")
    allow = config.server.allow_insecure_http
    refuse_insecure(base_url, "the server URL", allow)
    for target, what in ((write_to, "--write-to"), (config.write.base_url, "write.base_url")):
        if target:
            refuse_insecure(target, what, allow)
    since = parse_time_option(getattr(args, "since", None), "--since")
    until = parse_time_option(getattr(args, "until", None), "--until")
    if since is not None and until is not None and since >= until:
        raise ConfigError("--since must be before --until")
    return LiveSettings(
        base_url=base_url.rstrip("/"),
        state_path=args.state or config.sync.state,
        out=args.out or config.sync.out,
        since=since,
        until=until,
        dry_run=bool(getattr(args, "dry_run", False)),
        write_to=write_to,
        source=getattr(args, "source", None) or config.source.mode,
        group=getattr(args, "group", None) or config.source.group,
        keep_export=bool(getattr(args, "keep_export", None) or config.source.bulk.keep_export),
    )


def cmd_sync(args: argparse.Namespace, options: RunOptions, config: AppConfig, ruleset: RuleSet) -> int:
    from .pipeline import selected_measures
    from .sinks.files import check_output_dir
    from .sync import run_sync, summary

    config = resolve_source(args, config)
    settings = resolve_live(args, config)
    selected_measures(ruleset, options)
    tracker = args._tracker
    mode = "dry-run" if settings.dry_run else "backfill" if settings.backfill else "sync"
    tracker.hold(settings.state_path, mode)  # before any request: a second run stops here with exit 5
    check_output_dir(settings.out, "--out / sync.out")  # now, not at the end after the run did its work
    report = run_sync(settings, config, ruleset, options, tracker)
    tracker.summarise = summary
    if report.writes_pending:
        return EXIT_WRITES_PENDING
    if report.quarantined and not args.quarantine_exit_zero:
        return EXIT_QUARANTINED
    return EXIT_OK


def resolve_source(args: argparse.Namespace, config: AppConfig) -> AppConfig:
    """``--source``, ``--group`` and ``--patients-file`` over ``source.*``; refuses what cannot run."""
    update: dict[str, Any] = {}
    for flag, key in (("source", "mode"), ("group", "group"), ("patients_file", "patients_file")):
        value = getattr(args, flag, None)
        if value is not None:
            update[key] = value
    source = config.source.model_copy(update=update)
    if source.mode == "patients":
        if bool(source.group) == bool(source.patients_file):
            raise ConfigError(
                "patients mode reads the members of a Group or a file of patient ids: give one of"
                " --group ID (source.group) or --patients-file FILE (source.patients_file)"
            )
    elif source.patients_file:
        raise ConfigError("--patients-file needs --source patients (source.mode: patients)")
    elif source.group and source.mode == "search":
        raise ConfigError("--group needs --source patients or --source bulk (source.mode)")
    return config.model_copy(update={"source": source})


def cmd_record(args: argparse.Namespace, options: RunOptions, config: AppConfig, ruleset: RuleSet) -> int:
    from .sinks.files import check_output_dir
    from .sync import run_record

    if config.source.mode != "search":
        raise ConfigError("record reads with system-wide searches only (source.mode: search)")
    settings = resolve_live(args, config)
    if not args.out:
        raise ConfigError("record needs --out DIR")
    check_output_dir(settings.out, "--out")
    info = run_record(settings, config, ruleset, options)
    tracker = args._tracker
    tracker.report.extra = info
    summary = (
        f"fhir-cat2 record: {info['patients']} patients, {info['resources']} resources"
        f" in {info['pages']} pages"
        f" saved to {settings.out}; replay it with: fhir-cat2 replay {settings.out} --out DIR"
    )
    tracker.summarise = lambda report: summary
    return EXIT_OK


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """``fhir-cat2 outbox retry``: re-send the outbox of the write target now (the server options of sync).
    Exit 0 when its outbox is empty afterwards, else 6."""
    from .cli_ops import apply_config
    from .config import load_config
    from .sinks.files import check_output_dir
    from .sync import run_outbox_retry

    config = load_config(args.config)
    apply_config(args, config)
    settings = resolve_live(args, config)
    tracker = args._tracker
    tracker.hold(settings.state_path, "outbox-retry")
    check_output_dir(settings.out, "--out / sync.out")
    report = run_outbox_retry(settings, config, tracker)
    tracker.summarise = outbox_summary
    return EXIT_WRITES_PENDING if report.writes_pending else EXIT_OK


def outbox_summary(report: dict[str, Any]) -> str:
    written = "; ".join(
        f"{t}s: " + ", ".join(f"{n} {k}" for k, n in counts.items())
        for t, counts in report["write_back"].items()
    )
    return (
        f"fhir-cat2 outbox retry: {report['outbox_resent']} pending writes re-sent"
        f"{f' ({written})' if written else ''}; {report['writes_pending']} writes pending in the outbox"
    )
