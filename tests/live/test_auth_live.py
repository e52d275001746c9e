"""SMART Backend Services against a real server: sekmet started with inbound SMART auth and our public key
registered as a JWKS. The token endpoint is discovered from .well-known/smart-configuration, the signed
assertion is verified by the server, and a wrong key is refused with exit 3."""

from __future__ import annotations

import json

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_cat2.cli import main
from tests.support.sekmet_server import SekmetServer

from .conftest import EXTERNAL, LiveServer, load_fixtures

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(EXTERNAL), reason="needs a sekmet started with SMART auth (not FHIR_CAT2_TEST_BASE_URL)"
    ),
]

CLIENT_ID = "fhir-cat2-test"


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def keys():
    return {
        "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
    }


@pytest.fixture(scope="module")
def smart_server(keys):
    # One client per key type: sekmet 0.1.1 answers 500 when it tries an EC key on an RS384 assertion.
    clients = []
    for alg, key in keys.items():
        algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS384" else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        clients.append(
            {
                "client_id": f"{CLIENT_ID}-{alg}",
                "jwks": {"keys": [{**jwk, "kid": f"k-{alg}", "alg": alg}]},
                "scopes": "system/*.read system/Claim.write system/MeasureReport.write system/*.*",
            }
        )
    settings = {"server_auth": {"types": ["smart"], "smart_clients": clients}}
    with SekmetServer(settings=settings) as server:
        yield server


def _config(tmp_path, alg: str) -> str:
    path = tmp_path / "fhir-cat2.yaml"
    path.write_text(
        "server:\n"
        "  auth:\n"
        "    type: smart-backend\n"
        f"    client_id: {CLIENT_ID}-{alg}\n"
        "    scope: system/*.read system/Claim.write system/MeasureReport.write\n"
        f"    algorithm: {alg}\n"
        f"    kid: k-{alg}\n"
        f"    private_key_file: {tmp_path / 'key.pem'}\n"
    )
    return str(path)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_sync_with_smart_backend_services(smart_server, keys, tmp_path, alg, capsys):
    assert (
        requests.get(f"{smart_server.base_url}/Patient", timeout=10).status_code == 401
    )  # auth really is on
    (tmp_path / "key.pem").write_text(_pem(keys[alg]))
    code = main(
        [
            "sync",
            "--config",
            _config(tmp_path, alg),
            "--base-url",
            smart_server.base_url,
            "--state",
            str(tmp_path / "s.sqlite"),
            "--out",
            str(tmp_path / "out"),
            "--period",
            "2025",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    assert report["requests"] > 3


def test_smart_with_an_unregistered_key_exits_3(smart_server, tmp_path, capsys):
    (tmp_path / "key.pem").write_text(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    code = main(
        [
            "sync",
            "--config",
            _config(tmp_path, "RS384"),
            "--base-url",
            smart_server.base_url,
            "--state",
            str(tmp_path / "s.sqlite"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 3
    err = capsys.readouterr().err
    assert "authentication refused" in err and "client_assertion verification failed" in err
    assert "PRIVATE KEY" not in err


def test_smart_sync_writes_back(smart_server, keys, tmp_path, caplog):
    # load the fixtures with a token of our own (the server has no open door)
    from pydantic import SecretStr

    from fhir_cat2.auth import SmartBackendAuth
    from fhir_cat2.fhir import FhirClient

    auth = SmartBackendAuth(
        f"{CLIENT_ID}-RS384",
        SecretStr(_pem(keys["RS384"])),
        token_url=None,
        kid="k-RS384",
        scope="system/*.*",
    )
    FhirClient(smart_server.base_url, auth=auth)
    token = auth.access_token().get_secret_value()

    class Authed(LiveServer):
        def transaction(self, entries):
            response = requests.post(
                self.base_url,
                json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
                timeout=60,
            )
            assert response.status_code == 200, response.text[:500]
            return response.json()

    load_fixtures(Authed(smart_server.base_url, smart_server))
    (tmp_path / "key.pem").write_text(_pem(keys["RS384"]))
    assert (
        main(
            [
                "sync",
                "--config",
                _config(tmp_path, "RS384"),
                "--base-url",
                smart_server.base_url,
                "--state",
                str(tmp_path / "s.sqlite"),
                "--out",
                str(tmp_path / "out"),
                "--period",
                "2025",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "run-report.json").read_text())
    # the narrow scopes do not cover a transaction on this server: the sink falls back to single PUTs
    # as many as replay writes for the fixtures (the live sync tests compare them one by one)
    assert report["write_back"]["Claim"]["created"] == report["written"]["Claim"] > 10
    assert report["write_back"]["MeasureReport"]["created"] == report["written"]["MeasureReport"] > 10
    assert "writing resources one by one" in caplog.text


def test_config_check_gets_a_token_and_the_capability_statement(smart_server, keys, tmp_path, capsys):
    (tmp_path / "key.pem").write_text(_pem(keys["RS384"]))
    (tmp_path / "key.pem").chmod(0o600)
    config = _config(tmp_path, "RS384")
    with open(config, "a") as handle:
        handle.write(
            f"  base_url: {smart_server.base_url}\nsync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/o\n"
        )
    assert main(["config", "check", config]) == 0
    out = capsys.readouterr().out
    assert "ok: server: token obtained from" in out and "(not shown)" in out and "FHIR 4.0.1" in out
    assert "PRIVATE KEY" not in out and _pem(keys["RS384"]).splitlines()[1] not in out

    other = ec.generate_private_key(ec.SECP384R1())  # a key the server does not know
    (tmp_path / "key.pem").write_text(_pem(other))
    config_es = _config(tmp_path, "ES384")
    with open(config_es, "a") as handle:
        handle.write(f"  base_url: {smart_server.base_url}\n")
    assert main(["config", "check", config_es]) == 3
    assert "problem: server: token refused" in capsys.readouterr().out
