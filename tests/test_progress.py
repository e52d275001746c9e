"""The progress line on a terminal: phases, totals and an ETA when a total is known, counters (pages and
resources read, patients evaluated, writes done), at most a few redraws a second, never patient data, and
log lines on lines of their own. Driven with a fake terminal and a fake clock (no timed tests)."""

from __future__ import annotations

import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest

from fhir_cat2 import logs
from fhir_cat2.fhir import SearchPage
from fhir_cat2.pipeline import RunStats
from fhir_cat2.progress import REFRESH_SECONDS, Progress
from fhir_cat2.sinks.base import SinkStats as WriteStats
from fhir_cat2.sources.files import iter_input_files

from .conftest import ROOT


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


def drawn(terminal: FakeTerminal) -> list[str]:
    """Each state of the line as drawn (tqdm redraws it after a carriage return)."""
    return [state.rstrip() for state in re.split(r"[\r\n]", terminal.getvalue()) if state.strip()]


_open: list[Progress] = []


@pytest.fixture(autouse=True)
def _closed():
    """tqdm stacks the bars alive at once, one terminal line each: every test leaves none behind."""
    yield
    while _open:
        _open.pop().close()


def progress(command: str = "replay") -> tuple[Progress, FakeTerminal, FakeClock]:
    terminal, clock = FakeTerminal(), FakeClock()
    bar = Progress(command, True, stream=terminal, clock=clock)
    _open.append(bar)
    return bar, terminal, clock


def page(number: int, entries: list[dict[str, Any]], total: int | None = None) -> SearchPage:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    return SearchPage(number, bundle, [{"resource": e, "search": {"mode": "match"}} for e in entries])


def observations(n: int, patient: str = "pat-123") -> list[dict[str, Any]]:
    return [
        {"resourceType": "Observation", "id": f"obs-{i}", "subject": {"reference": f"Patient/{patient}"}}
        for i in range(n)
    ]


def test_replay_reads_bytes_against_the_input_size_then_evaluates_patients_against_those_read():
    bar, terminal, clock = progress()
    stats = RunStats()
    bar.stats = stats
    bar.reading(4 * 1024 * 1024)
    bar.add_resources(300)
    clock.tick()
    bar.read_bytes(1024 * 1024)
    line = drawn(terminal)[-1]
    assert line.startswith("replay read:  25%|")
    assert "1.00M/4.00MB" in line and "300 resources" in line
    assert re.search(r"\[00:01<00:03,", line)  # elapsed < ETA: one MB a second, three to go

    stats.resources_read["Patient"] = 4  # one Patient resource per patient: the patients to evaluate
    stats.codes["3074F"] = 2
    clock.tick()
    bar.read_bytes(3 * 1024 * 1024)  # all read: evaluation begins
    assert bar.phase_name == "evaluate" and bar.phase_total == 4
    for _ in range(2):
        clock.tick()
        bar.patient()
    line = drawn(terminal)[-1]
    assert line.startswith("replay evaluate:  50%|")
    assert "2/4 patients" in line and re.search(r"\[00:02<00:02,", line)
    assert "300 resources, 4.0MB read, 2 codes, 0 quarantined" in line

    bar.close()
    assert terminal.getvalue().endswith("\n")  # the final state stays on screen, above the summary
    assert drawn(terminal)[-1].startswith("replay evaluate:  50%|")


def test_without_a_total_there_is_no_percentage_and_no_eta():
    bar, terminal, clock = progress()
    bar.stats = RunStats()
    clock.tick()
    bar.patient()  # evaluation with nothing known about how many patients come
    line = drawn(terminal)[-1]
    assert line.startswith("replay evaluate: 1 patients [00:00")
    assert "%" not in line and "<" not in line


def test_more_patients_than_expected_raise_the_total_instead_of_passing_100_percent():
    bar, terminal, clock = progress()
    stats = RunStats()
    stats.resources_read["Patient"] = 1
    bar.stats = stats
    for _ in range(3):
        clock.tick()
        bar.patient()
    assert bar.phase_total == 3
    assert "3/3 patients" in drawn(terminal)[-1]


