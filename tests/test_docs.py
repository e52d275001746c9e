"""The operations documentation: every fhir-cat2 command line shown in docs/scheduling.md and the README
parses with today's flags, the scheduling guide covers its four schedulers with how to read the exit code,
and the README documents exit codes, logs, metrics, security defaults and scheduling."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess

import pytest

from fhir_cat2.cli import build_parser
from fhir_cat2.metrics import FAMILIES, sample_name

from .conftest import ROOT

GUIDE = ROOT / "docs" / "scheduling.md"


def command_lines(text: str) -> list[str]:
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.replace("{OUT}", "/tmp/out").splitlines():
            if "fhir-cat2 sync exit" in line:  # a message in a script, not a command
                continue
            match = re.search(
                r"(?:^|[\s/'\"=])fhir-cat2 "
                r"((?:replay|sync|record|runs|outbox|config|rules|explain|codes)(?=\s|$)[^;|>\"'}]*)",
                line,
            )
            if match and " [--" not in line and not line.startswith("Description="):  # not synopses
                found.append(match.group(1).split(" #")[0].strip())
    return found


@pytest.mark.parametrize("path", [GUIDE, ROOT / "README.md"], ids=["scheduling.md", "README.md"])
def test_every_command_line_in_the_docs_parses(path):
    lines = command_lines(path.read_text())
    assert len(lines) >= 4, lines
    parser = build_parser()
    for line in lines:
        words = shlex.split(line.replace("{OUT}", "/tmp/out").replace("...", ""))
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{path.name}: `fhir-cat2 {line}` does not parse")


def test_the_guide_covers_each_scheduler_with_exit_codes_and_the_report():
    text = GUIDE.read_text()
    for heading in (
        "## cron",
        "## systemd service and timer",
        "## Airflow",
        "## Mirth Connect / Open Integration Engine",
    ):
        assert heading in text
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert re.search(r"exit|rc|SuccessExitStatus|skip_on_exit_code", section), heading
        assert re.search(r"report|runs|summary|last line", section), heading
    for code in (
        "| 0 |",
        "| 1 |",
        "| 2 |",
        "| 3 |",
        "| 4 |",
        "| 5 |",
        "| 6 |",
        "| 70 |",
        "| 130 |",
        "| 143 |",
    ):
        assert code in text
    assert "SuccessExitStatus=1 5" in text and "skip_on_exit_code=[5]" in text and "waitFor" in text


def test_the_readme_documents_operations():
    readme = (ROOT / "README.md").read_text()
    for heading in (
        "## Exit codes",
        "### Logs",
        "### Metrics",
        "### Security defaults",
        "### Configuration check",
    ):
        assert heading in readme
    assert "docs/scheduling.md" in readme
    for family in FAMILIES:
        assert sample_name(family) in readme, family


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_systemd_units_are_valid(tmp_path):
    text = GUIDE.read_text()
    blocks = re.findall(r"```ini\n(.*?)```", text, re.S)
    service, timer = tmp_path / "fhir-cat2-sync.service", tmp_path / "fhir-cat2-sync.timer"
    service.write_text(blocks[0].replace("/opt/fhir-cat2/bin/fhir-cat2", shutil.which("true") or "/bin/true"))
    timer.write_text(blocks[1])
    result = subprocess.run(
        ["systemd-analyze", "verify", str(service), str(timer)], capture_output=True, text=True
    )
    problems = [x for x in result.stderr.splitlines() if "fhir-cat2-sync" in x and "User" not in x]
    assert not problems, result.stderr


@pytest.mark.parametrize("command", ["replay", "sync"])
def test_the_default_period_in_help_is_the_one_the_readme_states(command):
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    [period] = [a for a in subcommands.choices[command]._actions if "--period" in a.option_strings]
    default = re.fullmatch(r"measurement year \(default: (.*); config run\.period\)", period.help).group(1)
    readme = " ".join((ROOT / "README.md").read_text().replace("`", "").split())
    assert f"--period defaults to {default}" in readme, command
