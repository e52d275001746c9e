"""``--metrics-file PATH``: OpenMetrics text for a node-exporter textfile collector (or any scraper of files).

Each run adds its counts to the counters already in the file (read back, under a lock, then written to a
temporary file and renamed over the old one, so a scrape never sees half a file), and sets the gauges of
its command. Deleting the file restarts the counters, which Prometheus treats as a counter reset.

Every sample carries ``job_name``, the file's name without ``.prom``: two jobs (say this year's and last
year's sync) write two files in the collector's folder, and their samples never collide.

The file holds counts and timestamps only, no patient data, so it is created readable by all (0644): the
exporter usually runs as another user. The node exporter reads the Prometheus text format, which accepts
this file; it sees the counters' ``_total`` samples as untyped, which ``rate()`` and ``increase()`` accept.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

PREFIX = "fhir_cat2_"
METRICS_FILE_MODE = 0o644

# family -> (type, help, label names besides job_name)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "runs": (
        "counter",
        "Runs finished, by command and outcome (ok, quarantined, config, auth, unavailable,"
        " locked, interrupted, internal).",
        ("command", "outcome"),
    ),
    "resources_read": ("counter", "FHIR resources read, by resource type.", ("command", "resource_type")),
    "codes_emitted": ("counter", "Quality-data codes emitted, by code.", ("command", "code")),
    "quarantined": ("counter", "Items quarantined, by reason.", ("command", "reason")),
    "written": (
        "counter",
        "Resources written back (or to files), by type and outcome.",
        ("command", "resource_type", "outcome"),
    ),
    "retries": ("counter", "HTTP requests retried after a transient failure.", ("command",)),
    "run_seconds": ("counter", "Time spent in runs, in seconds.", ("command",)),
    "last_run_timestamp_seconds": ("gauge", "When the last run finished (Unix time).", ("command",)),
    "last_success_timestamp_seconds": (
        "gauge",
        "When the last run that completed (exit 0 or 1) finished (Unix time).",
        ("command",),
    ),
    "last_run_duration_seconds": ("gauge", "Duration of the last run, in seconds.", ("command",)),
    "last_run_exit_code": ("gauge", "Exit code of the last run.", ("command",)),
    "writes_pending": (
        "gauge",
        "Writes kept in the outbox after the last sync, by resource type: not on the server yet.",
        ("resource_type",),
    ),
    "watermark_timestamp_seconds": (
        "gauge",
        "Sync watermark per resource type (Unix time): data changed after it has not been read yet.",
        ("resource_type",),
    ),
}
OUTCOMES = {
    0: "ok",
    1: "quarantined",
    2: "config",
    3: "auth",
    4: "unavailable",
    5: "locked",
    6: "writes_pending",
    130: "interrupted",
    143: "interrupted",
}

Labels = tuple[tuple[str, str], ...]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class RunMetrics:
    """What one run adds to the file."""

    command: str
    exit_code: int
    duration: float
    finished_at: float = field(default_factory=time.time)
    resources_read: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    written: dict[tuple[str, str], int] = field(default_factory=dict)
    retries: int = 0
    watermarks: dict[str, float] = field(default_factory=dict)
    writes_pending: dict[str, int] | None = None
    """Outbox rows per resource type after the run; None: the run did not look (left as it was)."""


def job_name(path: Path) -> str:
    return path.name.removesuffix(".prom")


def check_writable(path: str) -> Path:
    """Refuse a metrics file whose folder does not exist or cannot be written (before any work)."""
    target = Path(path).expanduser()
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"--metrics-file {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--metrics-file {path}: cannot write to folder {folder}")
    return target


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def sample_name(family: str) -> str:
    kind = FAMILIES[family][0]
    return PREFIX + family + ("_total" if kind == "counter" else "")


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Samples of our own families in a file we wrote: {(family, labels): value}; other lines ignored."""
    by_sample = {sample_name(f): f for f in FAMILIES}
    samples: dict[tuple[str, Labels], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match or match.group(1) not in by_sample:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(match.group(2) or "")))
        samples[(by_sample[match.group(1)], labels)] = value
    return samples


def render(samples: dict[tuple[str, Labels], float]) -> str:
    lines: list[str] = []
    for family, (kind, help_text, _) in FAMILIES.items():
        rows = sorted((labels, value) for (f, labels), value in samples.items() if f == family)
        if not rows:
            continue
        name = PREFIX + family
        lines.append(f"# TYPE {name} {kind}")
        lines.append(f"# HELP {name} {help_text}")
        for labels, value in rows:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sample_name(family)}{{{text}}} {_number(value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(job: str, **values: str) -> Labels:
    return tuple(sorted({"job_name": job, **values}.items()))


def update(path: Path, run: RunMetrics) -> None:
    """Add one run to the metrics file, atomically."""
    job = job_name(path)
    with _locked(path):
        try:
            previous = parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            previous = {}
        except (OSError, UnicodeDecodeError):
            previous = {}  # unreadable: start over (a counter reset)
        samples = dict(previous)

        def add(family: str, amount: float, **labels: str) -> None:
            key = (family, _labels(job, **labels))
            samples[key] = samples.get(key, 0.0) + amount

        def set_gauge(family: str, value: float, **labels: str) -> None:
            samples[(family, _labels(job, **labels))] = value

        command = run.command
        add("runs", 1, command=command, outcome=OUTCOMES.get(run.exit_code, "internal"))
        for resource_type, count in run.resources_read.items():
            add("resources_read", count, command=command, resource_type=resource_type)
        for code, count in run.codes.items():
            add("codes_emitted", count, command=command, code=code)
        for reason, count in run.quarantined.items():
            add("quarantined", count, command=command, reason=reason)
        for (resource_type, outcome), count in run.written.items():
            add("written", count, command=command, resource_type=resource_type, outcome=outcome)
        add("retries", run.retries, command=command)
        add("run_seconds", run.duration, command=command)
        set_gauge("last_run_timestamp_seconds", round(run.finished_at, 3), command=command)
        set_gauge("last_run_duration_seconds", round(run.duration, 3), command=command)
        set_gauge("last_run_exit_code", run.exit_code, command=command)
        if run.exit_code in (0, 1):
            set_gauge("last_success_timestamp_seconds", round(run.finished_at, 3), command=command)
        for resource_type, stamp in run.watermarks.items():
            set_gauge("watermark_timestamp_seconds", stamp, resource_type=resource_type)
        if run.writes_pending is not None:
            for key in [k for k in samples if k[0] == "writes_pending"]:
                samples[key] = 0.0  # a type whose rows were all delivered
            for resource_type in ("Claim", "MeasureReport", *run.writes_pending):
                set_gauge(
                    "writes_pending", run.writes_pending.get(resource_type, 0), resource_type=resource_type
                )
        _write_atomically(path, render(samples).encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    # A hidden name that does not end in .prom: the collector never reads a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, METRICS_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, METRICS_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two runs writing one file (a run and a second one refused by the run lock) must not lose a count."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: last writer wins
            pass
        yield
    finally:
        os.close(fd)
