"""Every exit code through the real command line, with the one-line summary last on stderr; and the README's
table says what the code says. (Lock and signals in real processes: tests/live/test_operations_live.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import responses

from fhir_cat2 import cli, runs
from fhir_cat2.cli import main
from fhir_cat2.lock import RunLock, new_holder

from .conftest import ROOT, bp_panel, encounter, patient
from .test_sync_offline import BASE, FakeServer, capability, data, sleeps  # noqa: F401

EXPECTED = {
    "OK": 0,
    "QUARANTINED": 1,
    "CONFIG": 2,
    "AUTH": 3,
    "UNAVAILABLE": 4,
    "LOCKED": 5,
    "WRITES_PENDING": 6,
    "EXPORT_TIMEOUT": 7,
    "INTERNAL": 70,
    "INTERRUPTED": 130,
    "TERMINATED": 143,
}


def last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def quarantining_input(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    broken = encounter("broken")
    del broken["status"]
    entries = [{"resource": r} for r in (patient(), encounter(), bp_panel("bp", 150, 95), broken)]
    (folder / "p.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    return folder


def test_the_codes_are_stable():
    for name, value in EXPECTED.items():
        assert getattr(cli, f"EXIT_{name}", getattr(runs, f"EXIT_{name}")) == value


def test_readme_documents_every_exit_code():
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.M))
    assert {int(code) for code in table} == set(EXPECTED.values())
    for code, meaning in runs.EXIT_MEANINGS.items():
        assert meaning.split()[0].lower() in table[str(code)].lower(), (code, table[str(code)])


def test_0_success(tmp_path, capsys):
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o")]) == 0
    assert re.match(r"fhir-cat2 replay: \d+ patients", last_line(capsys))


def test_1_quarantined_and_configurable_to_0_by_flag_file_and_environment(tmp_path, capsys, monkeypatch):
    folder = quarantining_input(tmp_path)
    replay = ["replay", str(folder), "--out", str(tmp_path / "o"), "--period", "2025"]
    assert main(replay) == 1
    assert "1 quarantined" in last_line(capsys)
    assert main([*replay, "--quarantine-exit-zero"]) == 0
    config = tmp_path / "c.yaml"
    config.write_text("run:\n  quarantine_exit_zero: true\n")
    assert main([*replay, "--config", str(config)]) == 0
    monkeypatch.setenv("FHIR_CAT2_RUN__QUARANTINE_EXIT_ZERO", "true")
    assert main(replay) == 0
    report = json.loads((tmp_path / "o" / "run-report.json").read_text())
    assert report["status"] == "completed" and report["exit_code"] == 0 and report["quarantined"] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "--out", "o"],  # usage
        ["replay", "missing-folder", "--out", "o"],
        ["replay", "fixtures", "--out", "o", "--measure", "NOPE"],
        ["sync", "--base-url", "https://x.test", "--period", "1066"],
        ["runs", "--state", "no-such-state.sqlite"],
    ],
)
def test_2_usage_or_configuration(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors leave through SystemExit, with our code
        code = exc.code
    assert code == 2
    assert not (tmp_path / "o" / "Claim.ndjson").exists()


def test_2_after_the_command_starts_is_reported_as_refused(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert (
        last_line(capsys)
        == "fhir-cat2 replay: refused (exit 2: usage or configuration error); nothing was done"
    )


def test_3_authentication_refused(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("FHIR_CAT2_SERVER__AUTH__TYPE", "bearer")
    monkeypatch.setenv("FHIR_CAT2_SERVER__AUTH__TOKEN", "tok-3f9a0c2e7b")
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", status=401, json={"resourceType": "OperationOutcome", "issue": []})
        code = main(
            ["sync", "--base-url", BASE, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
        )
    assert code == 3
    err = capsys.readouterr().err
    assert "authentication refused" in err and "tok-3f9a0c2e7b" not in err
    assert err.strip().splitlines()[-1].startswith("fhir-cat2 sync: failed (exit 3: authentication refused)")
    report = json.loads((tmp_path / "o" / "run-report.json").read_text())
    assert report["status"] == "failed" and report["exit_code"] == 3


def test_4_unavailable_reports_what_it_did_and_keeps_the_watermark(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("FHIR_CAT2_SERVER__RETRY__ATTEMPTS", "2")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=capability())
        rsps.get(re.compile(re.escape(BASE) + r"/Patient.*"), status=503)
        code = main(
            ["sync", "--base-url", BASE, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
        )
    assert code == 4
    line = last_line(capsys)
    assert line.startswith("fhir-cat2 sync: failed (exit 4: server unavailable") and "watermark kept" in line
    report = json.loads((tmp_path / "o" / "run-report.json").read_text())
    assert report["retries"] == 1 and report["watermark"]["before"] == report["watermark"]["after"] == {}


def test_5_the_lock_is_held(tmp_path, capsys):
    lock = RunLock(tmp_path / "s.sqlite", new_holder("a" * 32, "fhir-cat2 sync --config nightly.yaml"))
    with lock:
        code = main(
            [
                "replay",
                str(ROOT / "fixtures"),
                "--out",
                str(tmp_path / "o"),
                "--state",
                str(tmp_path / "s.sqlite"),
            ]
        )
    assert code == 5
    err = capsys.readouterr().err
    assert "another run holds the lock" in err and "fhir-cat2 sync --config nightly.yaml" in err
    assert (
        err.strip().splitlines()[-1]
        == "fhir-cat2 replay: locked (exit 5: another run holds the lock); nothing was done"
    )
    assert not (tmp_path / "o").exists()


def test_70_an_internal_error_never_shows_its_message(tmp_path, capsys, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ValueError("Jane Q Public 1960-04-01 MRN 884422")

    monkeypatch.setattr(cli.Pipeline, "run", broken)
    code = main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o")])
    assert code == 70
    err = capsys.readouterr().err
    assert "Jane" not in err and "884422" not in err and "1960-04-01" not in err
    assert "internal error: ValueError at" in err and "test_exit_codes.py" in err
    report = json.loads((tmp_path / "o" / "run-report.json").read_text())
    assert report["status"] == "failed" and report["exit_code"] == 70 and "Jane" not in json.dumps(report)


def test_130_keyboard_interrupt(tmp_path, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.Pipeline, "run", interrupted)
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o")]) == 130
    assert last_line(capsys).startswith("fhir-cat2 replay: interrupted (exit 130: interrupted)")
    assert not list((tmp_path / "o").glob("*.tmp"))


def test_the_summary_is_the_last_stderr_line_even_at_debug(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_cat2",
            "--log-level",
            "DEBUG",
            "replay",
            str(ROOT / "fixtures"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) > 3 and re.match(r"fhir-cat2 replay: \d+ patients", lines[-1])


def test_sync_quarantine_exit_1_then_0_with_the_flag(tmp_path):
    broken = encounter("e-broken", "2025-05-05T09:00:00Z")
    del broken["status"]
    for flag, expected in (([], 1), (["--quarantine-exit-zero"], 0)):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            FakeServer([*data(), broken], page_size=50).install(rsps)
            out = tmp_path / str(expected)
            code = main(
                [
                    "sync",
                    "--base-url",
                    BASE,
                    "--state",
                    str(out / "s"),
                    "--out",
                    str(out),
                    "--period",
                    "2025",
                    "--dry-run",
                    *flag,
                ]
            )
        assert code == expected
