"""What a scheduler sees, through the real command in real processes against the real server: one run at a
time per state store (exit 5 at once, naming the holder), a lock left by a SIGKILLed run taken over, Ctrl-C
exits 130 and SIGTERM 143 cleanly, and the run records of all of them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.state import SyncState
from tests.support.fault_proxy import FaultProxy

from .conftest import EXTERNAL, LiveServer
from .test_sync_live import RUN, assert_server_equals_replay, fresh, replayed  # noqa: F401

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(EXTERNAL) and not EXTERNAL.startswith("http://"), reason="the proxy speaks plain HTTP"
    ),
]

COMMAND = [sys.executable, "-m", "fhir_cat2"]


@pytest.fixture(scope="module")
def proxy(fhir_server: LiveServer):
    with FaultProxy(fhir_server.base_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def slow(proxy, fresh):
    proxy.clear()
    yield proxy
    proxy.clear()


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails while its sync still runs must not leave it writing to the shared server (the
    next test would see its writes)."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default. A suite started in the background (``cmd &``
    in a script, some CI runners) has SIGINT ignored, every child inherits that, and Python then keeps it
    ignored, as a background job should: the interrupt test would wait out its delay instead."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(proxy: FaultProxy, tmp_path: Path, out: str = "out", *extra: str) -> subprocess.Popen[str]:
    args = ["sync", "--base-url", proxy.base_url, "--state", str(tmp_path / "state.sqlite"), "--out"]
    process = subprocess.Popen(
        [*COMMAND, *args, str(tmp_path / out), *RUN, *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_interruptible,
    )
    _STARTED.append(process)
    return process


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def lock_holder(tmp_path: Path) -> dict[str, Any] | None:
    path = tmp_path / "state.sqlite.lock"
    text = path.read_text() if path.exists() else ""
    return json.loads(text) if text.strip() else None


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    state = SyncState(tmp_path / "state.sqlite")
    try:
        return state.runs()
    finally:
        state.close()


def test_a_second_concurrent_run_exits_5_at_once_naming_the_holder(slow, tmp_path):
    # the holder is held up long enough for a second process to start even on a loaded machine
    slow.add(kind="delay", method="GET", path=r"^/fhir/metadata", seconds=15)
    first = start(slow, tmp_path, "first")
    wait_for(lambda: lock_holder(tmp_path) is not None)
    holder = lock_holder(tmp_path)
    assert holder["pid"] == first.pid

    second = start(slow, tmp_path, "second")
    _, err = second.communicate(timeout=30)
    assert second.returncode == 5, err
    assert first.poll() is None, "a refused run must not wait for the lock"  # it ended while the holder runs
    lines = err.strip().splitlines()
    assert f"pid {first.pid} on {socket.gethostname()}" in err and holder["started_at"] in err
    assert "fhir-cat2 sync" in err and holder["run_id"][:12] in err
    assert lines[-1].startswith("fhir-cat2 sync: locked (exit 5")
    assert not (tmp_path / "second" / "run-report.json").exists()  # the holder's folder is left alone

    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    statuses = {r["pid"]: (r["status"], r["exit_code"]) for r in runs(tmp_path)}
    assert statuses[first.pid] == ("completed", 0) and statuses[second.pid] == ("locked", 5)
    assert lock_holder(tmp_path) is None  # released: the file is emptied


def test_of_several_runs_started_together_exactly_one_works(slow, tmp_path):
    slow.add(kind="delay", method="GET", path=r"^/fhir/metadata", seconds=2)
    processes = [start(slow, tmp_path, f"out{i}") for i in range(4)]
    codes = sorted(p.wait(timeout=60) for p in processes)
    for process in processes:
        process.communicate()
    assert codes == [0, 5, 5, 5]


def test_a_lock_left_by_a_killed_run_is_taken_over_and_the_run_marked_abandoned(slow, replayed, tmp_path):
    slow.add(kind="delay", method="GET", path=r"^/fhir/Observation\?patient=", seconds=30)
    victim = start(slow, tmp_path, "killed")
    wait_for(lambda: any(s.target.startswith("/fhir/Observation?patient=") for s in slow.seen))
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert lock_holder(tmp_path)["pid"] == victim.pid  # the dead holder's record is still in the file
    slow.clear()

    survivor = start(slow, tmp_path, "out", "--log-level", "INFO")
    _, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    assert f"pid {victim.pid}" in err and "abandoned" in err
    assert "ended without releasing the lock (killed?); marked abandoned" in err  # not mangled by redaction
    statuses = {r["pid"]: r["status"] for r in runs(tmp_path)}
    assert statuses[victim.pid] == "abandoned" and statuses[survivor.pid] == "completed"
    assert_server_equals_replay(LiveServer(f"http://127.0.0.1:{slow.upstream_port}/fhir", None), replayed)


@pytest.mark.parametrize(
    ("sig", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_an_interrupted_run_exits_130_or_143_releases_the_lock_and_keeps_the_watermark(
    slow, tmp_path, sig, expected
):
    slow.add(kind="delay", method="GET", path=r"^/fhir/Observation\?patient=", seconds=30)
    process = start(slow, tmp_path)
    wait_for(lambda: any(s.target.startswith("/fhir/Observation?patient=") for s in slow.seen))
    process.send_signal(sig)
    _, err = process.communicate(timeout=20)
    assert process.returncode == expected, err
    lines = err.strip().splitlines()
    assert (
        lines[-1].startswith(f"fhir-cat2 sync: interrupted (exit {expected}")
        and "watermark kept" in lines[-1]
    )
    assert "Traceback" not in err
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["status"] == "interrupted" and report["exit_code"] == expected
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert runs(tmp_path)[0]["status"] == "interrupted"
    assert lock_holder(tmp_path) is None
    state = SyncState(tmp_path / "state.sqlite")
    assert state.watermarks(slow.base_url, None) == {}
    state.close()
    slow.clear()
    again = start(slow, tmp_path)  # the lock is free at once
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
