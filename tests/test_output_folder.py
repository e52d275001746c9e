"""An output folder that cannot be written is a configuration error (exit 2), found before any work, with a
message naming the folder and the setting (before: exit 70 "internal error" at the end of the run)."""

from __future__ import annotations

import os

import pytest

from fhir_cat2 import cli
from fhir_cat2.cli import main

from .conftest import one_patient
from .test_sync_offline import BASE, sleeps  # noqa: F401


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_replay_into_an_output_folder_that_cannot_be_written_is_configuration(
    where, tmp_path, capsys, monkeypatch
):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker if where == "a file" else blocker / "out"
    read: list[object] = []
    monkeypatch.setattr(cli, "plan_parts", lambda files: read.append(files) or [])
    code = main(["replay", str(one_patient(tmp_path / "in")), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{out}" in err and "--out" in err and "internal error" not in err
    assert err.strip().splitlines()[-1].startswith("fhir-cat2 replay: refused (exit 2")
    assert read == []  # refused before any input was read


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_replay_into_a_read_only_folder_is_configuration(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    code = main(["replay", str(one_patient(tmp_path / "in")), "--out", str(out)])
    assert code == 2 and "cannot write to the output folder" in capsys.readouterr().err


def test_sync_into_an_output_folder_that_cannot_be_written_names_both_settings_before_any_request(
    tmp_path, capsys
):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    # no server is mocked: a request would fail with a connection error (exit 4), not 2
    code = main(["sync", "--base-url", BASE, "--state", str(tmp_path / "s"), "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{blocker / 'out'}" in err and "--out / sync.out" in err


def test_outbox_retry_into_an_output_folder_that_cannot_be_written_is_configuration(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    argv = [
        "outbox",
        "retry",
        "--base-url",
        BASE,
        "--state",
        str(tmp_path / "s"),
        "--out",
        str(blocker / "o"),
    ]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{blocker / 'o'}" in err and "--out / sync.out" in err
