"""Sync state: watermarks per server and type, committed together, never backwards, with an overlap window;
and the example configuration with its live-server sections loads as documented."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

from fhir_cat2.config import load_config
from fhir_cat2.state import SyncState, format_instant, format_until

from .conftest import ROOT

A = "https://a.example/fhir"
B = "https://b.example/fhir"


def test_watermarks_are_per_server_and_type_and_never_move_backwards(tmp_path):
    state = SyncState(tmp_path / "s.sqlite")
    t1 = datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    state.commit_watermarks(A, {"Encounter": t1, "Observation": t1})
    state.commit_watermarks(B, {"Encounter": t1 + timedelta(hours=1)})
    state.commit_watermarks(A, {"Encounter": t1 - timedelta(days=1)})  # older: ignored
    assert state.watermarks(A) == {"Encounter": t1, "Observation": t1}
    assert state.watermark(B, "Encounter") == t1 + timedelta(hours=1)
    window = state.window(A, "Encounter", t1 + timedelta(hours=2), timedelta(minutes=5))
    assert window.since == t1 - timedelta(minutes=5) and window.until == t1 + timedelta(hours=2)
    assert state.window(A, "Procedure", t1, timedelta(minutes=5)).since is None  # never synced: everything
    state.close()
    reopened = SyncState(tmp_path / "s.sqlite")
    assert reopened.watermarks(A)["Observation"] == t1
    reopened.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600


def test_run_records(tmp_path):
    state = SyncState(tmp_path / "s.sqlite")
    state.start_run("r1", "sync", A, None, "2026-01-01T00:00:00.000Z")
    state.finish_run("r1", "completed", "{}")
    assert state._db.execute("SELECT status FROM run WHERE id='r1'").fetchone() == ("completed",)
    state.close()


def test_instant_formats():
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_instant(when) == "2026-01-02T03:04:05.678Z"
    assert format_until(when) == "2026-01-02T03:04:05.678Z"
    assert format_until(when.replace(microsecond=0)) == "2026-01-02T03:04:05Z"  # a whole second covers it all


def test_example_configuration_loads():
    config = load_config(ROOT / "config.example.yaml", environ={})
    assert config.write.strategy == "update" and config.sync.overlap_minutes == 5
    assert config.server.retry.attempts == 6 and config.server.auth.type == "none"
