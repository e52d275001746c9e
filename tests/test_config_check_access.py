"""`config check` proves access with `responses` for what sekmet will not do on demand: a server that refuses
`_summary` (the check falls back to `_count=1`), a type the credentials may not read (403: named, the other
types still checked), a write server of its own whose credentials are refused on `$validate`, and a server
without `$validate` (said to be not verified). The live checks are in tests/live/test_config_check_live.py."""

from __future__ import annotations

import json
import re

import responses

from fhir_cat2.cli import main

from .test_sync_offline import capability, sleeps  # noqa: F401

BASE = "https://ehr.test/fhir"
WRITER = "https://writer.test/fhir"
TOKEN = "st-6b2d8f0a4c"
WRITE_TOKEN = "st-9e1c3a5b7d"


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text + f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/o\n")
    return str(path)


def bearer(variable: str) -> str:
    return f"  auth:\n    type: bearer\n    token_env: {variable}\n"


def metadata(validate: bool = True) -> dict:
    statement = {**capability(), "fhirVersion": "4.0.1"}
    if validate:
        statement["rest"][0]["operation"] = [{"name": "validate"}]
    return statement


def outcome(code: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}


def run(capsys, path: str, *extra: str) -> tuple[int, str]:
    code = main(["config", "check", path, *extra])
    out = capsys.readouterr().out
    assert TOKEN not in out and WRITE_TOKEN not in out
    return code, out


def test_a_server_that_refuses_summary_is_searched_with_count_1(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_TOKEN", TOKEN)
    path = write_config(tmp_path, f"server:\n  base_url: {BASE}\n{bearer('TEST_TOKEN')}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=metadata())
        rsps.get(
            re.compile(rf"{BASE}/\w+\?_summary=count"),
            status=400,
            json={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported"}],
            },
        )
        rsps.get(re.compile(rf"{BASE}/\w+\?_count=1"), json={"resourceType": "Bundle", "type": "searchset"})
        rsps.post(
            re.compile(rf"{BASE}/\w+/\$validate"), json={"resourceType": "OperationOutcome", "issue": []}
        )
        code, out = run(capsys, path)
        searched = [c.request for c in rsps.calls if "_count=1" in c.request.url]
    assert code == 0, out
    assert "ok: server: search Observation with the credentials" in out
    assert len(searched) >= 8 and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in searched)


def test_a_type_the_credentials_may_not_read_is_named_and_the_others_still_checked(
    tmp_path, capsys, monkeypatch, sleeps
):
    monkeypatch.setenv("TEST_TOKEN", TOKEN)
    path = write_config(tmp_path, f"server:\n  base_url: {BASE}\n{bearer('TEST_TOKEN')}")
    forbidden = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=metadata())
        rsps.get(f"{BASE}/Condition?_summary=count", status=403, json=forbidden)
        rsps.get(re.compile(rf"{BASE}/\w+\?_summary=count"), json={"resourceType": "Bundle", "total": 7})
        rsps.post(
            re.compile(rf"{BASE}/\w+/\$validate"), json={"resourceType": "OperationOutcome", "issue": []}
        )
        code, out = run(capsys, path)
    assert code == 3, out
    assert (
        "problem: server: search Condition: forbidden (HTTP 403): the credentials are accepted but may not"
        " read Condition; grant it on the server"
    ) in out
    assert "ok: server: search Procedure with the credentials: 7 on the server" in out
    assert "$validate Claim accepted" in out


def test_a_write_server_that_refuses_its_credentials_names_write_auth(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_WRITE_TOKEN", WRITE_TOKEN)
    path = write_config(
        tmp_path,
        f"server:\n  base_url: {BASE}\n{bearer('TEST_TOKEN')}"
        f"write:\n  base_url: {WRITER}\n{bearer('TEST_WRITE_TOKEN')}",
    )
    refused = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=metadata())
        rsps.get(re.compile(rf"{BASE}/\w+\?_summary=count"), json={"resourceType": "Bundle", "total": 1})
        rsps.get(f"{WRITER}/metadata", json=metadata())
        rsps.get(re.compile(rf"{WRITER}/\w+\?_summary=count"), status=401, json=refused)
        code, out = run(capsys, path, "--format", "json")
        to_writer = [c.request for c in rsps.calls if c.request.url.startswith(WRITER + "/Claim")]
    document = json.loads(out)
    assert code == 3 and document["exit_code"] == 3, out
    problem = next(c for c in document["checks"] if c["level"] == "problem")
    assert problem["check"] == "write-back read Claim" and problem["exit_code"] == 3
    assert (
        "the token (from environment variable TEST_WRITE_TOKEN) is wrong or has expired:"
        " check write.auth.token"
    ) in problem["text"]
    assert to_writer and to_writer[0].headers["Authorization"] == f"Bearer {WRITE_TOKEN}"


def test_a_server_without_validate_says_what_it_could_not_verify(tmp_path, capsys, monkeypatch, sleeps):
    path = write_config(tmp_path, f"server:\n  base_url: {BASE}\n")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=metadata(validate=False))
        rsps.get(re.compile(rf"{BASE}/\w+\?_summary=count"), json={"resourceType": "Bundle", "total": 0})
        code, out = run(capsys, path)
        assert not [c for c in rsps.calls if c.request.method != "GET"]  # nothing was written or posted
    assert code == 0, out
    assert "not verified: write: $validate Claim: the server lists no $validate operation" in out
    assert "not verified: write: permission to create and update Claim (update)" in out
    assert out.strip().splitlines()[-1].endswith(": ready (4 check(s) not verified)")


def test_a_protected_metadata_refusal_names_the_basic_settings(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_PASSWORD", TOKEN)
    path = write_config(
        tmp_path,
        f"server:\n  base_url: {BASE}\n  auth:\n    type: basic\n    username: fc2\n"
        "    password_env: TEST_PASSWORD\n",
    )
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", status=401, json=outcome("login"))
        code, out = run(capsys, path)
    assert code == 3, out
    assert (
        "refused the credentials: GET metadata: HTTP 401 (server: error: login); check server.auth.username"
        " (fc2) and the password (from environment variable TEST_PASSWORD)"
    ) in out
