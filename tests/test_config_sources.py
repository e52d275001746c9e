"""The configuration: a YAML file with FHIR_CAT2_<SECTION>__<KEY> overrides (pydantic-settings) on top;
every problem names the file and line, or the environment variable, its value came from."""

from __future__ import annotations

import pytest

from fhir_cat2.cli import main
from fhir_cat2.config import load_config
from fhir_cat2.errors import ConfigFileError

FILE = "run:\n  period: 2024\n  program: mips-claims\nserver:\n  page_size: 50\n"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "fhir-cat2.yaml"
    path.write_text(FILE)
    return path


def problems(path, environ) -> list[str]:
    with pytest.raises(ConfigFileError) as refused:
        load_config(path, environ)
    return refused.value.problems


def test_the_environment_wins_over_the_file_key_by_key(config_file):
    config = load_config(
        config_file, {"FHIR_CAT2_RUN__PERIOD": "2025", "FHIR_CAT2_SERVER__RETRY__ATTEMPTS": "2"}
    )
    assert config.run.period == 2025 and config.run.program == "mips-claims"  # the file's other keys stay
    assert config.server.page_size == 50 and config.server.retry.attempts == 2
    assert load_config(config_file, {}).run.period == 2024


def test_lists_from_the_environment_read_as_yaml_or_json_and_secrets_stay_verbatim():
    for emit in ("[claim]", '["claim"]'):
        assert load_config(None, {"FHIR_CAT2_RUN__EMIT": emit}).run.emit == ["claim"]
    for secret in ("0123", "yes", "[x]", "null"):
        config = load_config(None, {"FHIR_CAT2_SERVER__AUTH__TOKEN": secret})
        assert config.server.auth is not None and config.server.auth.token is not None
        assert config.server.auth.token.get_secret_value() == secret


def test_a_problem_in_the_file_names_file_line_and_field(config_file):
    config_file.write_text(FILE.replace("period: 2024", "period: 12") + "  colour: blue\n")
    assert problems(config_file, {}) == [
        f"{config_file}:2: run.period: Input should be greater than or equal to 1900",
        f"{config_file}:6: server.colour: Extra inputs are not permitted",
    ]


def test_a_problem_in_the_environment_names_the_variable(config_file):
    environ = {"FHIR_CAT2_RUN__EMIT": "[claim, bogus]", "FHIR_CAT2_SERVER__PAGE_SIZE": "many"}
    assert problems(config_file, environ) == [
        "FHIR_CAT2_RUN__EMIT: run.emit[1]: Input should be 'claim', 'measure-report' or 'gaps'",
        "FHIR_CAT2_SERVER__PAGE_SIZE: server.page_size:"
        " Input should be a valid integer, unable to parse string as an integer",
    ]
    assert problems(None, {"FHIR_CAT2_LOG__COLOUR": "blue"}) == [
        "FHIR_CAT2_LOG__COLOUR: log.colour: Extra inputs are not permitted"
    ]


def test_yaml_syntax_errors_name_the_line_and_the_cli_exits_2(config_file, tmp_path, capsys):
    config_file.write_text("run:\n  period: 2024\n  program: [x\n")
    [problem] = problems(config_file, {})
    assert problem.startswith(f"{config_file}:4: YAML syntax: ")
    code = main(["replay", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(config_file)])
    assert code == 2 and f"{config_file}:4: YAML syntax: " in capsys.readouterr().err


def test_the_process_environment_is_read_once_through_our_source(monkeypatch, config_file):
    """A YAML list in the real process environment (as schedulers set it) configures the run; it is not read a
    second time by pydantic-settings' own JSON-only source, and an explicit environ ignores the process's."""
    monkeypatch.setenv("FHIR_CAT2_RUN__EMIT", "[claim]")
    assert load_config(None).run.emit == ["claim"]
    assert load_config(config_file).run.emit == ["claim"]
    assert load_config(None, {}).run.emit == ["claim", "measure-report"]


def test_a_misspelt_section_in_the_environment_is_refused_not_ignored():
    """pydantic-settings skips a variable whose section is no field: FHIR_CAT2_SERVR__BASE_URL set the server
    of nothing and config check said ready."""
    with pytest.raises(ConfigFileError) as refused:
        load_config(None, {"FHIR_CAT2_SERVR__BASE_URL": "https://fhir.example.org/fhir"})
    [problem] = refused.value.problems
    assert problem.startswith("FHIR_CAT2_SERVR__BASE_URL: no such configuration section")
    assert "server" in problem
    # variables of the same prefix without a section (the test suite's own) are not configuration
    assert load_config(None, {"FHIR_CAT2_SHARED": "/x"}).run.program == "hedis"
