"""An input file the system will not let us read (permission denied, an I/O error) is no bad data: it is
named in the log (its path only), counted as ``files_unreadable`` in the run report and the summary, and
quarantined with what to do about it; the run completes with exit 1. A folder that cannot be listed is
refused before any work."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from fhir_cat2.cli import main
from fhir_cat2.executors import forked
from fhir_cat2.sources import files as input_files

from .conftest import one_patient, patient


def test_an_input_file_with_an_io_error_is_named_counted_and_quarantined(tmp_path, capsys):
    folder = one_patient(tmp_path / "in")
    # reading /proc/self/mem from its start is refused by the kernel with EIO: a real I/O error
    (folder / "broken.json").symlink_to("/proc/self/mem")
    out = tmp_path / "out"
    code = main(["--log-level", "DEBUG", "replay", str(folder), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    [warning] = [line for line in err.splitlines() if "cannot read input file" in line]
    assert (
        " WARNING " in warning and str(folder / "broken.json") in warning and "Input/output error" in warning
    )
    report = json.loads((out / "run-report.json").read_text())
    assert report["files_unreadable"] == 1 and report["quarantine_reasons"] == {"unreadable-file": 1}
    assert "1 unreadable input file" in err.strip().splitlines()[-1]
    [entry] = [json.loads(line) for line in (out / "quarantine.ndjson").read_text().splitlines()]
    assert entry["file"] == str(folder / "broken.json")
    assert "Input/output error" in entry["reason"] and "run again" in entry["reason"]


def test_a_file_we_may_not_read_says_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "Patient.ndjson"
    path.write_text(json.dumps(patient()) + "\n")
    real_open = open

    def refusing(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing)
    [item] = list(input_files.read_file(path))
    assert isinstance(item, input_files.Rejected) and item.unreadable
    assert item.reason == (
        "input file unreadable (Permission denied):"
        " make it readable by the user fhir-cat2 runs as, then run again"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_named_and_counted(tmp_path, capsys):
    folder = one_patient(tmp_path / "in")
    secret = folder / "secret.json"
    secret.write_text("{}")
    secret.chmod(0)
    assert main(["replay", str(folder), "--out", str(tmp_path / "out")]) == 1
    assert str(secret) in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "run-report.json").read_text())["files_unreadable"] == 1


def test_unreadable_files_are_counted_by_forked_workers_too(tmp_path, monkeypatch):
    monkeypatch.setattr(forked, "MIN_INGEST_BYTES", 0)
    monkeypatch.setattr(forked, "TASK_BYTES", 100)
    folder = one_patient(tmp_path / "in")
    (folder / "Patient.ndjson").write_text("".join(json.dumps(patient(f"p{n}")) + "\n" for n in range(20)))
    (folder / "broken.json").symlink_to("/proc/self/mem")
    out = tmp_path / "out"
    assert main(["replay", str(folder), "--out", str(out), "--workers", "2"]) == 1
    assert json.loads((out / "run-report.json").read_text())["files_unreadable"] == 1


def test_a_folder_that_cannot_be_listed_is_refused_naming_it(tmp_path, monkeypatch):
    folder = one_patient(tmp_path / "in")
    (folder / "sub").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == folder / "sub":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(input_files.ConfigError, match=f"cannot list the input folder {folder / 'sub'}"):
        list(input_files.iter_input_files([str(folder)]))
