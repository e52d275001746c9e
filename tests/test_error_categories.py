"""Network failures land in the exit code of their cause, with words that name the setting to fix: https:// to
a port that speaks plain HTTP and an unreachable host are "unavailable" (4), a token URL that is no OAuth
token endpoint is configuration (2), an unverifiable certificate stays configuration (2)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from fhir_cat2.cli import main

from .test_sync_offline import capability, sleeps  # noqa: F401

SECRET = "cs-0b8e2f4a6c1d3e5f"
SEARCH = re.compile(r"https://ehr\.test/fhir/\w+\?")


class _PlainHttp(BaseHTTPRequestHandler):
    """Answers every request in plain HTTP: 404 with an HTML page."""

    def do_GET(self) -> None:
        self._page()

    def do_POST(self) -> None:
        self._page()

    def _page(self) -> None:
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHttp)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the with block ends: nobody listens


def sync(tmp_path, base: str, config: str | None = None) -> int:
    argv = ["sync", "--base-url", base, "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    if config is not None:
        path = tmp_path / "c.yaml"
        path.write_text(config)
        argv += ["--config", str(path)]
    return main(argv)


def test_https_to_a_plain_http_port_is_unavailable_not_refused(plain_http_port, tmp_path, capsys, sleeps):
    code = sync(tmp_path, f"https://127.0.0.1:{plain_http_port}/fhir")
    err = capsys.readouterr().err
    assert code == 4, err
    assert "server unavailable" in err and "authentication refused" not in err
    assert (
        f"TLS handshake with 127.0.0.1:{plain_http_port} failed: the server does not speak TLS there"
        " (plain HTTP? then the URL is http://); check server.base_url"
    ) in err
    assert not sleeps  # nothing to retry: the URL is wrong


def test_config_check_words_the_tls_mismatch_too(plain_http_port, tmp_path, capsys, sleeps):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"server:\n  base_url: https://127.0.0.1:{plain_http_port}/fhir\n"
        f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/o\n"
    )
    assert main(["config", "check", str(path)]) == 4
    out = capsys.readouterr().out
    assert (
        "does not speak TLS there (plain HTTP? then the URL is http://)" in out and "server.base_url" in out
    )


def test_a_closed_port_names_host_port_and_the_setting(closed_port, tmp_path, capsys, sleeps):
    code = sync(tmp_path, f"http://127.0.0.1:{closed_port}/fhir")
    err = capsys.readouterr().err
    assert code == 4, err
    assert f"cannot connect to 127.0.0.1:{closed_port} (connection refused); check server.base_url" in err


def test_an_unknown_host_name_names_host_port_and_the_write_setting(tmp_path, capsys, monkeypatch, sleeps):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "writer.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    path = tmp_path / "c.yaml"
    path.write_text(
        "server:\n  base_url: https://ehr.test/fhir\nwrite:\n  base_url: https://writer.invalid/fhir\n"
        f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/o\n"
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("https://writer.invalid")
        rsps.get("https://ehr.test/fhir/metadata", json={**capability(), "fhirVersion": "4.0.1"})
        rsps.get(SEARCH, json={"resourceType": "Bundle", "type": "searchset"})
        code = main(["config", "check", str(path)])
    out = capsys.readouterr().out
    assert code == 4, out
    assert "cannot connect to writer.invalid:443 (host name not found); check write.base_url" in out


def client_credentials(tmp_path, token_url: str, section: str = "server") -> str:
    auth = (
        "  auth:\n    type: client-credentials\n    client_id: fc2\n"
        f"    token_url: {token_url}\n    client_secret_env: TEST_SECRET\n"
    )
    text = "server:\n  base_url: https://ehr.test/fhir\n"
    if section == "server":
        text += auth
    else:
        text += f"write:\n  base_url: https://writer.test/fhir\n{auth}"
    return text + f"sync:\n  state: {tmp_path}/s.sqlite\n  out: {tmp_path}/o\n"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 404, "body": "<html>Not Found</html>", "content_type": "text/html"},
        {"status": 404, "json": {"detail": "Not Found"}},
        {"status": 405, "body": ""},
        {"status": 200, "body": "<html>Sign in</html>", "content_type": "text/html"},
        {"status": 200, "json": {"resourceType": "CapabilityStatement"}},
    ],
    ids=["404-html", "404-json", "405", "200-html", "200-json-without-token"],
)
def test_a_token_url_that_is_no_token_endpoint_is_configuration(
    answer, tmp_path, capsys, monkeypatch, sleeps
):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    with responses.RequestsMock() as rsps:
        rsps.post("https://auth.ehr.test/token", **answer)
        code = sync(
            tmp_path, "https://ehr.test/fhir", client_credentials(tmp_path, "https://auth.ehr.test/token")
        )
        assert len(rsps.calls) == 1  # not retried: no retry will fix a wrong URL
    err = capsys.readouterr().err
    assert code == 2, err
    assert "configuration error" in err and "authentication refused" not in err
    assert "server.auth.token_url: https://auth.ehr.test:443/token is not an OAuth token endpoint" in err
    assert SECRET not in err


def test_a_refused_client_is_still_authentication(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    with responses.RequestsMock() as rsps:
        rsps.post(
            "https://auth.ehr.test/token",
            status=400,
            json={"error": "invalid_client", "error_description": "unknown client"},
        )
        code = sync(
            tmp_path, "https://ehr.test/fhir", client_credentials(tmp_path, "https://auth.ehr.test/token")
        )
    assert code == 3 and "unknown client" in capsys.readouterr().err


def test_config_check_names_the_write_token_url(tmp_path, capsys, monkeypatch, sleeps):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    path = tmp_path / "c.yaml"
    path.write_text(client_credentials(tmp_path, "https://auth.writer.test/token", "write"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get("https://ehr.test/fhir/metadata", json={**capability(), "fhirVersion": "4.0.1"})
        rsps.get(SEARCH, json={"resourceType": "Bundle", "type": "searchset"})
        rsps.post("https://auth.writer.test/token", status=404, body="<html>Not Found</html>")
        code = main(["config", "check", str(path)])
    out = capsys.readouterr().out
    assert code == 2, out
    assert "write.auth.token_url: https://auth.writer.test:443/token is not an OAuth token endpoint" in out


def test_a_token_endpoint_that_cannot_be_reached_names_the_token_url(
    closed_port, tmp_path, capsys, monkeypatch, sleeps
):
    monkeypatch.setenv("TEST_SECRET", SECRET)
    token_url = f"http://127.0.0.1:{closed_port}/token"
    code = sync(tmp_path, "https://ehr.test/fhir", client_credentials(tmp_path, token_url))
    err = capsys.readouterr().err
    assert code == 4, err
    assert (
        f"cannot connect to 127.0.0.1:{closed_port} (connection refused); check server.auth.token_url" in err
    )


def test_a_smart_configuration_page_that_is_not_json_is_configuration(tmp_path, capsys, monkeypatch, sleeps):
    key = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    config = (
        "server:\n  auth:\n    type: smart-backend\n    client_id: fc2\n    scope: system/*.read\n"
        f"    algorithm: ES384\n    private_key_file: {key}\n"
    )
    with responses.RequestsMock() as rsps:
        rsps.get(
            "https://ehr.test/fhir/.well-known/smart-configuration",
            body="<html>Welcome</html>",
            content_type="text/html",
        )
        code = sync(tmp_path, "https://ehr.test/fhir", config)
        assert len(rsps.calls) == 1
    err = capsys.readouterr().err
    assert code == 2, err
    assert "names no token_endpoint; set server.auth.token_url" in err
