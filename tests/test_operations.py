"""Run records (`fhir-cat2 runs`), the metrics file, log formats and redaction, progress on a terminal only,
and environment overrides of the operations settings."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import stat
import struct
import subprocess
import sys
import termios

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus_text

from fhir_cat2 import logs
from fhir_cat2.cli import main

from .conftest import ROOT

FIXTURES = str(ROOT / "fixtures")


def replay(tmp_path, *extra: str) -> int:
    return main(["replay", FIXTURES, "--out", str(tmp_path / "out"), *extra])


# ------------------------------------------------------------------------------------------ run records


def test_every_run_is_recorded_and_runs_lists_and_shows_them(tmp_path, capsys):
    state = str(tmp_path / "state.sqlite")
    assert replay(tmp_path, "--state", state) == 0
    assert (
        replay(tmp_path, "--state", state, "--measure", "NOPE") == 2
    )  # refused before the lock: not recorded
    assert main(["replay", str(tmp_path / "gone"), "--out", str(tmp_path / "o"), "--state", state]) == 2
    assert replay(tmp_path, "--state", state) == 0
    capsys.readouterr()

    assert main(["runs", "--state", state, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in listed] == ["completed", "completed"]
    assert listed[0]["exit_code"] == 0 and listed[0]["pid"] == os.getpid() and listed[0]["mode"] == "replay"

    assert main(["runs", "--state", state]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["RUN", "STARTED", "(UTC)", "COMMAND"] and len(table) == 3
    assert re.search(r"\d+ patients, \d+ resources read, \d+ codes", table[1]), table[1]

    assert main(["runs", "show", listed[1]["id"][:8], "--state", state]) == 0
    shown = json.loads(capsys.readouterr().out)
    report = shown["report"]
    assert shown["id"] == listed[1]["id"] and report["run_id"] == listed[1]["id"]
    assert report["codes_emitted"] == sum(report["codes"].values()) > 0
    assert (
        report["written"]["Claim"] > 0
        and report["written"]["MeasureReport"] > 0
        and report["quarantined"] == 0
    )
    assert report["status"] == "completed" and report["duration_seconds"] >= 0
    assert main(["runs", "show", "last", "--state", state]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == listed[0]["id"]
    assert main(["runs", "show", "zzzz", "--state", state]) == 2
    assert json.loads((tmp_path / "out" / "run-report.json").read_text())["run_id"] == listed[0]["id"]


def test_runs_finds_the_state_file_through_the_configuration_and_keeps_only_the_newest(
    tmp_path, capsys, monkeypatch
):
    state = tmp_path / "s.sqlite"
    config = tmp_path / "c.yaml"
    config.write_text(f"sync:\n  state: {state}\n  keep_runs: 2\n")
    for _ in range(3):
        assert replay(tmp_path, "--state", str(state), "--config", str(config)) == 0
    capsys.readouterr()
    assert main(["runs", "--config", str(config), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    monkeypatch.setenv("FHIR_CAT2_SYNC__KEEP_RUNS", "1")  # an environment override
    assert replay(tmp_path, "--state", str(state), "--config", str(config)) == 0
    capsys.readouterr()
    assert main(["runs", "--config", str(config), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_state_files_are_private_whatever_the_umask(tmp_path):
    state = tmp_path / "deep" / "state.sqlite"
    code = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; os.umask(0); from fhir_cat2.cli import main; sys.exit(main())",
            "replay",
            FIXTURES,
            "--out",
            str(tmp_path / "out"),
            "--state",
            str(state),
        ],
        timeout=120,
    ).returncode
    assert code == 0
    for path in (state, state.with_name("state.sqlite.lock"), *(tmp_path / "out").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    from fhir_cat2.state import SyncState

    held = SyncState(state)  # while open, SQLite's -wal and -shm exist: private too
    held.commit_watermarks("https://x.test", {})
    for suffix in ("-wal", "-shm"):
        companion = state.with_name(state.name + suffix)
        assert companion.exists() and stat.S_IMODE(companion.stat().st_mode) == 0o600, suffix
    held.close()


# ------------------------------------------------------------------------------------------ metrics


def test_metrics_file_is_prometheus_text_and_counts_across_runs(tmp_path):
    metrics = tmp_path / "fhir-cat2-nightly.prom"
    assert replay(tmp_path, "--metrics-file", str(metrics)) == 0
    first = metrics.read_text()
    single = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert replay(tmp_path, "--metrics-file", str(metrics)) == 0
    assert (
        main(
            [
                "replay",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "o"),
                "--metrics-file",
                str(metrics),
            ]
        )
        == 2
    )
    text = metrics.read_text()
    # the text format the node exporter's textfile collector reads: counters are typed under their _total name
    assert "# HELP fhir_cat2_runs_total " in text and "# TYPE fhir_cat2_runs_total counter" in text
    families = {f.name: f for f in parse_prometheus_text(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[
            (name, tuple(sorted({"job_name": "fhir-cat2-nightly", "command": "replay", **labels}.items())))
        ]

    assert (
        value("fhir_cat2_runs_total", outcome="ok") == 2
        and value("fhir_cat2_runs_total", outcome="config") == 1
    )
    # counters add up over the two completed runs
    observations = single["resources_read_by_type"]["Observation"]
    assert value("fhir_cat2_resources_read_total", resource_type="Observation") == 2 * observations > 0
    assert value("fhir_cat2_codes_emitted_total", code="3074F") == 2 * single["codes"]["3074F"] > 0
    assert (
        value("fhir_cat2_written_total", resource_type="Claim", outcome="file")
        == 2 * single["written"]["Claim"]
        > 0
    )
    assert value("fhir_cat2_last_run_exit_code") == 2
    assert value("fhir_cat2_last_success_timestamp_seconds") <= value("fhir_cat2_last_run_timestamp_seconds")
    assert (
        families["fhir_cat2_runs"].type == "counter"
        and families["fhir_cat2_last_run_exit_code"].type == "gauge"
    )
    assert "fhir_cat2_runs_total" in first and first != text
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644  # the exporter runs as another user; no patient data
    assert sorted(p.name for p in tmp_path.iterdir() if "prom" in p.name) == [
        ".fhir-cat2-nightly.prom.lock",
        "fhir-cat2-nightly.prom",
    ]


def test_metrics_file_from_the_environment_and_a_missing_folder_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_CAT2_METRICS__FILE", str(tmp_path / "env.prom"))
    assert replay(tmp_path) == 0
    assert "fhir_cat2_runs_total" in (tmp_path / "env.prom").read_text()
    assert replay(tmp_path, "--metrics-file", str(tmp_path / "no" / "such" / "m.prom")) == 2


def test_a_corrupt_metrics_file_restarts_the_counters(tmp_path):
    metrics = tmp_path / "m.prom"
    metrics.write_text("garbage {{{\n")
    assert replay(tmp_path, "--metrics-file", str(metrics)) == 0
    families = {f.name: f for f in parse_prometheus_text(metrics.read_text())}
    assert families["fhir_cat2_runs"].samples[0].value == 1


def test_counters_go_on_from_a_file_an_earlier_release_wrote_as_openmetrics(tmp_path):
    metrics = tmp_path / "m.prom"
    metrics.write_text(
        "# TYPE fhir_cat2_runs counter\n# HELP fhir_cat2_runs Runs finished.\n"
        'fhir_cat2_runs_total{command="replay",job_name="m",outcome="ok"} 41\n'
        "# TYPE fhir_cat2_watermark_timestamp_seconds gauge\n"
        'fhir_cat2_watermark_timestamp_seconds{job_name="m",resource_type="Encounter"} 1700000000\n'
        "# EOF\n"
    )
    assert replay(tmp_path, "--metrics-file", str(metrics)) == 0
    families = {f.name: f for f in parse_prometheus_text(metrics.read_text())}
    assert [s.value for s in families["fhir_cat2_runs"].samples] == [42]
    assert families["fhir_cat2_watermark_timestamp_seconds"].samples[0].value == 1_700_000_000


# ------------------------------------------------------------------------------------------ logs


def test_json_logs_are_one_object_per_line_with_the_run_id(tmp_path, capsys):
    assert (
        main(
            ["replay", FIXTURES, "--out", str(tmp_path / "o"), "--log-format", "json", "--log-level", "DEBUG"]
        )
        == 0
    )
    lines = capsys.readouterr().err.strip().splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects and {o["level"] for o in objects} >= {"INFO", "DEBUG"}
    assert len({o["run_id"] for o in objects}) == 1
    report = json.loads((tmp_path / "o" / "run-report.json").read_text())
    assert objects[0]["run_id"] == report["run_id"]
    assert objects[-1]["event"] == "summary" and objects[-1]["message"].startswith("fhir-cat2 replay: ")


def test_log_settings_from_flags_in_either_position_environment_and_file(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "o")
    assert main(["--log-level", "INFO", "replay", FIXTURES, "--out", out]) == 0
    assert " INFO fhir_cat2" in capsys.readouterr().err
    assert main(["replay", FIXTURES, "--out", out, "--log-level", "INFO"]) == 0
    assert " INFO fhir_cat2" in capsys.readouterr().err
    monkeypatch.setenv("FHIR_CAT2_LOG__FORMAT", "json")
    monkeypatch.setenv("FHIR_CAT2_LOG__LEVEL", "INFO")
    assert main(["replay", FIXTURES, "--out", out]) == 0
    assert capsys.readouterr().err.startswith('{"time"')
    monkeypatch.delenv("FHIR_CAT2_LOG__FORMAT")
    monkeypatch.delenv("FHIR_CAT2_LOG__LEVEL")
    config = tmp_path / "c.yaml"
    config.write_text("log:\n  level: INFO\n  format: json\n")
    assert main(["replay", FIXTURES, "--out", out, "--config", str(config)]) == 0
    assert '"level":"INFO"' in capsys.readouterr().err
    config.write_text("log:\n  level: LOUD\n")
    assert main(["replay", FIXTURES, "--out", out, "--config", str(config)]) == 2


def test_other_libraries_stay_quiet_at_debug(tmp_path, capsys):
    def noisy(self):
        logging.getLogger("urllib3.connectionpool").debug("GET /fhir/Patient?name=Smith")
        logging.getLogger("some.library").info("chatter")
        raise KeyboardInterrupt

    import fhir_cat2.cli as cli

    original = cli.Pipeline.run
    cli.Pipeline.run = noisy  # type: ignore[method-assign]
    try:
        main(["--log-level", "DEBUG", "replay", FIXTURES, "--out", str(tmp_path / "o")])
    finally:
        cli.Pipeline.run = original  # type: ignore[method-assign]
    err = capsys.readouterr().err
    assert "Smith" not in err and "chatter" not in err


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        ("GET https://ehr.test/fhir/Patient?name=Smith&birthdate=1960-01-01", "Smith"),
        ("next link /fhir/Observation?patient=Patient/123&_count=5", "Patient/123"),
        ("Authorization: Bearer abc.DEF-ghi_123", "abc.DEF-ghi_123"),
        ("token eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl", "eyJpc3MiOiJ4In0"),
        ("https://user:hunter2@ehr.test/fhir", "hunter2"),
        ('{"access_token": "s3cr3t-value", "expires_in": 300}', "s3cr3t-value"),
        ("grant_type=client_credentials&client_secret=p4ss", "p4ss"),
        ("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg\n-----END PRIVATE KEY-----", "MIIBVQIBADANBg"),
    ],
)
def test_the_redaction_filter_masks_what_should_never_be_logged(raw, hidden, caplog):
    record = logging.LogRecord("fhir_cat2.x", logging.WARNING, __file__, 1, "%s", (raw,), None)
    logs.RedactingFilter().filter(record)
    assert hidden not in record.getMessage() and logs.MASK in record.getMessage()


def test_registered_secrets_and_exception_messages_never_reach_the_handler():
    logs.register_secret("a-registered-secret-9z")
    try:
        raise ValueError("Jane Roe, born 1971-02-03, said a-registered-secret-9z")
    except ValueError:
        import sys as _sys

        record = logging.LogRecord(
            "fhir_cat2.x",
            logging.ERROR,
            __file__,
            1,
            "failed: %s",
            ("a-registered-secret-9z",),
            _sys.exc_info(),
        )
    logs.RedactingFilter().filter(record)
    text = logs.TextFormatter().format(record)
    assert "a-registered-secret-9z" not in text and "Jane" not in text and "ValueError at" in text


# ------------------------------------------------------------------------------------------ progress


def _replay_under(stderr_is_tty: bool, tmp_path) -> str:
    argv = [sys.executable, "-m", "fhir_cat2", "replay", FIXTURES, "--out", str(tmp_path / "o")]
    argv += ["--concept-maps", str(ROOT / "fixtures" / "concept-maps")]  # else a fixture's local code warns
    argv += ["--log-level", "ERROR"]  # and the fixtures' deviation-only BP readings warn: not the point here
    if not stderr_is_tty:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120).stderr
    leader, follower = pty.openpty()
    # a terminal's size, as a terminal emulator sets it (a new pty is 0x0: tqdm would draw nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=follower, env={**os.environ, "COLUMNS": "120"}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_is_drawn_on_a_terminal_and_silent_otherwise(tmp_path):
    on_terminal = _replay_under(True, tmp_path)
    assert "\rreplay read:   0%|" in on_terminal and "\rreplay evaluate: 100%|" in on_terminal
    assert "fhir-cat2 replay:" in on_terminal  # the summary, below the bar
    piped = _replay_under(False, tmp_path)
    assert piped.count("\n") == 1 and "\r" not in piped  # the summary line, nothing else
