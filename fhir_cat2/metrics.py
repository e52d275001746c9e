"""``--metrics-file PATH``: Prometheus text for a node-exporter textfile collector (or any scraper of files).

Each run adds its counts to the counters already in the file (read back, under a lock, then written to a
temporary file and renamed over the old one, so a scrape never sees half a file), and sets the gauges of
its command. Deleting the file restarts the counters, which Prometheus treats as a counter reset.

Every sample carries ``job_name``, the file's name without ``.prom``: two jobs (say this year's and last
year's sync) write two files in the collector's folder, and their samples never collide.

prometheus_client parses the previous file and renders the new one, in the text format its
``write_to_textfile`` writes and the node exporter's textfile collector reads (counters typed as
counters there). The write itself stays ours: ``write_to_textfile`` creates its temporary file under the
process umask, which is 077 during a command, so the exporter (another user) could not read the file
until a chmod after the rename. The file holds counts and timestamps only, no patient data, so it is
created readable by all (0644) before it is renamed into place, and synced to disk first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

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


def sample_name(family: str) -> str:
    kind = FAMILIES[family][0]
    return PREFIX + family + ("_total" if kind == "counter" else "")


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Samples of our own families in a file we wrote: {(family, labels): value}; other samples ignored.

    Raises ValueError when the text is not in the Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families  # only runs with a metrics file

    by_sample = {sample_name(f): f for f in FAMILIES}
    samples: dict[tuple[str, Labels], float] = {}
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            family = by_sample.get(sample.name)
            if family is None or set(sample.labels) != {"job_name", *FAMILIES[family][2]}:
                continue
            samples[(family, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def _families(samples: dict[tuple[str, Labels], float]) -> Iterator[Metric]:
    """The accumulated samples as prometheus_client metric families, in FAMILIES order."""
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

    for family, (kind, help_text, label_names) in FAMILIES.items():
        rows = sorted((labels, value) for (f, labels), value in samples.items() if f == family)
        if not rows:
            continue
        names = ["job_name", *label_names]
        metric: CounterMetricFamily | GaugeMetricFamily
        if kind == "counter":
            metric = CounterMetricFamily(PREFIX + family, help_text, labels=names)
        else:
            metric = GaugeMetricFamily(PREFIX + family, help_text, labels=names)
        for labels, value in rows:
            by_name = dict(labels)
            metric.add_metric([by_name[n] for n in names], value)
        yield metric


def render(samples: dict[tuple[str, Labels], float]) -> str:
    # imported here, not at the top: every command imports this module, few write a metrics file
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    class Samples(Collector):
        def collect(self) -> Iterator[Metric]:
            return _families(samples)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Samples())
    return generate_latest(registry).decode("utf-8")


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
        except (OSError, UnicodeDecodeError, ValueError):
            previous = {}  # unreadable or not Prometheus text: start over (a counter reset)
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
