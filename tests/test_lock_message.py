"""The lock takeover message after a SIGKILL reads as written: the redaction filter tells a question mark in
prose ("(killed?)") from a query string, and still masks every real one."""

from __future__ import annotations

import logging

import pytest

from fhir_cat2 import logs
from fhir_cat2.lock import RunLock, new_holder
from fhir_cat2.runs import RunTracker
from fhir_cat2.state import SyncState


def test_the_takeover_message_after_a_kill_is_intact(tmp_path, capsys):
    state_path = tmp_path / "state.sqlite"
    state = SyncState(state_path)
    state.start_run("d" * 32, "sync", None, None, None, mode="sync", pid=4242, host="ehr-int-01")
    state.close()
    dead = RunLock(state_path, new_holder("d" * 32, "fhir-cat2 sync"))
    dead.acquire()
    dead._handle.close()  # the process "died": the OS dropped the lock, the holder's record stays
    dead._handle = None
    with logs.configured("INFO", "text"):
        tracker = RunTracker("replay", [])
        tracker.hold(str(state_path), "replay")
        tracker.finish(0, None)
    err = capsys.readouterr().err
    assert "ended without releasing the lock (killed?); marked abandoned" in err, err
    assert logs.MASK not in err


@pytest.mark.parametrize(
    "text",
    [
        "GET Observation?patient=Patient/p1&code=4548-4",
        "GET observation?patient=Patient/p1",
        "next /fhir?_getpages=abc123&_count=50",
        "see https://ehr.test/fhir/Patient?name=Jane",
        "see https://ehr.test/fhir?token",
    ],
)
def test_real_query_strings_are_still_masked(text):
    masked = logs.redact(text)
    assert masked.endswith("?" + logs.MASK), masked


def test_a_question_mark_in_prose_is_left_alone():
    for text in ("run abc ended without releasing the lock (killed?); marked abandoned", "Why? Because."):
        assert logs.redact(text) == text


def test_logged_through_the_handler_the_message_is_intact(caplog):
    caplog.set_level(logging.WARNING)
    record = logging.LogRecord("fhir_cat2.runs", logging.WARNING, __file__, 1, "x (killed?); y", None, None)
    logs.RedactingFilter().filter(record)
    assert record.getMessage() == "x (killed?); y"
