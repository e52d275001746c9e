"""Progress on a terminal: pages fetched, resources per second, codes emitted, quarantined.

Shown only when stderr is a terminal (and not with ``--no-progress`` or ``--log-format json``): under cron,
systemd, Airflow or an interface engine stderr is a pipe or a file, and nothing is drawn. The bar is drawn by
tqdm, on stderr, redrawn at most a few times a second; log lines clear it before they are written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def wanted(disabled: bool, log_format: str) -> bool:
    stream = sys.stderr
    return not disabled and log_format == "text" and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """Counts a run's work; draws a line on the terminal when ``enabled``."""

    def __init__(self, command: str, enabled: bool) -> None:
        self.command = command
        self.enabled = enabled
        self.pages = 0
        self.resources = 0
        self.patients = 0
        self.stats: Any = None
        """The pipeline's RunStats (codes, quarantined) once the pipeline exists."""
        self._bar: Any = None
        self._last = 0.0
        self._started = time.monotonic()
        if enabled:
            from tqdm import tqdm  # type: ignore[import-untyped]

            self._bar = tqdm(
                desc=f"fhir-cat2 {command}",
                unit=" resources",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.2,
                bar_format="{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}] {postfix}",
            )

    def page(self, *_: object) -> None:
        self.pages += 1
        self._refresh()

    def patient(self) -> None:
        self.patients += 1
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
        if self._bar is not None and n:
            self._bar.update(n)
        self._refresh()

    def _refresh(self) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        codes = sum(self.stats.codes.values()) if self.stats is not None else 0
        quarantined = self.stats.quarantined if self.stats is not None else 0
        parts = [f"{self.pages} pages"] if self.pages else []
        if self.patients:
            parts.append(f"{self.patients} patients evaluated")
        postfix = ", ".join([*parts, f"{codes} codes", f"{quarantined} quarantined"])
        self._bar.set_postfix_str(postfix, refresh=True)

    def clear(self) -> None:
        """Before a log line: take the bar off the line (it is redrawn on the next update)."""
        if self._bar is not None:
            self._bar.clear()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
