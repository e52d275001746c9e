"""A small pool of forked worker processes that inherit their state instead of having it pickled.

``ProcessPoolExecutor`` pickles the function and arguments of every task; the state our workers need (the
rules, the prepared measure evaluator) is large, so it would be pickled and rebuilt per task, or parked in a
module global for the fork to inherit. Here each worker is forked with ``state`` as an argument of its main
function: inherited once, never pickled, gone with the worker. Tasks are small and go through a queue;
results come back in task order. A task whose worker raised or died is run in the parent instead (nothing is
lost; the caller is told, so it can log it).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar, cast

S = TypeVar("S")
R = TypeVar("R")


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _serve(fn: Callable[..., Any], state: Any, tasks: Any, results: Connection) -> None:
    """A worker's main loop: take (index, args) until None; report start, then the result or the failure."""
    try:
        while (task := tasks.get()) is not None:
            index, args = task
            results.send(("start", index, None))
            try:
                outcome = fn(state, *args)
            except Exception as exc:  # reported; the parent runs the task itself
                results.send(("failed", index, type(exc).__name__))
                continue
            results.send(("done", index, outcome))
    finally:
        results.close()


class ForkPool(Generic[S, R]):
    """Run ``fn(state, *args)`` for every task on ``workers`` forked processes; see the module docstring."""

    def __init__(self, workers: int, fn: Callable[..., R], state: S) -> None:
        self.workers = workers
        self.fn = fn
        self.state = state

    def run(
        self, tasks: list[tuple[Any, ...]], on_failure: Callable[[int, str], None] | None = None
    ) -> Iterator[R]:
        """The results of ``tasks``, in task order."""
        context = multiprocessing.get_context("fork")
        # a Queue, not a SimpleQueue: its feeder thread never blocks us while a worker waits to send a result
        queue = context.Queue()
        processes = []
        readers: dict[Connection, Any] = {}
        for _ in range(min(self.workers, len(tasks)) or 1):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_serve, args=(self.fn, self.state, queue, writer), daemon=True)
            process.start()
            writer.close()
            processes.append(process)
            readers[reader] = process
        for index, args in enumerate(tasks):
            queue.put((index, args))
        for _ in processes:
            queue.put(None)
        done: dict[int, R] = {}
        failed: dict[int, str] = {}
        running: dict[Connection, int | None] = dict.fromkeys(readers)
        next_index = 0
        try:
            while next_index < len(tasks):
                while next_index in done or next_index in failed:
                    if next_index in failed:
                        if on_failure is not None:
                            on_failure(next_index, failed.pop(next_index))
                        yield self.fn(self.state, *tasks[next_index])
                    else:
                        yield done.pop(next_index)
                    next_index += 1
                if next_index >= len(tasks):
                    break
                if not running:  # every worker is gone: what is left is done here
                    for index in range(next_index, len(tasks)):
                        if index not in done:
                            failed.setdefault(index, "worker gone")
                    continue
                for ready in wait(list(running)):
                    reader = cast(Connection, ready)
                    try:
                        kind, index, payload = reader.recv()
                    except (EOFError, OSError):  # the worker ended (or died): its task in hand is lost
                        lost = running.pop(reader)
                        reader.close()
                        if lost is not None:
                            failed[lost] = "worker died"
                        continue
                    if kind == "start":
                        running[reader] = index
                    elif kind == "done":
                        running[reader] = None
                        done[index] = payload
                    else:
                        running[reader] = None
                        failed[index] = payload
        finally:
            for reader in list(running):
                reader.close()
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
            queue.close()
            queue.cancel_join_thread()  # tasks left unread (a worker gone) need not be flushed


__all__ = ["ForkPool", "can_fork"]
