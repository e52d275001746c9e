"""Auth classes: SMART Backend Services assertions verified with the public key, token caching and refresh,
401 then a refreshed token, discovery, and secrets that never reach a repr, a log or the config file."""

from __future__ import annotations

import base64
import logging
import time
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from fhir_cat2.auth import (
    CLIENT_ASSERTION_TYPE,
    BasicAuth,
    BearerTokenAuth,
    ClientCredentialsAuth,
    SmartBackendAuth,
)
from fhir_cat2.config import load_config
from fhir_cat2.errors import AuthError, ConfigError
from fhir_cat2.fhir import FhirClient
from fhir_cat2.server_config import AuthConfig, build_auth

BASE = "https://ehr.example.org/api/FHIR/R4"
TOKEN_URL = "https://ehr.example.org/oauth2/token"


def pem(key) -> SecretStr:
    return SecretStr(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def form_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_smart_assertion_claims_verify_with_the_public_key(algorithm, rsa_key, ec_key):
    key = rsa_key if algorithm == "RS384" else ec_key
    auth = SmartBackendAuth(
        "my-client", pem(key), token_url=TOKEN_URL, scope="system/*.read", algorithm=algorithm, kid="k1"
    )
    before = int(time.time())
    first = auth.client_assertion(TOKEN_URL)
    second = auth.client_assertion(TOKEN_URL)
    claims = jwt.decode(first, key.public_key(), algorithms=[algorithm], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == "my-client"
    assert claims["aud"] == TOKEN_URL
    assert (
        before <= claims["iat"]
        and claims["exp"] - claims["iat"] <= 300
        and claims["exp"] <= time.time() + 300
    )
    assert (
        claims["jti"]
        != jwt.decode(second, key.public_key(), algorithms=[algorithm], audience=TOKEN_URL)["jti"]
    )
    header = jwt.get_unverified_header(first)
    assert header["alg"] == algorithm and header["kid"] == "k1" and header["typ"] == "JWT"


def test_smart_refuses_wrong_key_type_or_algorithm(rsa_key, ec_key):
    with pytest.raises(ConfigError, match="EC P-384"):
        SmartBackendAuth("c", pem(rsa_key), token_url=TOKEN_URL, scope="s", algorithm="ES384")
    with pytest.raises(ConfigError, match="RSA"):
        SmartBackendAuth("c", pem(ec_key), token_url=TOKEN_URL, scope="s", algorithm="RS384")
    with pytest.raises(ConfigError, match="RS384 or ES384"):
        SmartBackendAuth("c", pem(rsa_key), token_url=TOKEN_URL, scope="s", algorithm="RS256")
    with pytest.raises(ConfigError, match="PEM"):
        SmartBackendAuth("c", SecretStr("not a key"), token_url=TOKEN_URL, scope="s")


@responses.activate
def test_smart_token_request_and_reuse(rsa_key, sleeps):
    responses.post(TOKEN_URL, json={"access_token": "tok-1", "token_type": "bearer", "expires_in": 300})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    auth = SmartBackendAuth(
        "my-client", pem(rsa_key), token_url=TOKEN_URL, scope="system/*.read system/Claim.write"
    )
    client = FhirClient(BASE, auth=auth)
    client.read("Patient", "p1")
    client.read("Patient", "p1")
    token_calls = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1  # fetched lazily, once, then reused
    form = form_of(token_calls[0])
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert form["scope"] == "system/*.read system/Claim.write"
    claims = jwt.decode(
        form["client_assertion"], rsa_key.public_key(), algorithms=["RS384"], audience=TOKEN_URL
    )
    assert claims["iss"] == "my-client"
    assert "Authorization" not in token_calls[0].request.headers
    data_calls = [c for c in responses.calls if c.request.url != TOKEN_URL]
    assert all(c.request.headers["Authorization"] == "Bearer tok-1" for c in data_calls)


@responses.activate
def test_401_then_refreshed_token(sleeps):
    responses.post(TOKEN_URL, json={"access_token": "old", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "new", "expires_in": 3600})
    responses.get(
        f"{BASE}/Patient/p1",
        status=401,
        json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]},
    )
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    auth = ClientCredentialsAuth("cid", SecretStr("secret"), token_url=TOKEN_URL)
    client = FhirClient(BASE, auth=auth)
    assert client.read("Patient", "p1").body["id"] == "p1"
    reads = [c for c in responses.calls if c.request.url.endswith("/Patient/p1")]
    assert [c.request.headers["Authorization"] for c in reads] == ["Bearer old", "Bearer new"]
    assert auth.tokens_fetched == 2 and sleeps == []


@responses.activate
def test_401_after_refresh_is_an_auth_error(sleeps):
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 3600})
    responses.get(f"{BASE}/Patient/p1", status=401)
    client = FhirClient(BASE, auth=ClientCredentialsAuth("cid", SecretStr("secret"), token_url=TOKEN_URL))
    with pytest.raises(AuthError):
        client.read("Patient", "p1")
    assert len([c for c in responses.calls if c.request.url.endswith("/Patient/p1")]) == 2


@responses.activate
def test_static_bearer_401_is_an_auth_error_at_once(sleeps):
    responses.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(AuthError):
        FhirClient(BASE, auth=BearerTokenAuth(SecretStr("t"))).read("Patient", "p1")
    assert len(responses.calls) == 1


@responses.activate
def test_token_is_refreshed_before_it_expires(monkeypatch, sleeps):
    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])
    responses.post(TOKEN_URL, json={"access_token": "a", "expires_in": 300})
    responses.post(TOKEN_URL, json={"access_token": "b", "expires_in": 300})
    auth = ClientCredentialsAuth("cid", SecretStr("s"), token_url=TOKEN_URL, skew=60)
    FhirClient(BASE, auth=auth)
    assert auth.access_token().get_secret_value() == "a"
    clock["now"] = 1000.0 + 239  # expiry counted from before the request: 1300 - 60 s skew = 1240
    assert auth.access_token().get_secret_value() == "a"
    clock["now"] = 1000.0 + 240
    assert auth.access_token().get_secret_value() == "b"