def test_sync_scan_pages_are_measured_against_each_types_bundle_total():
    bar, terminal, clock = progress("sync")
    bar.page("changes", "Observation", page(1, observations(100), total=250))
    clock.tick()
    bar.page("changes", "Observation", page(2, observations(100)))  # later pages carry no total
    line = drawn(terminal)[-1]
    assert line.startswith("sync scan Observation:  80%|")
    assert "200/250 resources" in line and re.search(r"\[00:01<00:00,", line)
    assert "2 pages, 200 changed" in line  # not "0 resources" while pages are fetched
    clock.tick()
    bar.page("changes", "Observation", page(1, observations(50), total=50))  # keyset: a new search, same walk
    assert bar.phase_total == 250 and bar.phase_done == 250
    clock.tick()
    bar.page("changes", "Encounter", page(1, []))  # this server gives no total
    line = drawn(terminal)[-1]
    assert line.startswith("sync scan Encounter: 0 resources [00:00")
    assert "%" not in line and "4 pages, 250 changed" in line


def test_sync_fetches_and_evaluates_the_patients_the_scan_found_then_writes_back():
    bar, terminal, clock = progress("sync")
    stats = RunStats()
    bar.stats = stats
    bar.page("changes", "Observation", page(1, observations(5), total=5))
    bar.scanned_patients(3)
    patients = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(2)]
    clock.tick()
    bar.page("context", "Patient", page(1, patients, total=2))
    bar.add_resources(6)
    clock.tick()
    bar.page("context", "Observation", page(1, observations(4), total=4))
    line = drawn(terminal)[-1]
    assert line.startswith("sync fetch:  67%|") and "2/3 patients" in line and "<" in line
    assert "3 pages, 5 changed, 6 resources" in line

    writes = WriteStats()
    writes.observer = bar.wrote  # as RunTracker.attach(sink=...) wires it
    writes.add("MeasureReport", "created", 4)  # a Bundle sent while patients are evaluated
    for _ in range(3):
        clock.tick()
        bar.patient()
        stats.written["MeasureReport"] += 2
    line = drawn(terminal)[-1]
    assert line.startswith("sync evaluate: 100%|") and "3/3 patients" in line and "4 writes done" in line

    clock.tick()
    bar.writing()
    assert bar.phase_total == 6 and bar.phase_done == 4
    writes.add("MeasureReport", "unchanged", 1)
    clock.tick()
    writes.add("MeasureReport", "failed", 1)
    line = drawn(terminal)[-1]
    assert line.startswith("sync write: 100%|") and "6/6 resources" in line
    assert "3 patients evaluated, 6 writes done" in line


def test_a_source_that_knows_its_size_enters_its_own_phase_with_a_total():
    bar, terminal, clock = progress("sync")
    bar.phase("download", 4096, unit="B")  # e.g. the sizes a bulk $export manifest lists
    clock.tick()
    bar.advance(1024)
    line = drawn(terminal)[-1]
    assert line.startswith("sync download:  25%|") and "1.00k/4.00kB" in line
    assert re.search(r"\[00:01<00:03\]", line)


def test_the_line_is_redrawn_at_most_a_few_times_a_second():
    bar, terminal, clock = progress()
    bar.stats = RunStats()
    bar.reading(10_000_000)
    before = len(drawn(terminal))
    for _ in range(10_000):  # a fast replay: many updates, no time passing
        bar.read_bytes(1)
        bar.add_resources(200)
    assert len(drawn(terminal)) == before
    clock.tick(REFRESH_SECONDS)
    bar.add_resources(1)
    assert len(drawn(terminal)) == before + 1
    assert "2000001 resources" in drawn(terminal)[-1]


def test_nothing_is_drawn_when_disabled_but_everything_is_counted():
    terminal = FakeTerminal()
    bar = Progress("sync", False, stream=terminal)
    bar.page("changes", "Observation", page(1, observations(3), total=3))
    bar.scanned_patients(1)
    bar.patient()
    bar.wrote("created", 2)
    bar.close()
    assert terminal.getvalue() == ""
    assert (bar.pages, bar.scanned, bar.patients, bar.writes) == (1, 3, 1, 2)


