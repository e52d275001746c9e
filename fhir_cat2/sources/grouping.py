"""Group slim records by patient, in memory up to a budget, then spilled to a temporary SQLite file.

Input may be ordered any way (one Bundle per patient, or bulk NDJSON split by resource type), so a
patient is complete only when all input has been read. Memory stays bounded: past ``budget`` records
everything goes to a private temporary database and patients are read back one at a time.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator

from .records import ResourceRecord

DEFAULT_BUDGET = 20_000
"""Records kept in memory before spilling: with it, a replay's peak memory stops growing past about 50,000
input resources (benchmarks/replay.py). Spilling costs little: at 200,000 resources, a budget of 100,000
(nothing spilled) and one of 20,000 took the same time."""


class PatientGrouper:
    def __init__(self, budget: int = DEFAULT_BUDGET, spill_dir: str | None = None) -> None:
        self.budget = budget
        self.spill_dir = spill_dir
        self._memory: dict[str, list[ResourceRecord]] = {}
        self._in_memory = 0
        self._seq = 0
        self._db: sqlite3.Connection | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.spilled = 0

    def add(self, patient_id: str, record: ResourceRecord) -> None:
        self._memory.setdefault(patient_id, []).append(record)
        self._in_memory += 1
        if self._in_memory >= self.budget:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="fhir-cat2-", dir=self.spill_dir)
            os.chmod(self._tmpdir.name, 0o700)
            self._db = sqlite3.connect(os.path.join(self._tmpdir.name, "group.sqlite"))
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE r (patient TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL)"
            )
        rows = []
        for patient_id, records in self._memory.items():
            # One row per patient and flush: far fewer rows and pickle calls than one per record.
            self._seq += 1
            rows.append((patient_id, self._seq, pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)))
            self.spilled += len(records)
        self._db.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
        self._memory.clear()
        self._in_memory = 0

    def patients(self) -> Iterator[tuple[str, list[ResourceRecord]]]:
        """Each patient with all their records, in patient-id order (deterministic output)."""
        if self._db is None:
            for patient_id in sorted(self._memory):
                yield patient_id, self._memory[patient_id]
            return
        if self._memory:
            self._spill()
        self._db.execute("CREATE INDEX r_patient ON r (patient, seq)")
        yield from _by_patient(self._db.execute("SELECT patient, data FROM r ORDER BY patient, seq"))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self._memory.clear()


def _by_patient(rows: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, list[ResourceRecord]]]:
    """Spilled rows (patient, pickled records), ordered by patient and spill: each patient's records."""
    current: str | None = None
    batch: list[ResourceRecord] = []
    for patient_id, data in rows:
        if patient_id != current:
            if current is not None:
                yield current, batch
            current, batch = patient_id, []
        batch.extend(pickle.loads(data))
    if current is not None:
        yield current, batch