@responses.activate
def test_client_credentials_basic_and_post(sleeps):
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 60})
    auth = ClientCredentialsAuth("cid", SecretStr("p@ss"), token_url=TOKEN_URL, scope="system/*.read")
    FhirClient(BASE, auth=auth)
    auth.access_token()
    header = responses.calls[0].request.headers["Authorization"]
    assert base64.b64decode(header.split()[1]).decode() == "cid:p@ss"
    assert form_of(responses.calls[0]) == {"grant_type": "client_credentials", "scope": "system/*.read"}
    auth_post = ClientCredentialsAuth(
        "cid", SecretStr("p@ss"), token_url=TOKEN_URL, method="client_secret_post"
    )
    FhirClient(BASE, auth=auth_post)
    auth_post.access_token()
    assert form_of(responses.calls[1])["client_secret"] == "p@ss"
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_token_endpoint_refusal_is_an_auth_error_with_its_description(rsa_key, sleeps):
    responses.post(
        TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": "unknown kid"}
    )
    auth = SmartBackendAuth("c", pem(rsa_key), token_url=TOKEN_URL, scope="system/*.read")
    FhirClient(BASE, auth=auth)
    with pytest.raises(AuthError, match="unknown kid"):
        auth.access_token()


@responses.activate
def test_token_url_discovered_from_smart_configuration(rsa_key, sleeps):
    responses.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 300})
    auth = SmartBackendAuth("c", pem(rsa_key), token_url=None, scope="system/*.read")
    FhirClient(BASE, auth=auth)
    auth.access_token()
    assert auth.token_url == TOKEN_URL
    assert "Authorization" not in responses.calls[0].request.headers
    claims = jwt.decode(
        form_of(responses.calls[1])["client_assertion"],
        rsa_key.public_key(),
        algorithms=["RS384"],
        audience=TOKEN_URL,
    )
    assert claims["aud"] == TOKEN_URL


@responses.activate
def test_discovery_without_token_endpoint_is_a_configuration_error(rsa_key, sleeps):
    # the fix is a setting (server.auth.token_url), not other credentials: exit 2, not 3
    responses.get(f"{BASE}/.well-known/smart-configuration", status=404)
    auth = SmartBackendAuth("c", pem(rsa_key), token_url=None, scope="system/*.read")
    FhirClient(BASE, auth=auth)
    with pytest.raises(ConfigError, match=r"set server\.auth\.token_url"):
        auth.access_token()


def test_secrets_never_appear_in_repr(rsa_key):
    for auth in (
        BearerTokenAuth(SecretStr("tok-XYZ")),
        BasicAuth("u", SecretStr("pw-XYZ")),
        ClientCredentialsAuth("cid", SecretStr("sec-XYZ"), token_url=TOKEN_URL),
        SmartBackendAuth("cid", pem(rsa_key), token_url=TOKEN_URL, scope="s"),
    ):
        assert "XYZ" not in repr(auth) and "PRIVATE" not in repr(auth)


@responses.activate
def test_tokens_are_not_logged(caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    responses.post(TOKEN_URL, json={"access_token": "tok-SECRET-123", "expires_in": 300})
    responses.get(f"{BASE}/Patient", json={"resourceType": "Bundle", "type": "searchset"})
    client = FhirClient(BASE, auth=ClientCredentialsAuth("cid", SecretStr("cs-SECRET"), token_url=TOKEN_URL))
    list(client.search("Patient", [("name", "Smith"), ("birthdate", "1960-01-01")]))
    text = caplog.text
    assert "SECRET" not in text and "Smith" not in text and "1960" not in text


# ------------------------------------------------------------------------------------------- config


def test_secret_in_the_config_file_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  base_url: https://x.org/fhir\n  auth:\n    type: bearer\n    token: abc\n")
    with pytest.raises(ConfigError, match="secrets never go in the configuration file"):
        load_config(path, environ={})


def test_secret_from_environment_and_from_file(tmp_path, rsa_key):
    path = tmp_path / "c.yaml"
    path.write_text(
        "server:\n  auth:\n    type: client-credentials\n    client_id: cid\n    token_url: https://t.org/token\n"
    )
    config = load_config(path, environ={"FHIR_CAT2_SERVER__AUTH__CLIENT_SECRET": "0123"})
    auth = build_auth(config.server.auth, "server.auth")
    assert (
        isinstance(auth, ClientCredentialsAuth) and auth._secret.get_secret_value() == "0123"
    )  # kept verbatim

    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(rsa_key).get_secret_value())
    cfg = AuthConfig(
        type="smart-backend", client_id="c", scope="system/*.read", private_key_file=str(key_file)
    )
    assert isinstance(build_auth(cfg, "server.auth"), SmartBackendAuth)


def test_missing_secret_is_a_config_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_VAR is not set"):
        build_auth(AuthConfig(type="bearer", token_env="NO_SUCH_VAR"), "server.auth")
    with pytest.raises(ConfigError, match="needs client_id"):
        build_auth(AuthConfig(type="smart-backend"), "server.auth")
    with pytest.raises(ConfigError, match="private_key_file"):
        build_auth(AuthConfig(type="smart-backend", client_id="c", scope="s"), "server.auth")
    with pytest.raises(ConfigError, match="cannot read"):
        build_auth(AuthConfig(type="basic", username="u", password_file="/nonexistent/pw"), "server.auth")
