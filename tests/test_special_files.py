"""FIFOs, sockets and devices among the inputs (in a folder or given directly) are refused at once with their
path, a configuration error before any work (before: a FIFO made replay wait for a writer forever)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from fhir_cat2.sources import files as input_files

from .conftest import one_patient


def test_a_fifo_in_the_input_folder_is_refused_at_once_with_its_path(tmp_path, capsys):
    folder = one_patient(tmp_path / "in")
    os.mkfifo(folder / "stream.ndjson")  # before: replay opened it and waited for a writer forever
    result = subprocess.run(
        [sys.executable, "-m", "fhir_cat2", "replay", str(folder), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{folder / 'stream.ndjson'} (FIFO)" in result.stderr
    assert not (tmp_path / "out" / "Claim.ndjson").exists()


def test_sockets_and_devices_are_refused_given_directly_or_in_a_folder(tmp_path):
    folder = one_patient(tmp_path / "in")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "agent.sock"))
    (folder / "null.json").symlink_to("/dev/null")
    try:
        with pytest.raises(input_files.ConfigError) as refused:
            list(input_files.iter_input_files([str(folder), "/dev/zero"]))
    finally:
        server.close()
    message = str(refused.value)
    assert f"{folder / 'agent.sock'} (socket)" in message and f"{folder / 'null.json'} (device)" in message
    assert "/dev/zero (device)" in message
