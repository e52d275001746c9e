"""Command line for operations: options every command takes (logs, metrics, progress), ``fhir-cat2 runs``,
``fhir-cat2 outbox list|drop`` and ``fhir-cat2 config check``, and what ``main`` does around every run
(signals, umask, tracker). ``outbox retry`` talks to the server: see cli_live."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from . import logs
from .config import AppConfig
from .lock import RunLock, new_holder
from .metrics import check_writable
from .progress import Progress, wanted
from .runs import RunTracker, Terminated
from .state import PendingWrite, SyncState, parse_instant

RUN_COMMANDS = ("replay", "sync", "record")


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--log-level, --log-format, --metrics-file, --no-progress: before or after the command name."""
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--log-level", choices=logs.LOG_LEVELS, default=default, help="default WARNING (config log.level)"
    )
    parser.add_argument(
        "--log-format", choices=logs.LOG_FORMATS, default=default, help="text or json lines on stderr"
    )
    parser.add_argument(
        "--metrics-file", metavar="PATH", default=default, help="Prometheus text for a textfile collector"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress bar, even on a terminal",
    )


def add_ops_commands(sub: argparse._SubParsersAction[Any], parser_class: type) -> None:
    runs = sub.add_parser("runs", help="recent runs recorded in the state file")
    add_global_options(runs, top=False)
    runs.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    runs.add_argument(
        "run_id", nargs="?", metavar="ID", help="with show: a run id, a prefix of it, or 'last'"
    )
    runs.add_argument("--state", metavar="PATH", help="state file (default: from --config, else the default)")
    runs.add_argument("--config", metavar="FILE", help="configuration file (for sync.state)")
    runs.add_argument("--limit", type=int, default=20, help="runs to list (default 20)")
    runs.add_argument("--format", choices=("text", "json"), default="text")

    outbox = sub.add_parser(
        "outbox", help="writes the server refused or could not take, kept for the next sync"
    )
    add_global_options(outbox, top=False)
    outbox.add_argument("action", choices=("list", "retry", "drop"))
    outbox.add_argument("ids", nargs="*", type=int, metavar="ID", help="with drop: the entries to remove")
    outbox.add_argument("--all", action="store_true", help="with drop: remove every entry")
    outbox.add_argument("--json", action="store_true", help="with list: JSON on stdout")
    outbox.add_argument("--config", metavar="FILE", help="configuration file (sync.state; server for retry)")
    outbox.add_argument(
        "--state", metavar="PATH", help="state file (default: from --config, else the default)"
    )
    outbox.add_argument(
        "--base-url", metavar="URL", help="with retry: FHIR base URL (config server.base_url)"
    )
    outbox.add_argument(
        "--write-to", metavar="URL", help="with retry: the write target (default: the source)"
    )
    outbox.add_argument("--out", metavar="DIR", help="with retry: folder for the run report and quarantine")

    config = sub.add_parser("config", help="configuration files")
    config_sub: argparse._SubParsersAction[argparse.ArgumentParser] = config.add_subparsers(
        dest="config_command", required=True, parser_class=parser_class
    )
    check = config_sub.add_parser(
        "check",
        help="validate a configuration, resolve its secrets, prove access to the server (read and write)",
    )
    add_global_options(check, top=False)
    check.add_argument(
        "file", nargs="?", metavar="FILE", help="configuration file (default: environment only)"
    )
    check.add_argument("--offline", action="store_true", help="do not contact the server")
    check.add_argument(
        "--dry-run",
        action="store_true",
        help="check what sync --dry-run needs: reading only, no write checks",
    )
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="json: one document, a result per check"
    )


# ------------------------------------------------------------------------------------------ main


