"""With ``--log-format json`` every line on stderr is a JSON object: log records, the fatal error (with its
exit code), the run summary (with its facts as fields), usage errors and Python warnings. Through the real
command in a child process, so nothing the process prints escapes the check."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from .conftest import ROOT
from .test_exit_codes import quarantining_input

COMMAND = [sys.executable, "-m", "fhir_cat2"]


def run(
    args: list[str], env: dict[str, str] | None = None, code: str | None = None
) -> tuple[int, list[dict]]:
    command = [sys.executable, "-c", code] if code else [*COMMAND, *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    records = []
    for line in result.stderr.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not JSON on stderr: {line!r}\n{result.stderr}") from None
    assert records, "nothing on stderr: the test would prove nothing"
    for record in records:
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record), record
    return result.returncode, records


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    last = records[-1]
    assert last["event"] == "summary", last
    return last


def errors(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == "error"]


def test_a_successful_replay(tmp_path):
    code, records = run(
        [
            "--log-format",
            "json",
            "--log-level",
            "INFO",
            "replay",
            str(ROOT / "fixtures"),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert len(records) > 2  # INFO records and the summary
    last = summary(records)
    assert last["status"] == "completed" and last["exit_code"] == 0 and last["level"] == "INFO"
    assert last["patients"] == 20 and last["codes_emitted"] > 0 and last["quarantined"] == 0
    assert last["message"].startswith("fhir-cat2 replay: 20 patients")
    assert last["run_id"] == records[0]["run_id"]


def test_a_configuration_error(tmp_path):
    code, records = run(
        ["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--log-format", "json"]
    )
    assert code == 2
    [error] = errors(records)
    assert (
        error["exit_code"] == 2 and error["level"] == "ERROR" and "input path not found" in error["message"]
    )
    last = summary(records)
    assert last["status"] == "refused" and last["exit_code"] == 2


def test_an_invalid_rules_table_is_one_record_with_its_problems(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("measurements: 7\n")
    code, records = run(["--log-format", "json", "rules", "check", str(rules)])
    assert code == 2
    [error] = errors(records)
    assert error["exit_code"] == 2 and error["problems"] and str(rules) in error["message"]


def test_a_quarantining_run(tmp_path):
    folder = quarantining_input(tmp_path)
    code, records = run(
        ["--log-format", "json", "replay", str(folder), "--out", str(tmp_path / "o"), "--period", "2025"]
    )
    assert code == 1
    last = summary(records)
    assert last["status"] == "completed" and last["exit_code"] == 1 and last["quarantined"] == 1
    assert last["level"] == "WARNING"


def test_a_sync_against_an_unreachable_server(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/fhir"
    code, records = run(
        ["sync", "--base-url", base, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")],
        env={
            "FHIR_CAT2_LOG__FORMAT": "json",
            "FHIR_CAT2_SERVER__RETRY__ATTEMPTS": "1",
        },
    )
    assert code == 4
    [error] = errors(records)
    assert error["exit_code"] == 4 and error["level"] == "ERROR"
    last = summary(records)
    assert last["status"] == "failed" and last["exit_code"] == 4 and last["watermark_moved"] is False


def test_a_usage_error_when_json_was_asked_for(tmp_path):
    code, records = run(["--log-format", "json", "replay", "--out", str(tmp_path)])
    assert code == 2
    [record] = records
    assert record["event"] == "usage-error" and record["exit_code"] == 2
    assert "the following arguments are required: PATH" in record["message"]
    assert record["usage"].startswith("usage: fhir-cat2 replay")
    code, records = run(["replay", "--bogus"], env={"FHIR_CAT2_LOG__FORMAT": "json"})
    assert code == 2 and records[0]["event"] == "usage-error"


def test_a_usage_error_in_text_mode_is_unchanged(tmp_path):
    result = subprocess.run(
        [*COMMAND, "replay", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: fhir-cat2 replay")
    assert "fhir-cat2 replay: error: the following arguments are required: PATH" in result.stderr


def test_python_warnings_are_records(tmp_path):
    out = str(tmp_path / "o")
    script = textwrap.dedent(
        f"""
        import sys, warnings
        from fhir_cat2 import cli
        original = cli.load_ruleset
        def load_ruleset(*args):
            warnings.warn("a library changed its mind", DeprecationWarning, stacklevel=1)
            return original(*args)
        cli.load_ruleset = load_ruleset
        warnings.simplefilter("always")
        sys.exit(cli.main(["--log-format", "json", "replay", {str(ROOT / "fixtures")!r}, "--out", {out!r}]))
        """
    )
    code, records = run([], code=script)
    assert code == 0
    [warning] = [r for r in records if r["logger"] == "py.warnings"]
    assert "a library changed its mind" in warning["message"] and warning["level"] == "WARNING"
    assert summary(records)["exit_code"] == 0


def test_text_mode_keeps_its_lines(tmp_path):
    result = subprocess.run(
        [*COMMAND, "replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"fhir-cat2: configuration error: input path not found: {tmp_path / 'missing'}",
        "fhir-cat2 replay: refused (exit 2: usage or configuration error); nothing was done",
    ]
    assert not Path(tmp_path / "o").exists()


def test_codes_suggest_speaks_json_too(tmp_path):
    replayed = tmp_path / "replayed"
    code, _ = run(["replay", str(ROOT / "fixtures"), "--out", str(replayed), "--log-format", "json"])
    assert code == 0
    suggest = ["codes", "suggest", str(replayed), "--out", str(tmp_path / "cm.json"), "--log-format", "json"]
    code, records = run(suggest)
    assert code == 0 and summary(records)["message"].startswith("fhir-cat2 codes suggest:")
