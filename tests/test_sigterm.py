"""SIGTERM (a scheduler stopping the job) exits 143 after the same cleanup as Ctrl-C, which stays 130; both
runs are recorded as interrupted."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from fhir_cat2 import cli, runs
from fhir_cat2.cli import main
from fhir_cat2.runs import status_for

from .conftest import ROOT


def test_sigterm_exits_143_and_the_run_is_interrupted(tmp_path):
    # the signal is real, sent by the run to itself in the middle of its work (no timing involved)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from fhir_cat2 import cli
        def run(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM was not delivered")
        cli.Pipeline.run = run
        sys.exit(cli.main(["replay", {str(ROOT / "fixtures")!r}, "--out", {str(tmp_path / "out")!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fhir-cat2 replay: interrupted (exit 143: terminated (SIGTERM))"), last
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["status"] == "interrupted" and report["exit_code"] == 143
    assert report["error"] == "stopped by SIGTERM"


def test_ctrl_c_stays_130(tmp_path, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.Pipeline, "run", interrupted)
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o")]) == 130
    assert status_for(130) == status_for(runs.EXIT_TERMINATED) == "interrupted"
    assert runs.EXIT_MEANINGS[runs.EXIT_TERMINATED].startswith("terminated")
