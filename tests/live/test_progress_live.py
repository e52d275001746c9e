"""sync on a terminal, against a real server: the progress line goes through scan (each type against the
server's Bundle.total), fetch and evaluate (against the patients the scan found) and write (against the
resources derived), and shows counts only."""

from __future__ import annotations

import io
import re

import pytest

from .conftest import fixture_patient_ids
from .test_sync_live import fresh, replayed, sync  # noqa: F401

pytestmark = pytest.mark.live


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_sync_on_a_terminal_shows_each_phase_against_its_total(fresh, replayed, tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code, report = sync(fresh, tmp_path)
    assert code == 0, terminal.getvalue()
    states = [s.rstrip() for s in re.split(r"[\r\n]", terminal.getvalue()) if s.strip()]
    patients = report["patients_affected"]
    derived = sum(report["written"].values())
    assert patients == len(fixture_patient_ids())

    def last(prefix: str) -> str:
        return [s for s in states if s.startswith(prefix)][-1]

    assert f"| {patients}/{patients} resources [" in last("sync scan Patient: 100%|")  # Bundle.total
    # (a phase's last state may not be drawn: the next begins within the same quarter of a second)
    assert re.search(rf"\| \d+/{patients} patients \[", last("sync fetch:"))
    assert re.search(rf"\| \d+/{patients} patients \[", last("sync evaluate:"))
    final = last("sync write: 100%|")
    assert f"| {derived}/{derived} resources [" in final and f"{derived} writes done" in final
    assert f"{report['resources_read']} resources" in final and re.search(r"\b\d+ pages\b", final)
    assert states[-1].startswith("fhir-cat2 sync:")  # the summary, below the final bar
    shown = terminal.getvalue()
    for patient_id in fixture_patient_ids():
        assert patient_id not in shown
