"""`fhir-cat2 config check` proves access against a real server with auth on: sekmet started with basic,
static bearer and SMART (client_secret) auth, its /metadata public as on most servers. A wrong password,
no credentials, a rejected bearer token and a token whose scope cannot write fail the check (exit 3, the
setting named); right credentials pass with a result per resource type sync reads. A missing token is a
configuration problem (exit 2) found before the server is contacted."""

from __future__ import annotations

import json

import pytest
import requests

from fhir_cat2.cli import main
from fhir_cat2.sources.server import CORE_TYPES
from tests.support.sekmet_server import SekmetServer

from .conftest import EXTERNAL

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(EXTERNAL), reason="needs a sekmet started with auth on (not FHIR_CAT2_TEST_BASE_URL)"
    ),
]

PASSWORD = "pw-4c1e9a7f2b"
TOKEN = "st-8d2f6b0e4a"
CLIENT_SECRET = "cs-1a5e9c3f7d"
SECRETS = (PASSWORD, TOKEN, CLIENT_SECRET, "wrong-pw-77", "st-rejected-55")


@pytest.fixture(scope="module")
def server():
    settings = {
        "server_auth": {
            "types": ["basic", "bearer", "smart"],
            "users": {"fc2": PASSWORD},
            "tokens": [TOKEN],
            "smart_clients": [
                {"client_id": "writer", "client_secret": CLIENT_SECRET, "scopes": "system/*.*"},
                {"client_id": "reader", "client_secret": CLIENT_SECRET, "scopes": "system/*.read"},
            ],
        }
    }
    with SekmetServer(settings=settings) as sekmet:
        yield sekmet


def config_check(server, tmp_path, capsys, auth: str, *extra: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"server:\n  base_url: {server.base_url}\n  auth:\n{auth}"
        f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/out\n"
    )
    code = main(["config", "check", str(path), *extra])
    out = capsys.readouterr()
    text = out.out + out.err
    assert not [s for s in SECRETS if s in text]
    return code, out.out


def basic(password: str) -> str:
    return "    type: basic\n    username: fc2\n    password_env: TEST_FHIR_PASSWORD\n"


def test_metadata_is_public_and_searches_are_not(server):
    assert requests.get(f"{server.base_url}/metadata", timeout=10).status_code == 200
    assert requests.get(f"{server.base_url}/Patient", timeout=10).status_code == 401


