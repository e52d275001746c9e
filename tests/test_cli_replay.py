"""The replay command: outputs, options, exit codes, bad input and the patient grouper's spill path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from fhir_cat2.cli import main

from .conftest import ROOT, a1c, bp_panel, condition, encounter, patient, run_resources


def _write_bundle(path: Path, resources: list[dict]) -> None:
    path.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        )
    )


def test_outputs_exist_and_are_private(tmp_path):
    out = tmp_path / "out"
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(out)]) == 0
    for name in ("Claim.ndjson", "MeasureReport.ndjson", "quarantine.ndjson", "run-report.json"):
        mode = stat.S_IMODE(os.stat(out / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert not list(out.glob("*.tmp"))


def test_emit_claim_only(tmp_path):
    out = tmp_path / "out"
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(out), "--emit", "claim"]) == 0
    assert (out / "Claim.ndjson").exists() and not (out / "MeasureReport.ndjson").exists()


def test_bad_resource_is_quarantined_and_valid_data_is_kept(tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    bad_encounter = encounter("broken")
    del bad_encounter["status"]
    _write_bundle(data / "p.json", [patient(), encounter(), bp_panel("bp", 150, 95), bad_encounter])
    (data / "junk.json").write_text("{not json")
    out = tmp_path / "out"
    assert (
        main(["replay", str(data), "--out", str(out), "--period", "2025"]) == 1
    )  # completed, with quarantine
    quarantine = [json.loads(line) for line in (out / "quarantine.ndjson").read_text().splitlines()]
    assert [q["resource"] for q in quarantine] == [None, "Encounter/broken"]  # files are read in name order
    assert quarantine[0]["file"].endswith("junk.json")
    assert quarantine[1]["position"] == "entry[3]" and "status: Field required" in quarantine[1]["reason"]
    claims = (out / "Claim.ndjson").read_text().splitlines()
    assert len(claims) == 1
    assert "2 quarantined" in capsys.readouterr().err
    assert main(["replay", str(data), "--out", str(out), "--quarantine-exit-zero"]) == 0


def test_resource_without_patient_reference_is_quarantined(ruleset):
    orphan = a1c("orphan", 7.0)
    del orphan["subject"]
    run = run_resources([patient(), encounter(), orphan], ruleset)
    assert "no Patient reference" in run.sink.quarantined[0].reason


def test_default_period_is_the_year_of_the_latest_encounter(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    _write_bundle(
        data / "p.json",
        [patient(), encounter("old", "2023-05-05T09:00:00Z"), encounter("new", "2024-02-02T09:00:00Z")],
    )
    out = tmp_path / "out"
    main(["replay", str(data), "--out", str(out)])
    assert json.loads((out / "run-report.json").read_text())["period"]["start"] == "2024-01-01"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--measure", "CMS999"]) == 2
    try:
        main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--emit", "bill"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "input path not found" in err and "unknown measure(s): CMS999" in err


def test_config_file_supplies_defaults_and_flags_override(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "run:\n  program: mips-claims\n  period: 2025\n"
        "defaults:\n  provider: {reference: Organization/clinic-1}\n"
        "  reporter: {reference: Organization/clinic-1}\n"
    )
    out = tmp_path / "out"
    assert main(["replay", str(ROOT / "fixtures"), "--out", str(out), "--config", str(config)]) == 0
    report = json.loads((out / "run-report.json").read_text())
    assert report["program"] == "mips-claims"
    assert report["defaults_used"]["reporter"]["from"] == "configuration"
    assert (
        main(
            [
                "replay",
                str(ROOT / "fixtures"),
                "--out",
                str(out),
                "--config",
                str(config),
                "--program",
                "hedis",
            ]
        )
        == 0
    )
    assert json.loads((out / "run-report.json").read_text())["program"] == "hedis"


def test_bad_config_is_refused(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("run:\n  program: medicaid\n")
    assert (
        main(["replay", str(ROOT / "fixtures"), "--out", str(tmp_path / "o"), "--config", str(config)]) == 2
    )
    assert "run.program" in capsys.readouterr().err


def test_spilled_grouping_gives_the_same_answer(ruleset):
    """Past the memory budget, records go to a temporary SQLite file; the output must not change."""
    resources = []
    for n in range(30):
        pid = f"p{n:02d}"
        resources += [
            patient(pid),
            condition(f"c{n}", "I10", pid=pid),
            encounter(f"e{n}", pid=pid),
            bp_panel(f"bp{n}", 120 + n, 70 + n, pid=pid, eid=f"e{n}"),
        ]
    resources.reverse()  # records of one patient arrive far apart
    in_memory = run_resources(resources, ruleset)
    spilled = run_resources(resources, ruleset, budget=7)
    assert spilled.pipeline._grouper.spilled > 0
    assert in_memory.sink.resources == spilled.sink.resources
    assert len(in_memory.claims) == 30


def test_the_same_resource_twice_counts_once(ruleset):
    resources = [patient(), encounter(), bp_panel("bp", 150, 95), bp_panel("bp", 150, 95)]
    run = run_resources(resources, ruleset)
    assert run.codes() == ["3077F", "3080F"]


def test_a_later_version_of_a_resource_wins(ruleset):
    old = bp_panel("bp", 150, 95)
    old["meta"] = {"versionId": "1", "lastUpdated": "2025-03-04T10:00:00Z"}
    new = bp_panel("bp", 128, 78, status="amended")
    new["meta"] = {"versionId": "2", "lastUpdated": "2025-03-05T10:00:00Z"}
    assert run_resources([patient(), encounter(), new, old], ruleset).codes() == ["3074F", "3078F"]
