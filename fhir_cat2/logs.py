"""Logging: text or JSON lines on stderr, with a redaction filter as the last line of defence.

The guarantee that logs hold no patient data comes from the call sites: they log resource references
(``Observation/abc``), counts, phases and paths without query strings, never names, birth dates,
identifier values, observation values, search URLs or tokens. This module adds a safety net on the one
handler fhir-cat2 installs:

* query strings of URLs (``...?patient=...``) and of relative searches (``Observation?code=...``) are
  masked, and so are user info in URLs (``https://user:pass@host``);
* ``Bearer``/``Basic`` credentials, JWTs (``eyJ...``) and ``key=value`` pairs of secret-looking names;
* every secret value fhir-cat2 resolved in this process (``register_secret``), wherever it appears;
* exception tracebacks are never formatted with their messages (a message can embed a value): a record's
  ``exc_info`` becomes the exception type and the frames (file, line, function) only.

Only fhir-cat2's own loggers follow ``--log-level``; other libraries stay at WARNING.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PACKAGE_LOGGER = "fhir_cat2"
MASK = "<redacted>"

_SECRETS: set[str] = set()
_SECRET_NAMES = (
    "access_token|refresh_token|id_token|client_secret|client_assertion|password|passwd|token|secret|api_key"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # user info in a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1" + MASK + "@"),
    # query string of an absolute URL: whatever follows the ?
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#\"']*)\?[^\s\"'<>]+"), r"\1?" + MASK),
    # query string of a relative search (Observation?patient=..., fhir?_getpages=...): a query holds at
    # least one name=value, which tells it from a question mark in prose ("(killed?)")
    (re.compile(r"(?i)(\b[a-z][a-z0-9_.-]*|/)\?(?=[^\s\"'<>]*=)[^\s\"'<>]+"), r"\1?" + MASK),
    # credentials in headers
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + MASK),
    # JSON Web Tokens (access tokens, client assertions)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # secret-looking key=value (a form or a query) or "key": "value" (JSON)
    (re.compile(rf"(?i)\b({_SECRET_NAMES})=[^\s\"'&,;]+"), r"\1=" + MASK),
    (re.compile(rf'(?i)"({_SECRET_NAMES})"\s*:\s*"[^"]*"'), r'"\1": "' + MASK + '"'),
    # a PEM block
    (re.compile(r"-----BEGIN [A-Z ]*-----[\s\S]*?-----END [A-Z ]*-----"), MASK),
]


def register_secret(value: str) -> None:
    """A secret resolved in this process (a token, a password, a key): masked wherever it would appear."""
    if value and len(value) >= 4:
        _SECRETS.add(value)
        for line in value.splitlines():
            if len(line.strip()) >= 16 and not line.startswith("-----"):  # a PEM key's lines, each on its own
                _SECRETS.add(line.strip())


def redact(text: str) -> str:
    """Mask secrets, credentials and query strings in a text meant for a log, stderr or a report."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def safe_traceback(exc: BaseException) -> str:
    """An exception as its type and frames only: messages can embed patient data or secrets."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " < ".join(f"{_short_path(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames[-8:]))
    return f"{type(exc).__name__} at {where or 'unknown location'} (message omitted)"


def _short_path(path: str) -> str:
    marker = "fhir_cat2/"
    index = path.rfind(marker)
    return path[index:] if index >= 0 else path.rsplit("/", 1)[-1]


class RedactingFilter(logging.Filter):
    """Renders each record's message once, redacted; replaces exc_info with a message-free summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not leak its arguments either
            message = f"{record.msg!s} (unformattable arguments)"
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} [{safe_traceback(record.exc_info[1])}]"
        record.msg = redact(message)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        run = getattr(record, "run_id", None)
        prefix = f"{stamp} {record.levelname} {record.name}"
        return f"{prefix} [{run[:8]}]: {record.getMessage()}" if run else f"{prefix}: {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run_id (when a run is in progress)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run = getattr(record, "run_id", None)
        if run:
            data["run_id"] = run
        return orjson.dumps(data).decode()


class _RunIdFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.run_id and not hasattr(record, "run_id"):
            record.run_id = self.run_id
        return True


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (tests capture it); clears a progress bar first."""

    def __init__(self) -> None:
        super().__init__()
        self.before_write: list[Any] = []

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record: logging.LogRecord) -> None:
        for hook in self.before_write:
            hook()
        super().emit(record)


_run_filter = _RunIdFilter()
_console = {"format": "text"}


def console_format() -> str:
    """The format of what fhir-cat2 writes on stderr besides log records (text or json)."""
    return _console["format"]


def set_console_format(fmt: str) -> None:
    """Before the arguments are parsed (usage errors) and whenever the log format is (re)applied."""
    _console["format"] = fmt if fmt in LOG_FORMATS else "text"


def console(message: str, *, event: str, level: str = "INFO", **fields: Any) -> None:
    """A line for the operator that is not a log record (a usage error, the fatal error, the run summary):
    written whatever the log level, redacted; as is in text mode, one JSON object in json mode with the
    fields of a log record plus ``event`` and ``fields``."""
    text = redact(message)
    if _console["format"] != "json":
        print(text, file=sys.stderr, flush=True)
        return
    data: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": PACKAGE_LOGGER,
        "event": event,
        "message": text,
    }
    if _run_filter.run_id:
        data["run_id"] = _run_filter.run_id
    for name, value in fields.items():
        data.setdefault(name, _redacted(value))
    print(orjson.dumps(data).decode(), file=sys.stderr, flush=True)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def set_run_id(run_id: str | None) -> None:
    """Every log line of a run carries its id (the id of its run record)."""
    _run_filter.run_id = run_id


@contextmanager
def configured(level: str = "WARNING", fmt: str = "text") -> Iterator[StderrHandler]:
    """Install fhir-cat2's handler for the duration of a command; restore the previous setup after."""
    root = logging.getLogger()
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = StderrHandler()
    handler.addFilter(_run_filter)
    handler.addFilter(RedactingFilter())
    apply(handler, level, fmt)
    saved = (root.level, package.level, list(root.handlers), console_format())
    for existing in list(root.handlers):
        if isinstance(existing, StderrHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        package.setLevel(saved[1])
        logging.captureWarnings(False)
        set_run_id(None)
        set_console_format(saved[3])


def apply(handler: StderrHandler, level: str, fmt: str) -> None:
    """(Re)apply a level and a format, e.g. once the configuration file has been read."""
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    set_console_format(fmt)
    logging.getLogger(PACKAGE_LOGGER).setLevel(level)
