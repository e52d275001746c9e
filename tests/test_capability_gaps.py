"""What a server's CapabilityStatement lacks (a type the rules read that is not searchable, a type without a
patient search parameter) repeats on every sync: one line per run listing all of it, a WARNING the first
time the state file sees it for the server and job, INFO after; and the run report lists it."""

from __future__ import annotations

import json

import responses

from fhir_cat2.cli import main

from .test_sync_offline import FakeServer, capability, data, sleeps, sync  # noqa: F401


def with_immunization_by_date_only(rsps: responses.RequestsMock) -> None:
    statement = capability()
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] == "Immunization":
            resource["searchParam"] = [{"name": "date", "type": "date"}]
    rsps.replace(responses.GET, "https://ehr.test/fhir/metadata", json=statement)


def run(tmp_path, capsys, *extra: str) -> tuple[int, list[str], dict]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(data(), page_size=1).install(rsps)  # one patient batch per page: many batches
        with_immunization_by_date_only(rsps)
        code = sync(tmp_path, "--log-level", "INFO", *extra)
    lines = capsys.readouterr().err.splitlines()
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    return code, lines, report


def gap_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "searchable" in line or "search parameter" in line]


def test_gaps_are_one_warning_then_info_and_in_the_report(tmp_path, capsys):
    code, lines, report = run(tmp_path, capsys)
    assert code == 0
    [line] = gap_lines(lines)
    assert " WARNING " in line and "DeviceRequest not searchable" in line
    assert "Immunization no patient search parameter" in line
    assert report["capability_gaps"]["DeviceRequest"] == "not searchable"
    assert report["capability_gaps"]["Immunization"] == "no patient search parameter"

    code, lines, again = run(tmp_path, capsys)
    assert code == 0
    [line] = gap_lines(lines)
    assert " INFO " in line and "reported before" in line
    assert again["capability_gaps"] == report["capability_gaps"]


def test_at_the_default_level_the_second_run_is_quiet_about_them(tmp_path, capsys):
    for expected in (1, 0):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            FakeServer(data()).install(rsps)
            assert sync(tmp_path) == 0
        assert len(gap_lines(capsys.readouterr().err.splitlines())) == expected


def test_a_new_gap_is_warned_about_again(tmp_path, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(data()).install(rsps)
        assert sync(tmp_path) == 0
    capsys.readouterr()
    code, lines, _ = run(tmp_path, capsys)  # now Immunization lacks its patient parameter too
    assert code == 0
    [line] = gap_lines(lines)
    assert " WARNING " in line and "Immunization" in line


def test_a_record_run_without_state_still_warns_once(tmp_path, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeServer(data()).install(rsps)
        code = main(["record", "--base-url", "https://ehr.test/fhir", "--out", str(tmp_path / "rec")])
    assert code == 0
    [line] = gap_lines(capsys.readouterr().err.splitlines())
    assert "WARNING" in line
