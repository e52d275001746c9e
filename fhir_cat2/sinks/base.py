"""The one interface every sink implements (files, a FHIR server), and the counts every sink keeps.

Executors write through it and never ask which sink they hold: a file sink has nothing to withdraw, so
``expect`` does nothing there; a server sink plans writes against the server's copies and keeps what it
cannot deliver in the outbox. ``write_line``/``quarantine_line`` take what a worker process already
serialised (the forked executor's merge), so a file sink copies bytes and a server sink parses them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..quarantine import QuarantineEntry


@dataclass
class SinkStats:
    """What a sink did, per resource type and outcome (written, created, updated, unchanged, withdrawn,
    appended, pending, failed), and the totals a run report and the exit code need."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failed: int = 0
    """Writes neither delivered nor kept in an outbox (quarantined only): the watermark must not move."""
    pending: int = 0
    """Writes kept in the outbox by this run."""
    pending_by_type: dict[str, int] = field(default_factory=dict)
    """Everything in the outbox of the write target once the sink closed, by resource type."""
    resent: int = 0
    """Outbox rows re-sent at the start of the run."""
    bundles: int = 0
    observer: Callable[[str, int], None] | None = field(default=None, repr=False, compare=False)
    """Told (outcome, n) as writes are done (progress on a terminal)."""

    def add(self, resource_type: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(resource_type, Counter())[outcome] += n
        if self.observer is not None:
            self.observer(outcome, n)

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    @property
    def writes_pending(self) -> int:
        return sum(self.pending_by_type.values())

    def to_json(self) -> dict[str, Any]:
        return {t: dict(sorted(c.items())) for t, c in sorted(self.counts.items())}


class Sink(Protocol):
    """Where a run's resources and quarantine entries go."""

    @property
    def stats(self) -> SinkStats: ...

    def write(self, resource: dict[str, Any]) -> None: ...

    def write_line(self, resource_type: str, line: bytes) -> None:
        """A resource already serialised as one NDJSON line (no newline)."""
        ...

    def quarantine(self, entry: QuarantineEntry) -> None: ...

    def quarantine_line(self, line: bytes) -> None:
        """A quarantine entry already serialised as one NDJSON line (no newline)."""
        ...

    def expect(self, candidates: Iterable[tuple[str, str, str | None]]) -> None:
        """(type, business key, encounter reference) of what earlier runs may have written for this run's
        patients: what this run does not write again is withdrawn at close (where the sink can withdraw)."""
        ...

    def close(self) -> None:
        """Deliver what is buffered (and withdraw what is stale); then the run's output is complete."""
        ...


class NullSink:
    """Takes everything and keeps nothing (``explain`` evaluates, but writes nothing)."""

    def __init__(self) -> None:
        self._stats = SinkStats()

    @property
    def stats(self) -> SinkStats:
        return self._stats

    def write(self, resource: dict[str, Any]) -> None:
        pass

    def write_line(self, resource_type: str, line: bytes) -> None:
        pass

    def quarantine(self, entry: QuarantineEntry) -> None:
        pass

    def quarantine_line(self, line: bytes) -> None:
        pass

    def expect(self, candidates: Iterable[tuple[str, str, str | None]]) -> None:
        pass

    def close(self) -> None:
        pass
