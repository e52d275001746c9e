"""`fhir-cat2 config check` and the security defaults: plain http refused off this machine, TLS options,
secrets never printed (scanned for in every output), environment overrides."""

from __future__ import annotations

import re

import pytest
import responses

from fhir_cat2.cli import main
from fhir_cat2.config import load_config

from .conftest import ROOT
from .test_sync_offline import capability, sleeps  # noqa: F401

BASE = "https://ehr.test/fhir"
SECRET = "cs-7d1f9a2b4c6e8f0a"
TOKEN = "at-5e3c1b9d7f2a4c6e"


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def check(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["config", "check", *args])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and TOKEN not in out.out + out.err
    return code, out.out.strip().splitlines()


def client_credentials(tmp_path, base: str = BASE) -> str:
    return write(
        tmp_path,
        f"server:\n  base_url: {base}\n  auth:\n    type: client-credentials\n    client_id: fc2\n"
        f"    token_url: https://auth.ehr.test/token\n    client_secret_env: TEST_SECRET\n"
        f"sync:\n  state: {tmp_path}/state.sqlite\n  out: {tmp_path}/out\n",
    )


def test_the_example_configuration_is_valid_offline(capsys):
    code, lines = check(capsys, str(ROOT / "config.example.yaml"), "--offline")
    assert code == 0 and lines[-1].endswith(": ready")


def test_every_problem_on_its_own_line_and_exit_2(tmp_path, capsys):
    path = write(
        tmp_path,
        "run:\n  program: medicaid\n  period: 12\n"
        "server:\n  page_size: 0\n  base_url: ftp://x\n  colour: blue\n",
    )
    code, lines = check(capsys, path)
    problems = [line for line in lines if line.startswith("problem: ")]
    assert code == 2 and len(problems) == 5, lines
    # each names the file and line, as the rules table's problems do
    assert any(p.startswith(f"problem: {path}:2: run.program: ") for p in problems), problems
    assert any(p.startswith(f"problem: {path}:3: run.period: ") for p in problems), problems
    assert f"problem: {path}:7: server.colour: Extra inputs are not permitted" in problems
    assert lines[-1].endswith("5 problem(s)")


def test_missing_secret_unreadable_files_and_plain_http_are_problems(tmp_path, capsys, monkeypatch):
    path = write(
        tmp_path,
        "server:\n  base_url: http://ehr.example.org/fhir\n"
        "  auth:\n    type: bearer\n    token_env: NOT_SET_HERE\n"
        "  tls:\n    ca_bundle: /no/such/ca.pem\nrun:\n  rules: /no/such/rules.yaml\n",
    )
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    code, lines = check(capsys, path)
    text = "\n".join(lines)
    assert code == 2
    assert "problem: server.auth.token: environment variable NOT_SET_HERE is not set" in text
    assert "problem: server.tls.ca_bundle: cannot read /no/such/ca.pem" in text
    assert "plain http:// to ehr.example.org" in text and "allow_insecure_http" in text
    assert "problem: rules: " in text and "the server was not contacted" in text


def test_a_secret_in_the_file_is_refused_without_echoing_it(tmp_path, capsys):
    path = write(tmp_path, f"server:\n  auth:\n    type: client-credentials\n    client_secret: {SECRET}\n")
    code, lines = check(capsys, path)
    assert code == 2 and "secrets never go in the configuration file" in lines[0]


def test_token_and_capability_statement_fetched_secret_never_printed(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    monkeypatch.setenv("FHIR_CAT2_SERVER__PAGE_SIZE", "50")
    with responses.RequestsMock() as rsps:
        rsps.post("https://auth.ehr.test/token", json={"access_token": TOKEN, "expires_in": 300})
        rsps.get(
            f"{BASE}/metadata",
            json={**capability(), "fhirVersion": "4.0.1", "software": {"name": "EHR", "version": "9"}},
        )
        rsps.get(re.compile(rf"{BASE}/\w+\?_summary=count"), json={"resourceType": "Bundle", "total": 3})
        code, lines = check(capsys, client_credentials(tmp_path))
        assert rsps.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in rsps.calls[2:])
    text = "\n".join(lines)
    assert code == 0, text
    assert "environment overrides: FHIR_CAT2_SERVER__PAGE_SIZE" in text
    assert "secret resolved from environment variable TEST_SECRET (not shown)" in text
    assert "ok: server: token obtained from https://auth.ehr.test/token (not shown)" in text
    assert "CapabilityStatement of EHR 9, FHIR 4.0.1" in text


