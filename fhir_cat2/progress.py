"""Progress on a terminal: the phase a run is in, how far along it is, and what it has done so far.

Shown only when stderr is a terminal (and not with ``--no-progress`` or ``--log-format json``): under cron,
systemd, Airflow or an interface engine stderr is a pipe or a file, and nothing is drawn. One line, drawn by
tqdm on stderr and redrawn at most four times a second; a log line clears it first (``logs.StderrHandler``
calls ``clear``) and it is drawn again on the next update. At the end the last state stays on screen, above
the summary line.

Each phase measures one thing, against a total when one is known (then with a percentage and an ETA):

    read      replay: input bytes, against the input files' sizes (a part counts once it is read)
    scan      sync: a type's changed resources, against its searchset Bundle's ``total`` when given
    fetch     sync: patients whose data is fetched, against the patients the scan found
    evaluate  patients evaluated, against the patients expected (sync: the scan's; replay: Patient resources)
    write     sync: write-backs done, against the resources the run derived

Beside the bar: pages and resources read, patients evaluated, writes done, codes, quarantined. A source that
knows its size up front (a bulk $export manifest) enters its phase with ``phase(name, total)`` and reports
with ``advance(n)``.
Only counts and phase and resource type names are shown: never an id or a value.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

REFRESH_SECONDS = 0.25
"""At most this often is the line redrawn: drawing must not slow a replay."""

_WITH_TOTAL = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}{postfix}]"
_WITHOUT_TOTAL = "{desc}: {n_fmt}{unit} [{elapsed}{postfix}]"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TB"


def wanted(disabled: bool, log_format: str) -> bool:
    stream = sys.stderr
    return not disabled and log_format == "text" and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """Counts a run's work; draws a line on ``stream`` (stderr) when ``enabled``."""

    def __init__(
        self,
        command: str,
        enabled: bool,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.command = command
        self.enabled = enabled
        self.pages = 0
        self.scanned = 0
        """Resources the change scan looked at (sync)."""
        self.resources = 0
        """Resources read as pipeline input."""
        self.patients = 0
        """Patients evaluated."""
        self.patients_expected: int | None = None
        self.writes = 0
        """Resources the write-back has dealt with (created, updated, unchanged or failed)."""
        self.bytes_total: int | None = None
        self.bytes_read = 0
        self.stats: Any = None
        """The pipeline's RunStats (codes, quarantined, written) once the pipeline exists."""
        self.phase_name = ""
        self.phase_total: int | None = None
        self.phase_done = 0
        self._scan_type: str | None = None
        self._clock = clock
        self._last = float("-inf")
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm  # type: ignore[import-untyped]  # here: a replay without a terminal skips it

            self._bar = tqdm(
                desc=command,
                unit="",
                file=stream if stream is not None else sys.stderr,
                leave=True,
                dynamic_ncols=True,
                miniters=1,  # drawn only when we say (no redraws from tqdm's monitor thread)
                bar_format=_WITHOUT_TOTAL,
                delay=float("inf"),  # nothing until the first phase
            )
            self._bar._time = clock

    # ------------------------------------------------------------------------------------------ phases

    def phase(self, name: str, total: int | None = None, *, unit: str = "", label: str = "") -> None:
        """Enter a phase; ``total`` when it is known. ``unit`` "B" counts bytes (scaled: K, M, G)."""
        self.phase_name = name
        self.phase_total = total
        self.phase_done = 0
        bar = self._bar
        if bar is None:
            return
        bar.set_description_str(f"{self.command} {name}{f' {label}' if label else ''}", refresh=False)
        bar.unit = unit if unit == "B" else f" {unit}" if unit else ""
        bar.unit_scale = unit == "B"
        bar.unit_divisor = 1024 if unit == "B" else 1000
        bar.bar_format = _WITH_TOTAL if total is not None else _WITHOUT_TOTAL
        bar.delay = 0
        bar.postfix = self.counters()
        bar.reset(total)  # draws the line
        bar.total = total  # reset() keeps the old total when given None
        self._last = self._clock()

    def advance(self, n: int) -> None:
        """``n`` more units of the current phase done (a source that entered its own phase)."""
        self._advance_to(self.phase_done + n)

    def reading(self, total_bytes: int) -> None:
        """Replay: the input's size, from the files' sizes."""
        self.bytes_total = total_bytes
        self.phase("read", total_bytes, unit="B")

    def scanned_patients(self, patients: int) -> None:
        """Sync: the change scan is done and found this many patients to fetch and evaluate."""
        self.patients_expected = patients
        self.phase("fetch", patients, unit="patients")

    def writing(self) -> None:
        """Sync: the last write-backs (and withdrawals), against every resource the run derived."""
        planned = sum(self.stats.written.values()) if self.stats is not None else None
        self.phase("write", planned, unit="resources")
        self._advance_to(self.writes)

    # ------------------------------------------------------------------------------------------ counters

    def page(self, phase: str, resource_type: str, page: Any) -> None:
        """A source's page observer: (phase, resource type, SearchPage)."""
        self.pages += 1
        entries = len(page.entries)
        if phase == "changes":
            if self.phase_name != "scan" or self._scan_type != resource_type:
                self._scan_type = resource_type  # a keyset walk's later searches bring their own totals
                total = page.bundle.get("total")
                known = total if type(total) is int else None
                self.phase("scan", known, unit="resources", label=resource_type)
                self._last = float("-inf")  # drawn with this first page counted
            self.scanned += entries
            self._advance_to(self.phase_done + entries)
            return
        if self.phase_name != "fetch":
            self.phase("fetch", self.patients_expected, unit="patients")
            self._last = float("-inf")
        if resource_type == "Patient":
            self._advance_to(self.phase_done + entries)
        else:
            self._refresh()

    def read_bytes(self, n: int) -> None:
        """Replay: this many more input bytes are read (a part, or a worker's task)."""
        self.bytes_read += n
        if self.phase_name == "read":
            self._advance_to(self.bytes_read)
            if self.bytes_total is not None and self.bytes_read >= self.bytes_total:
                self._evaluating()

    def patient(self) -> None:
        self.patients += 1
        if self.phase_name != "evaluate":
            self._evaluating()
            self._last = float("-inf")  # drawn with this first patient counted
        self._advance_to(self.patients)

    def wrote(self, outcome: str, n: int = 1) -> None:
        """The write-back's observer: ``n`` resources dealt with (``outcome``: created, failed...)."""
        self.writes += n
        if self.phase_name == "write":
            self._advance_to(self.writes)
        else:
            self._refresh()

    def count(self, items: Iterable[T]) -> Iterator[T]:
        """Pass input items through, counting them as resources read."""
        pending = 0
        for item in items:
            pending += 1
            if pending >= 200:
                self.add_resources(pending)
                pending = 0
            yield item
        self.add_resources(pending)

    def add_resources(self, n: int) -> None:
        self.resources += n
        self._refresh()

    def _evaluating(self) -> None:
        expected = self.patients_expected
        if expected is None and self.stats is not None:
            expected = self.stats.resources_read.get("Patient") or None  # replay: one per patient
        self.phase("evaluate", expected, unit="patients")

    def _advance_to(self, done: int) -> None:
        self.phase_done = done
        if self.phase_total is not None and done > self.phase_total:
            self.phase_total = done  # an estimate fell short (a patient without a Patient resource)
            if self._bar is not None:
                self._bar.total = done
        self._refresh()

    # ------------------------------------------------------------------------------------------ drawing

    def counters(self) -> str:
        """What the run has done so far, as shown beside the bar."""
        parts = [f"{self.pages} pages"] if self.pages else []
        if self.scanned:
            parts.append(f"{self.scanned} changed")
        if self.resources:
            parts.append(f"{self.resources} resources")
        if self.bytes_read and self.phase_name != "read":
            parts.append(f"{_size(self.bytes_read)} read")
        if self.phase_name not in ("fetch", "evaluate") and (self.patients or self.phase_name == "write"):
            parts.append(f"{self.patients} patients evaluated")
        if self.writes or self.phase_name == "write":
            parts.append(f"{self.writes} writes done")
        if self.stats is not None:
            parts.append(f"{sum(self.stats.codes.values())} codes")
            parts.append(f"{self.stats.quarantined} quarantined")
        return ", ".join(parts)

    def _refresh(self) -> None:
        if self._bar is None:
            return
        if self._clock() - self._last < REFRESH_SECONDS:
            return
        self._draw()

    def _draw(self) -> None:
        self._last = self._clock()
        self._sync()
        self._bar.refresh()

    def _sync(self) -> None:
        self._bar.n = self.phase_done
        self._bar.postfix = self.counters()  # tqdm puts it after ", "

    def clear(self) -> None:
        """Before a log line: take the bar off the line (it is redrawn on the next update, whenever)."""
        if self._bar is not None and self.phase_name:
            self._bar.clear()
            self._last = float("-inf")

    def close(self) -> None:
        """The final state, left on screen."""
        if self._bar is not None:
            if self.phase_name:
                self._sync()  # close() draws it
            else:
                self._bar.leave = False
            self._bar.close()
            self._bar = None