def test_nothing_is_drawn_before_the_first_phase():
    bar, terminal, _ = progress()
    bar.clear()
    bar.close()
    assert terminal.getvalue() == ""


def test_no_patient_data_reaches_the_terminal():
    bar, terminal, clock = progress("sync")
    bar.stats = RunStats()
    secret = {
        "resourceType": "Patient",
        "id": "pat-123",
        "name": [{"family": "Doe-Secret"}],
        "birthDate": "1961-02-03",
        "identifier": [{"value": "MRN-998877"}],
    }
    bar.page("changes", "Patient", page(1, [secret], total=1))
    bar.scanned_patients(1)
    clock.tick()
    bar.page("context", "Patient", page(1, [secret], total=1))
    clock.tick()
    bar.page("context", "Observation", page(1, observations(2, "pat-123")))
    bar.close()
    shown = terminal.getvalue()
    assert "1/1 patients" in shown
    for value in ("pat-123", "Doe-Secret", "1961", "MRN-998877", "obs-"):
        assert value not in shown


def test_a_log_line_clears_the_bar_and_stands_on_a_line_of_its_own(monkeypatch):
    terminal, clock = FakeTerminal(), FakeClock()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = Progress("replay", True, stream=terminal, clock=clock)
    _open.append(bar)
    bar.stats = RunStats()
    with logs.configured("INFO") as handler:
        handler.before_write.append(bar.clear)
        bar.reading(1000)
        clock.tick()
        bar.read_bytes(500)
        logging.getLogger("fhir_cat2.test").warning("a warning in the middle of a run")
        bar.read_bytes(100)  # at once, not a quarter of a second later
        shown = terminal.getvalue()
        bar.close()
    lines = shown.split("\n")
    [logged] = [line for line in lines if "a warning in the middle" in line]
    # what the terminal shows of that line: the text after its last carriage return, the bar wiped first
    on_screen = logged.split("\r")[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z WARNING fhir_cat2.test: a warning.*", on_screen)
    assert re.search(r"\r +\r", logged)
    assert lines[-1].split("\r")[-1].startswith("replay read:  60%|")  # drawn again below it


# ------------------------------------------------------------------------------------- as a person sees it


def test_at_a_terminal_replay_leaves_its_final_bar_with_the_totals_above_the_summary(tmp_path):
    """``fhir-cat2 replay`` in a tmux pane: what is on screen once it is done."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed")
    fixtures = ROOT / "fixtures"
    socket, done = str(tmp_path / "tmux.sock"), tmp_path / "done"
    command = (
        f"{shlex.quote(sys.executable)} -m fhir_cat2 replay {shlex.quote(str(fixtures))}"
        f" --concept-maps {shlex.quote(str(fixtures / 'concept-maps'))}"  # else a fixture's local code warns
        " --log-level ERROR"  # and the fixtures' deviation-only BP readings warn: not what is looked at here
        f" --out {shlex.quote(str(tmp_path / 'out'))}; echo $? > {shlex.quote(str(done))}; sleep 600"
    )
    tmux_command = [tmux, "-S", socket, "-f", os.devnull]
    subprocess.run(
        [*tmux_command, "new-session", "-d", "-x", "220", "-y", "20", "-c", str(ROOT), "sh", "-c", command],
        check=True,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    try:
        for _ in range(1200):  # the replay takes about a second; up to two minutes on a busy machine
            if done.exists() and done.read_text().strip():
                break
            time.sleep(0.1)
        screen = subprocess.run(
            [*tmux_command, "capture-pane", "-p"], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run([*tmux_command, "kill-server"], check=False)
    assert done.read_text().strip() == "0"
    shown = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert len(shown) == 2, screen  # the bar, then the summary: no broken or stray lines
    bar, summary = shown
    patients, resources, codes = re.search(
        r"^fhir-cat2 replay: (\d+) patients, (\d+) resources read, (\d+) codes", summary
    ).groups()
    assert bar.startswith("replay evaluate: 100%|")
    assert f"| {patients}/{patients} patients [" in bar
    size = sum(path.stat().st_size for path in iter_input_files([str(fixtures)]))
    assert f", {resources} resources, {size / 1024:.1f}kB read, {codes} codes, 0 quarantined]" in bar
