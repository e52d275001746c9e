"""No patient name, birth date or identifier value from the input reaches a log record or a line on stderr,
at DEBUG, in text and in JSON: over fixtures/ (always) and every corpus in ../shared/corpus (when present)."""

from __future__ import annotations

import json
import logging

import pytest

from fhir_cat2.cli import main
from tests.support.phi import collect, leaks

from .conftest import ROOT, SHARED


def inputs():
    paths = [ROOT / "fixtures"]
    corpus = SHARED / "corpus"
    if corpus.is_dir():
        paths += sorted(p for p in corpus.iterdir() if p.is_dir())
    return paths


@pytest.fixture(scope="module")
def phi():
    values = collect(inputs())
    assert any(kind == "name" for kind in values.values()) and any(k == "birth date" for k in values.values())
    return values


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_debug_replay_of_everything_logs_no_patient_data(phi, log_format, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    for number, path in enumerate(inputs()):
        out = tmp_path / f"out{number}"
        code = main(
            ["--log-level", "DEBUG", "--log-format", log_format, "replay", str(path), "--out", str(out)]
        )
        assert code in (0, 1)
    records = caplog.records
    assert len(records) > 20, "DEBUG logging produced almost nothing: the test would prove nothing"
    for record in records:
        text = record.getMessage() + " " + repr(record.args)
        if record.exc_info:
            text += " " + logging.Formatter().formatException(record.exc_info)
        assert not leaks(text, phi), (record.name, record.getMessage())
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) >= len(records)
    for line in lines:
        assert not leaks(line, phi), line
        if log_format == "json":  # every line, the summary included
            assert set(json.loads(line)) >= {"time", "level", "logger", "message"}


def test_the_checker_would_see_a_leak(phi):
    name = next(v for v, kind in phi.items() if kind == "name")
    assert leaks(f"evaluating {name} failed", phi)
    assert not leaks("evaluating Patient/abc failed", phi)