def test_a_refused_token_is_exit_3(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    with responses.RequestsMock() as rsps:
        rsps.post(
            "https://auth.ehr.test/token",
            status=401,
            json={"error": "invalid_client", "error_description": f"bad secret {SECRET}"},
        )
        code, lines = check(capsys, client_credentials(tmp_path))
    assert code == 3 and any(line.startswith("problem: server: token refused") for line in lines)


def test_an_unreachable_server_is_exit_4_within_seconds(tmp_path, capsys, monkeypatch, sleeps):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write(tmp_path, f"server:\n  base_url: http://127.0.0.1:{port}/fhir\n")
    code, lines = check(capsys, path)
    assert code == 4 and any("unreachable" in line for line in lines)
    assert len(sleeps) <= 1  # two tries at most: a check answers quickly


def test_a_server_that_is_not_r4_is_a_problem(tmp_path, capsys):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", json={**capability(), "fhirVersion": "5.0.0"})
        code, lines = check(capsys, write(tmp_path, f"server:\n  base_url: {BASE}\n"))
    assert code == 2 and any("needs R4" in line for line in lines)


def test_group_readable_secret_files_are_warned_about(tmp_path, capsys, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    secret.chmod(0o644)
    path = write(
        tmp_path,
        "server:\n  auth:\n    type: client-credentials\n    client_id: x\n"
        f"    client_secret_file: {secret}\n",
    )
    code, lines = check(capsys, path, "--offline")
    assert code == 0 and any("readable by other users (mode 644)" in line for line in lines)


# ------------------------------------------------------------------------------------------ http and TLS


@pytest.mark.parametrize("flag", ["--base-url", "--write-to"])
def test_plain_http_to_another_host_is_refused_before_any_request(flag, tmp_path, capsys):
    plain = "http://ehr.example.org/fhir"
    base = plain if flag == "--base-url" else BASE
    argv = ["sync", "--base-url", base, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    if flag == "--write-to":
        argv += ["--write-to", plain]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/metadata", json=capability())
        code = main(argv)
        assert not rsps.calls  # refused before any request, to either server
    assert code == 2
    assert "plain http:// to ehr.example.org" in capsys.readouterr().err


def test_plain_http_is_allowed_to_this_machine_and_when_configured(tmp_path, capsys, monkeypatch, sleeps):
    from .test_sync_offline import FakeServer, data

    base = "http://ehr.internal/fhir"
    monkeypatch.setenv("FHIR_CAT2_SERVER__ALLOW_INSECURE_HTTP", "true")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeServer(data())
        import fhir_cat2  # noqa: F401

        from . import test_sync_offline

        monkeypatch.setattr(test_sync_offline, "BASE", base)
        fake.install(rsps)
        code = main(
            [
                "sync",
                "--base-url",
                base,
                "--state",
                str(tmp_path / "s"),
                "--out",
                str(tmp_path / "o"),
                "--dry-run",
                "--period",
                "2025",
            ]
        )
    assert code == 0
    for host in ("localhost", "127.0.0.1", "127.8.9.1", "[::1]"):
        from fhir_cat2.fhir import refuse_insecure

        refuse_insecure(f"http://{host}:8080/fhir", "test", False)  # no exception


def test_tls_options_reach_every_request(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    for path in (ca, cert, key):
        path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    config = load_config(
        None,
        environ={
            "FHIR_CAT2_SERVER__TLS__CA_BUNDLE": str(ca),
            "FHIR_CAT2_SERVER__TLS__CLIENT_CERT": str(cert),
            "FHIR_CAT2_SERVER__TLS__CLIENT_KEY": str(key),
        },
    )
    from fhir_cat2.server_config import build_client

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = build_client(BASE, config.server, None)
    seen = {}

    def capture(method, url, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    client.session.request = capture  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        client.capabilities()
    assert seen["verify"] == str(ca) and seen["cert"] == (str(cert), str(key))  # not the environment's bundle
    assert load_config(None, environ={}).server.tls.ca_bundle is None
    assert build_client(BASE, load_config(None, environ={}).server, None).verify is True


def test_environment_overrides_reach_nested_keys():
    config = load_config(
        ROOT / "config.example.yaml",
        environ={
            "FHIR_CAT2_SERVER__RETRY__ATTEMPTS": "9",
            "FHIR_CAT2_SYNC__STATE": "/var/lib/fhir-cat2/state.sqlite",
            "FHIR_CAT2_RUN__EMIT": "[claim]",
            "FHIR_CAT2_LOG__FORMAT": "json",
            "FHIR_CAT2_SERVER__AUTH__TOKEN": "0123",  # a secret stays a verbatim string
            "OTHER_VARIABLE": "ignored",
        },
    )
    assert config.server.retry.attempts == 9 and config.sync.state == "/var/lib/fhir-cat2/state.sqlite"
    assert config.run.emit == ["claim"] and config.log.format == "json"
    assert config.server.auth.token is not None and config.server.auth.token.get_secret_value() == "0123"


def test_every_key_of_the_example_configuration_is_commented():
    lines = (ROOT / "config.example.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        key = re.match(r"^\s*([a-z_]+):", line)  # keys in force (commented-out examples are comments already)
        if not key:
            continue
        previous = lines[number - 1].strip() if number else ""
        inline = "#" in line.split(":", 1)[1] if not line.lstrip().startswith("#") else False
        assert previous.startswith("#") or inline or line.rstrip().endswith(":"), f"line {number + 1}: {line}"
