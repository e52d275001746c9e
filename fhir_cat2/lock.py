"""One run at a time per state store: an exclusive lock on ``<state file>.lock``.

The operating system holds the lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and drops it when
the holder exits for any reason, SIGKILL and power loss included: a lock can never be left behind by a dead
process, so there is no lease to expire and no pid to guess at. The holder writes who it is into the file
(run id, pid, host, start time, command line); a second run that cannot take the lock reads it and names the
holder. The holder empties the file when it releases the lock, so a run that finds the file still filled in
after taking the lock knows the previous holder died without releasing it (killed), and says so.

Keep the state file on a local disk: advisory locks over network filesystems are only as good as the
filesystem's lock daemon.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import ConfigError, LockHeldError


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int
    host: str
    started_at: str
    command: str

    def describe(self) -> str:
        alive = ""
        if self.host == socket.gethostname():
            alive = ", still running" if _pid_alive(self.pid) else ", process gone"
        return (
            f"run {self.run_id[:12]} ({self.command}) pid {self.pid} on {self.host}{alive},"
            f" started {self.started_at}"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def lock_path(state_path: str | os.PathLike[str]) -> Path:
    path = Path(state_path)
    return path.with_name(path.name + ".lock")


def _read_holder(handle: IO[bytes]) -> Holder | None:
    handle.seek(0)
    data = handle.read(4096)
    if not data.strip():
        return None
    try:
        fields: dict[str, Any] = orjson.loads(data)
        return Holder(**{k: fields[k] for k in ("run_id", "pid", "host", "started_at", "command")})
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return Holder("unknown", 0, "unknown", "unknown", "unreadable lock file")


class RunLock:
    """``with RunLock(state_path, holder):`` or ``acquire()``/``release()``."""

    def __init__(self, state_path: str | os.PathLike[str], holder: Holder) -> None:
        self.path = lock_path(state_path)
        self.holder = holder
        self.previous: Holder | None = None
        """The holder found in the file on taking the lock: a run that died without releasing it."""
        self._handle: IO[bytes] | None = None

    def acquire(self) -> RunLock:
        """Take the lock at once or raise LockHeldError naming the holder. Never waits."""
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        handle = os.fdopen(fd, "r+b")
        if not _try_lock(handle):
            holder = _read_holder(handle)
            handle.close()
            who = holder.describe() if holder else "a run that is just starting"
            raise LockHeldError(f"another run holds the lock on {self.path.with_suffix('')}: {who}")
        self.previous = _read_holder(handle)
        handle.seek(0)
        handle.truncate()
        handle.write(orjson.dumps(asdict(self.holder)) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        self._handle = handle
        return self

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.seek(0)
            handle.truncate()  # an empty file: released cleanly
            handle.flush()
        finally:
            _unlock(handle)
            handle.close()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def new_holder(run_id: str, command: str) -> Holder:
    return Holder(
        run_id=run_id,
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        command=command,
    )


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    _REGION = 2**30  # lock a byte far past the holder's JSON, so others can still read it

    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(_REGION)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(_REGION)
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
