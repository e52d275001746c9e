"""The documentation: every fhir-cat2 command line shown in docs/scheduling.md and the README parses with
today's flags, the scheduling guide covers its four schedulers with how to read the exit code, the README
documents exit codes, logs, metrics, security defaults and scheduling, and docs/rules.md documents every
key of the criteria language (read from the models) with an example that validates."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fhir_cat2.cli import build_parser
from fhir_cat2.metrics import FAMILIES, sample_name
from fhir_cat2.rules.base import Band
from fhir_cat2.rules.components import ComponentTest
from fhir_cat2.rules.criteria_schema import (
    Criterion,
    ExistsCriterion,
    ScoreChangeCriterion,
    TimingTest,
    ValueTest,
    Window,
)
from fhir_cat2.rules.timing import DateExpr

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


# ------------------------------------------------------------------------------- the criteria language

RULES_DOC = ROOT / "docs" / "rules.md"
SHARED = {Band: "Bands", Window: "Windows"}
"""Models used by many keys, documented once in their own section."""
DOCUMENTED_BY_HEADING = (Criterion, ExistsCriterion)
"""Every key of these has a section of its own (named in backticks in its heading)."""


def _yaml_name(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``tuple[ValueTest, ...]``, ``dict[str, Strength]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _sub_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """The models a key's model holds, itself included, down to the shared ones and the criteria."""
    found: list[type[BaseModel]] = []
    pending = [model]
    while pending:
        current = pending.pop()
        stop = (*DOCUMENTED_BY_HEADING, *SHARED, DateExpr)
        if current in found or current in stop:
            continue
        found.append(current)
        for field in current.model_fields.values():
            pending.extend(_models_in(field.annotation))
    return found


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body up to the next heading) for each heading of the page, code blocks left out."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    parts = re.split(r"^(#{1,6} .*)$", prose, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def _named(text: str) -> set[str]:
    """Every word inside backticks: `as`, `{value, unit}`, `[period.start, period.end]`."""
    return {word for span in re.findall(r"`([^`]+)`", text) for word in re.findall(r"[a-z_]+", span)}


def _section_of(key: str, sections: list[tuple[str, str]]) -> str:
    bodies = [body for heading, body in sections if key in re.findall(r"`([a-z_]+)`", heading)]
    assert bodies, f"docs/rules.md has no section headed with `{key}`"
    return "".join(bodies)


def test_the_criteria_page_has_a_section_for_every_key_of_a_criterion_and_an_exists():
    sections = _sections(RULES_DOC.read_text())
    headed = {key for heading, _ in sections for key in re.findall(r"`([a-z_]+)`", heading)}
    for model in DOCUMENTED_BY_HEADING:
        keys = {_yaml_name(name, field) for name, field in model.model_fields.items()}
        assert keys - headed == set(), f"{model.__name__} keys without a section in docs/rules.md"


def test_the_criteria_page_documents_every_key_of_every_model_in_the_key_that_holds_it():
    sections = _sections(RULES_DOC.read_text())
    checked = set()
    for parent in DOCUMENTED_BY_HEADING:
        for name, field in parent.model_fields.items():
            key = _yaml_name(name, field)
            for held in _models_in(field.annotation):
                for model in _sub_models(held):
                    named = _named(_section_of(key, sections))
                    keys = {_yaml_name(n, f) for n, f in model.model_fields.items()}
                    assert keys - named == set(), f"`{key}` section: {model.__name__} keys not described"
                    checked.add(model)
    for model, heading in SHARED.items():
        [body] = [body for h, body in sections if h.endswith(f" {heading}")]
        assert set(model.model_fields) - _named(body) == set(), heading
    assert {ValueTest, TimingTest, ScoreChangeCriterion, ComponentTest} <= checked  # the walk reaches them


def test_each_key_section_has_an_example_and_says_which_measures_use_it():
    text = RULES_DOC.read_text()
    parts = re.split(r"^(### .*)$", text, flags=re.M)
    sections = [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    keyed = [(h, body) for h, body in sections if re.search(r"`[a-z_]+`", h)]
    assert len(keyed) >= 40
    for heading, body in keyed:
        assert "```yaml" in body, f"{heading}: no YAML example"
        assert "Used by:" in body, f"{heading}: no 'Used by'"


def test_every_criterion_example_on_the_criteria_page_is_a_valid_criterion():
    keys = {_yaml_name(name, field) for name, field in Criterion.model_fields.items()}
    checked = 0
    for block in re.findall(r"```yaml\n(.*?)```", RULES_DOC.read_text(), re.S):
        example = yaml.safe_load(block)
        if isinstance(example, dict) and set(example) <= keys:
            Criterion.model_validate(example)
            checked += 1
    assert checked >= 40


def test_the_readme_points_to_the_criteria_page():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/rules.md)" in readme
    assert "in the window (the CQL's moreThanOneOrder" not in readme  # the reference lives in docs/rules.md