@contextmanager
def process_setup() -> Iterator[None]:
    """For one command: files created owner-only (umask 077), SIGTERM raised as ``Terminated`` (cleaned up
    like Ctrl-C, exit 143). Restored after, since tests call main() many times in one process."""
    previous_umask = os.umask(0o077)
    previous_term: Any = None

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous_term = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        previous_term = None
    try:
        yield
    finally:
        os.umask(previous_umask)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def requested_format(argv: list[str]) -> str:
    """The log format asked for on the command line or in the environment, read before parsing (so that a
    usage error is JSON too when json was asked for)."""
    fmt = os.environ.get("FHIR_CAT2_LOG__FORMAT", "").lower()
    for index, arg in enumerate(argv):
        if arg == "--log-format" and index + 1 < len(argv):
            fmt = argv[index + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.split("=", 1)[1]
    return fmt if fmt in logs.LOG_FORMATS else "text"


def initial_logging(args: argparse.Namespace) -> tuple[str, str]:
    """Level and format before the configuration file is read: flags, else FHIR_CAT2_LOG__*, else defaults."""
    level = args.log_level or os.environ.get("FHIR_CAT2_LOG__LEVEL", "").upper() or "WARNING"
    fmt = args.log_format or os.environ.get("FHIR_CAT2_LOG__FORMAT", "").lower() or "text"
    if level not in logs.LOG_LEVELS:
        level = "WARNING"
    if fmt not in logs.LOG_FORMATS:
        fmt = "text"
    return level, fmt


def new_tracker(args: argparse.Namespace, argv: list[str], log_format: str) -> RunTracker | None:
    retry = args.command == "outbox" and args.action == "retry"  # a run: lock, record, report, metrics
    if args.command not in RUN_COMMANDS and not retry:
        return None
    metrics_path = check_writable(args.metrics_file) if args.metrics_file else None
    progress = Progress(args.command, wanted(bool(args.no_progress), log_format))
    return RunTracker(args.command, list(argv), metrics_path=metrics_path, progress=progress)


def apply_config(args: argparse.Namespace, config: AppConfig) -> None:
    """Once the configuration is read: its log settings (unless flags gave them), metrics file, retention."""
    handler = getattr(args, "_log_handler", None)
    if handler is not None:
        level = args.log_level or config.log.level
        fmt = args.log_format or config.log.format
        logs.apply(handler, level, fmt)
    tracker: RunTracker | None = getattr(args, "_tracker", None)
    if tracker is not None:
        tracker.keep_runs = config.sync.keep_runs
        if tracker.metrics_path is None and config.metrics.file:
            tracker.metrics_path = check_writable(config.metrics.file)


# ------------------------------------------------------------------------------------------ runs


def cmd_runs(args: argparse.Namespace, load_config: Callable[[str | None], AppConfig]) -> int:
    path = args.state or load_config(args.config).sync.state
    state = SyncState(path, create=False)
    try:
        if args.action == "show":
            if not args.run_id:
                from .errors import ConfigError

                raise ConfigError("runs show needs a run id (or 'last')")
            row = state.run(args.run_id)
            sys.stdout.write(orjson.dumps(_run_json(row), option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        rows = state.runs(limit=max(1, args.limit))
    finally:
        state.close()
    if args.format == "json":
        sys.stdout.write(
            orjson.dumps([_run_json(r, with_report=False) for r in rows], option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
        return 0
    if not rows:
        print(f"no runs recorded in {path}")
        return 0
    print(
        f"{'RUN':12}  {'STARTED (UTC)':20}  {'COMMAND':16}  {'STATUS':11}  {'EXIT':>4}  {'TIME':>7}  SUMMARY"
    )
    for row in rows:
        print(
            f"{str(row['id'])[:12]:12}  {_short_time(row['started_at']):20}  "
            f"{_command(row):16}  {row['status']!s:11}  {_exit(row):>4}  {_duration(row):>7}  "
            f"{_summary_tail(row)}"
        )
    return 0


def _run_json(row: dict[str, Any], with_report: bool = True) -> dict[str, Any]:
    data = {k: v for k, v in row.items() if k != "report"}
    if with_report:
        data["report"] = orjson.loads(row["report"]) if row.get("report") else None
    return data


def _short_time(value: Any) -> str:
    return str(value or "")[:19].replace("T", " ")


def _command(row: dict[str, Any]) -> str:
    mode = row.get("mode")
    return f"{row['command']} ({mode})" if mode and mode != row["command"] else str(row["command"])


def _exit(row: dict[str, Any]) -> str:
    return "" if row.get("exit_code") is None else str(row["exit_code"])


def _duration(row: dict[str, Any]) -> str:
    if not row.get("finished_at") or not row.get("started_at"):
        return ""
    seconds = (parse_instant(str(row["finished_at"])) - parse_instant(str(row["started_at"]))).total_seconds()
    return f"{seconds:.1f}s"


def _summary_tail(row: dict[str, Any]) -> str:
    text = str(row.get("summary") or "")
    if ": " in text:
        text = text.split(": ", 1)[1]
    if row["status"] == "running":
        text = f"pid {row.get('pid')} on {row.get('host')}"
    return text


# ------------------------------------------------------------------------------------------ outbox


def cmd_outbox(args: argparse.Namespace, load_config: Callable[[str | None], AppConfig]) -> int:
    """``outbox list`` and ``outbox drop`` (``retry`` is in cli_live: it needs the server)."""
    from .errors import ConfigError

    path = args.state or load_config(args.config).sync.state
    if args.action == "drop":
        if bool(args.ids) == bool(args.all):
            raise ConfigError("outbox drop needs entry ids (see outbox list) or --all")
        # under the runs' lock: a sync re-sending the outbox meanwhile would keep a dropped write again
        with RunLock(path, new_holder(uuid.uuid4().hex, "fhir-cat2 outbox drop")):
            state = SyncState(path, create=False)
            try:
                dropped = state.drop_pending(None if args.all else list(args.ids))
                print(f"{dropped} pending writes dropped from the outbox; {_pending_total(state)} left")
            finally:
                state.close()
        return 0
    state = SyncState(path, create=False)
    try:
        rows = state.pending_writes()
    finally:
        state.close()
    if args.json:
        data = [_outbox_json(row) for row in rows]
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not rows:
        print(f"the outbox of {path} is empty")
        return 0
    print(
        f"{'ID':>5}  {'TYPE':13}  {'BUSINESS KEY':14}  {'WANTED':8}  {'TRIES':>5}  {'FIRST FAILED':19}  "
        f"{'LAST FAILED':19}  REASON"
    )
    for row in rows:
        print(
            f"{row.id:>5}  {row.resource_type:13}  {row.key[:12] + '..':14}  "
            f"{'write' if row.resource is not None else 'withdraw':8}  {row.attempts:>5}  "
            f"{_short_time(row.first_failed_at):19}  {_short_time(row.last_failed_at):19}  {row.reason[:80]}"
        )
    print(f"{len(rows)} pending writes; the server's own words are in the quarantine.ndjson of those runs")
    return 0


def _pending_total(state: SyncState) -> int:
    return sum(state.pending_counts().values())


def _outbox_json(row: PendingWrite) -> dict[str, Any]:
    """An outbox row without its content or the server's diagnostics (those may quote patient data)."""
    return {
        "id": row.id,
        "target": logs.redact(row.target),
        "resource_type": row.resource_type,
        "business_key": row.key,
        "wanted": "write" if row.resource is not None else "withdraw",
        "reason": row.reason,
        "attempts": row.attempts,
        "first_failed_at": row.first_failed_at,
        "last_failed_at": row.last_failed_at,
        "job": row.job,
        "run_id": row.run_id,
    }