def test_right_password_passes_with_a_result_per_type(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_FHIR_PASSWORD", PASSWORD)
    code, out = config_check(server, tmp_path, capsys, basic(PASSWORD))
    assert code == 0, out
    for resource_type in CORE_TYPES:
        assert f"ok: server: search {resource_type} with the credentials: 0 on the server" in out, out
    assert "ok: write: $validate Claim accepted with the credentials (HTTP 200); nothing stored" in out
    assert "ok: write: $validate MeasureReport accepted with the credentials (HTTP 200)" in out
    assert (
        "not verified: write: permission to create and update Claim (update): credentials of type 'basic'"
        " carry no scopes, and no request proves it without writing"
    ) in out
    assert "not verified: write: permission to create, update and delete MeasureReport" in out
    assert out.strip().splitlines()[-1].endswith(": ready (2 check(s) not verified)")


def test_wrong_password_fails_with_exit_3_naming_the_settings(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_FHIR_PASSWORD", "wrong-pw-77")
    code, out = config_check(server, tmp_path, capsys, basic("wrong-pw-77"))
    assert code == 3, out
    assert (
        "problem: server: search Patient: HTTP 401 (server: error: login);"
        " check server.auth.username (fc2) and the password (from environment variable TEST_FHIR_PASSWORD)"
    ) in out
    assert out.count("problem:") == 1  # stops there: every other search would say the same
    assert "ready" not in out


def test_no_credentials_configured_fails_with_exit_3(server, tmp_path, capsys):
    code, out = config_check(server, tmp_path, capsys, "    type: none\n")
    assert code == 3, out
    assert (
        "no credentials are configured (server.auth.type: none) but the server wants them:"
        " set server.auth.type and its credentials"
    ) in out


def test_a_missing_token_is_a_configuration_problem_before_any_request(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TEST_FHIR_TOKEN", raising=False)
    code, out = config_check(server, tmp_path, capsys, "    type: bearer\n    token_env: TEST_FHIR_TOKEN\n")
    assert code == 2, out
    assert "problem: server.auth.token: environment variable TEST_FHIR_TOKEN is not set" in out
    assert "the server was not contacted" in out


def test_a_rejected_bearer_token_fails_with_exit_3(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_FHIR_TOKEN", "st-rejected-55")
    code, out = config_check(server, tmp_path, capsys, "    type: bearer\n    token_env: TEST_FHIR_TOKEN\n")
    assert code == 3, out
    assert (
        "the token (from environment variable TEST_FHIR_TOKEN) is wrong or has expired:"
        " check server.auth.token"
    ) in out


def test_an_accepted_bearer_token_passes(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_FHIR_TOKEN", TOKEN)
    code, out = config_check(server, tmp_path, capsys, "    type: bearer\n    token_env: TEST_FHIR_TOKEN\n")
    assert code == 0, out
    assert "ok: server: search Observation with the credentials" in out


def client_credentials(client_id: str) -> str:
    return (
        f"    type: client-credentials\n    client_id: {client_id}\n"
        "    scope: system/*.read system/Claim.write system/MeasureReport.write\n"
        "    client_secret_env: TEST_CLIENT_SECRET\n"
    )


def test_a_token_whose_scope_cannot_write_fails_with_exit_3(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_CLIENT_SECRET", CLIENT_SECRET)
    code, out = config_check(server, tmp_path, capsys, client_credentials("reader"))
    assert code == 3, out
    assert "ok: server: search Patient with the credentials" in out  # reading is allowed
    assert (
        "problem: write: the token's scope (system/*.read) does not grant create and update on Claim"
    ) in out
    assert "ask for system/Claim.write in server.auth.scope" in out
    # sync --dry-run writes nothing: the same credentials are enough for it
    code, out = config_check(server, tmp_path, capsys, client_credentials("reader"), "--dry-run")
    assert code == 0, out


def test_a_token_that_can_write_passes_as_json(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_CLIENT_SECRET", CLIENT_SECRET)
    code, out = config_check(server, tmp_path, capsys, client_credentials("writer"), "--format", "json")
    assert code == 0, out
    document = json.loads(out)
    assert document["verdict"] == "ready" and document["exit_code"] == 0
    results = {c.get("check"): c["level"] for c in document["checks"]}
    assert results["token"] == "ok"
    assert all(results[f"search {t}"] == "ok" for t in CORE_TYPES)
    assert results["$validate Claim"] == results["write permission Claim"] == "ok"
    assert results["write permission MeasureReport"] == "ok"


def test_bulk_mode_checks_export_is_listed_and_an_authenticated_kick_off_is_accepted(
    server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TEST_FHIR_PASSWORD", PASSWORD)
    monkeypatch.setenv("FHIR_CAT2_SOURCE__MODE", "bulk")
    code, out = config_check(server, tmp_path, capsys, basic(PASSWORD), "--dry-run")
    assert code == 0, out
    assert "ok: server: the CapabilityStatement lists $export at system level" in out
    assert (
        "ok: server: an authenticated [base]/$export kick-off is accepted (a test export, cancelled)" in out
    )


def test_bulk_mode_at_group_level_without_a_group_is_a_configuration_problem(
    server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TEST_FHIR_PASSWORD", PASSWORD)
    monkeypatch.setenv("FHIR_CAT2_SOURCE__MODE", "bulk")
    monkeypatch.setenv("FHIR_CAT2_SOURCE__BULK__LEVEL", "group")
    code, out = config_check(server, tmp_path, capsys, basic(PASSWORD), "--dry-run")
    assert code == 2, out
    assert "problem: server: source.bulk.level group needs source.group (the Group id)" in out
