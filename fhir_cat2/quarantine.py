"""What goes to quarantine: an entry naming the input (file and position, resource) and a reason a person
can act on, with its kind from a fixed list for counting (the run report's ``quarantine_reasons``).

The kind is set where the problem is found (``InputError.kind``, ``Rejected.kind``, ``Problem.kind``), never
read back out of the reason's words: the reason can quote a value from the input and is written to
``quarantine.ndjson`` only; the kind is data-free and goes to logs, reports and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import QuarantineKind
from .sources.records import Src

__all__ = ["QuarantineEntry", "QuarantineKind"]


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    kind: QuarantineKind
    src: Src
    reason: str
    ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.src.file,
            "position": self.src.position,
            "resource": self.ref,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], kind: QuarantineKind) -> QuarantineEntry:
        return cls(kind, Src(data["file"], data["position"]), data["reason"], data["resource"])
