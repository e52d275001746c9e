"""Validation of every outgoing resource with the full fhir.resources R4B model, off the hot path.

Full-model validation costs about 0.5-0.7 ms per Claim or MeasureReport, as much as reading and
evaluating the input that produced it. When a spare CPU exists, resources are validated in one worker
process while the main process goes on reading; results come back strictly in submission order, so the
output stays byte-for-byte deterministic. Small runs (and machines with one CPU) validate inline.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import orjson
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import ValidationError

MODELS: dict[str, Any] = {"Claim": Claim, "MeasureReport": MeasureReport}
INLINE_UNTIL = 200
"""Resources validated inline before a worker process is worth starting."""
BATCH = 32
"""Resources sent to the worker per task (per-task overhead is ~0.1 ms)."""
WINDOW = 16
"""Batches in flight to the worker at most (bounds memory)."""

Accept = Callable[[dict[str, Any]], None]
Reject = Callable[[dict[str, Any], str], None]


def problem_of(resource_type: str, data: bytes) -> str | None:
    """None when ``data`` is a valid R4B resource of that type, else the first problem as text."""
    try:
        MODELS[resource_type].model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"failed FHIR R4B validation at {loc}: {first['msg']}"
    return None


def problems_of(batch: list[tuple[str, bytes]]) -> list[str | None]:
    return [problem_of(resource_type, data) for resource_type, data in batch]


def _workers_wanted() -> int:
    configured = os.environ.get("FHIR_CAT2_VALIDATION_WORKERS")
    if configured is not None:
        return max(0, int(configured))
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class OrderedValidator:
    """Validate resources in order; ``accept`` gets each valid one, ``reject`` each invalid one with why."""

    def __init__(self, accept: Accept, reject: Reject) -> None:
        self._accept = accept
        self._reject = reject
        self._pending: deque[tuple[Future[list[str | None]], list[dict[str, Any]]]] = deque()
        self._batch: list[dict[str, Any]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._submitted = 0
        self._workers = _workers_wanted()

    def submit(self, resource: dict[str, Any]) -> None:
        self._submitted += 1
        if self._pool is None and self._workers and self._submitted > INLINE_UNTIL:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
        if self._pool is None:
            self._finish(resource, problem_of(resource["resourceType"], orjson.dumps(resource)))
            return
        self._batch.append(resource)
        if len(self._batch) >= BATCH:
            self._send()
        self._drain(block=False)

    def _send(self) -> None:
        assert self._pool is not None
        batch, self._batch = self._batch, []
        payload = [(r["resourceType"], orjson.dumps(r)) for r in batch]
        self._pending.append((self._pool.submit(problems_of, payload), batch))
        self._drain(block=len(self._pending) > WINDOW)

    def _drain(self, block: bool) -> None:
        while self._pending and (block or self._pending[0][0].done()):
            future, batch = self._pending.popleft()
            for resource, problem in zip(batch, future.result(), strict=True):
                self._finish(resource, problem)
            block = block and len(self._pending) > WINDOW

    def _finish(self, resource: dict[str, Any], problem: str | None) -> None:
        if problem is None:
            self._accept(resource)
        else:
            self._reject(resource, f"{resource['resourceType']}/{resource.get('id')} {problem}")

    def close(self) -> None:
        """Wait for every resource in flight, then stop the worker."""
        try:
            if self._batch:
                self._send()
            while self._pending:
                self._drain(block=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
