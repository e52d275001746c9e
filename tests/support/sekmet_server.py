"""Run a real FHIR R4 server (sekmet-fhir) for integration tests. Stdlib only.

sekmet is installed into its own cached virtual environment, so its dependencies never mix with the
project's, and is started as a subprocess on a free loopback port with an in-memory database::

    with SekmetServer() as fhir:
        urllib.request.urlopen(f"{fhir.base_url}/metadata")

Observed server behaviour (transactions, conditional create, paging, ...) is written up in the
research notes (sekmet-behaviour.md).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SEKMET_REQUIREMENT = "sekmet-fhir==0.1.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Known-good versions of sekmet's (unpinned) dependencies, passed to pip as constraints when present.
CONSTRAINTS = Path(__file__).with_name("sekmet-constraints.txt")
_WINDOWS = os.name == "nt"
_BIN, _EXE = ("Scripts", ".exe") if _WINDOWS else ("bin", "")
# Caller variables that would leak its Python setup into sekmet or override our settings file.
_SCRUB_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "SEKMET_CONFIG",
    "SEKMET_BASE_URL",
    "SEKMET_DB",
    "SEKMET_PORT",
    "SEKMET_PUBLIC_URL",
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
    env.update(extra)
    return env


def _stamp() -> str:
    """What a cached venv must have been built from; any change forces a rebuild."""
    pins = CONSTRAINTS.read_bytes() if CONSTRAINTS.exists() else b""
    return f"{SEKMET_REQUIREMENT} {sys.version_info[:2]} {hashlib.sha256(pins).hexdigest()[:16]}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (blocks until free); released when the holder exits or crashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            while True:
                with contextlib.suppress(OSError):
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
            yield
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_sekmet_venv(cache_dir: Path | None = None) -> Path:
    """Create (once) a venv holding sekmet-fhir and return the path of its ``sekmet`` executable.

    Location: ``cache_dir``, else ``$FHIR_CAT2_SEKMET_VENV``, else ``<repo>/.cache/sekmet-venv``.
    Concurrent callers are serialised by ``<venv>.lock``; a half-built venv is wiped and rebuilt.
    Prints progress to stderr only when it actually installs (~40 s with PyPI access).
    """
    venv = Path(cache_dir or os.environ.get("FHIR_CAT2_SEKMET_VENV") or REPO_ROOT / ".cache" / "sekmet-venv")
    venv = venv.expanduser().resolve()
    exe, marker = venv / _BIN / f"sekmet{_EXE}", venv / ".fhir-cat2-ready"

    def ready() -> bool:
        return exe.exists() and marker.exists() and marker.read_text() == _stamp()

    if ready():
        return exe
    with _file_lock(venv.with_name(venv.name + ".lock")):
        if ready():  # another process finished the build while we waited
            return exe
        print(f"[sekmet] installing {SEKMET_REQUIREMENT} into {venv} ...", file=sys.stderr, flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        env = _clean_env()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
        python = str(venv / _BIN / f"python{_EXE}")
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input"]
        pip.append(SEKMET_REQUIREMENT)
        if CONSTRAINTS.exists():
            pip += ["-c", str(CONSTRAINTS)]
        subprocess.run(pip, check=True, env=env, stdout=sys.stderr)
        subprocess.run([str(exe), "--version"], check=True, env=env, stdout=subprocess.DEVNULL)
        marker.write_text(_stamp())
        print(f"[sekmet] ready: {exe}", file=sys.stderr, flush=True)
    return exe


def _free_port(preferred: int = 0) -> int:
    """``preferred`` if it can be bound on 127.0.0.1 right now, else a fresh ephemeral port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like uvicorn: TIME_WAIT is no obstacle
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM the server if the process that started it dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class SekmetServer:
    """A sekmet FHIR R4 server on ``127.0.0.1:<free port>`` with an in-memory database.

    ``settings`` is merged into the settings file (JSON, which is valid YAML); ``base_url`` is always
    forced to the real address because sekmet writes it into Location headers, fullUrls and paging
    links. Use as a context manager or call ``start()``/``stop()``. ``reset()`` wipes all data by
    restarting on the same port (sekmet has no wipe endpoint; its ``reset`` command cannot reach an
    in-memory db); a restart takes ~1.5 s.
    """

    def __init__(
        self,
        sekmet: Path | None = None,
        settings: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.sekmet = sekmet  # executable; default: ensure_sekmet_venv()
        self.extra_settings = dict(settings or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.workdir: Path | None = None  # temp cwd holding settings.yaml and sekmet.log
        self.log_path: Path | None = None
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """FHIR base without trailing slash, e.g. ``http://127.0.0.1:41234/fhir``."""
        return f"http://127.0.0.1:{self.port}/fhir"

    def __enter__(self) -> SekmetServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self) -> dict[str, Any]:
        """The settings sekmet is started with."""
        base = {"host": "127.0.0.1", "port": self.port, "db_path": ":memory:"}
        return {**base, "simulator": {"enabled": False}, **self.extra_settings, "base_url": self.base_url}

    def start(self) -> None:
        """Start the server and block until ``GET /fhir/metadata`` answers 200."""
        if self._proc is not None:
            raise RuntimeError("sekmet server already running")
        exe = self.sekmet or ensure_sekmet_venv()
        for attempt in range(3):
            try:
                return self._launch(exe)
            except RuntimeError as e:  # the port was taken between probing and binding: use another
                if "address already in use" not in str(e).lower() or attempt == 2:
                    raise
                shutil.rmtree(self.workdir or "", ignore_errors=True)
                self.port = 0

    def _launch(self, exe: Path) -> None:
        self.port = _free_port(self.port)  # keeps the port across stop()/start() when possible
        self.workdir = Path(tempfile.mkdtemp(prefix="fhir-cat2-sekmet-"))  # cwd: relative paths land here
        cfg, self.log_path = self.workdir / "settings.yaml", self.workdir / "sekmet.log"
        cfg.write_text(json.dumps(self.settings(), indent=2))
        env = _clean_env(SEKMET_CONFIG=str(cfg), SEKMET_BASE_URL=self.base_url, PYTHONUNBUFFERED="1")
        started = time.monotonic()
        cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "wb") as log:  # the child keeps its own handle
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=not _WINDOWS,  # own process group: stop() signals all of it
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop(keep_files=True)  # the log stays on disk for inspection
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"sekmet exited with code {code} during startup\n{self.log_tail()}")
            # "Uvicorn running" first: a foreign server that took the port must not pass as ours
            bound = self.log_path is not None and b"Uvicorn running on" in self.log_path.read_bytes()
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.base_url}/metadata", timeout=2) as r,
            ):
                if bound and r.status == 200:
                    return
            if time.monotonic() - started > self.startup_timeout:
                raise TimeoutError(
                    f"sekmet not ready on {self.base_url} after {self.startup_timeout:.0f}s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's combined stdout/stderr."""
        if not self.log_path or not self.log_path.exists():
            return "(no sekmet log)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- sekmet log {self.log_path} ---\n" + "\n".join(tail)

    def reset(self) -> None:
        """Wipe all data by restarting; ``base_url`` stays the same unless the port was taken meanwhile."""
        self.stop()
        self.start()

    def stop(self, keep_files: bool = False) -> None:
        """Terminate the server's process group (SIGTERM, SIGKILL after ``stop_timeout``). Idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                proc.wait(self.stop_timeout)
        if self.workdir is not None and not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if _WINDOWS:  # pragma: no cover
                proc.terminate() if sig == signal.SIGTERM else proc.kill()
            else:
                os.killpg(proc.pid, sig)
