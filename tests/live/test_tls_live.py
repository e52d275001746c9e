"""TLS against the real server, behind the test proxy speaking HTTPS with a private CA: verification is on by
default (an unknown CA is exit 2 with what to set), server.tls.ca_bundle trusts the private CA, and a server
that requires a client certificate refuses a client without one (exit 3) and accepts
server.tls.client_cert."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fhir_cat2.cli import main
from tests.support.fault_proxy import FaultProxy

from .conftest import EXTERNAL, LiveServer
from .test_sync_live import RUN, fresh  # noqa: F401

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(bool(EXTERNAL), reason="needs the suite's own sekmet behind the proxy"),
]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, usage=None, san=None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("fhir-cat2 test CA", ca_key, _name("fhir-cat2 test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "127.0.0.1",
        server_key,
        ca.subject,
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(
        "fhir-cat2", client_key, ca.subject, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    files = {
        "ca": (ca.public_bytes(serialization.Encoding.PEM)),
        "server_cert": server.public_bytes(serialization.Encoding.PEM),
        "server_key": _pem_key(server_key),
        "client_cert": client.public_bytes(serialization.Encoding.PEM),
        "client_key": _pem_key(client_key),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(data)
        paths[name].chmod(0o600)
    return paths


def _context(pki: dict[str, Path], require_client: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki["ca"])
    return context


def _sync(base_url: str, tmp_path: Path, config: str | None = None) -> int:
    args = [
        "sync",
        "--base-url",
        base_url,
        "--state",
        str(tmp_path / "s.sqlite"),
        "--out",
        str(tmp_path / "out"),
        *RUN,
    ]
    if config:
        path = tmp_path / "tls.yaml"
        path.write_text(config)
        args += ["--config", str(path)]
    return main(args)


def test_verification_is_on_and_a_private_ca_is_trusted_when_configured(
    fhir_server: LiveServer, fresh, pki, tmp_path, capsys
):
    with FaultProxy(fhir_server.base_url, ssl_context=_context(pki, require_client=False)) as proxy:
        assert proxy.base_url.startswith("https://127.0.0.1:")
        assert _sync(proxy.base_url, tmp_path) == 2
        err = capsys.readouterr().err
        assert "could not be verified" in err and "server.tls.ca_bundle" in err
        assert _sync(proxy.base_url, tmp_path, f"server:\n  tls:\n    ca_bundle: {pki['ca']}\n") == 0


def test_mutual_tls_needs_the_client_certificate(fhir_server: LiveServer, fresh, pki, tmp_path, capsys):
    trusted = f"server:\n  tls:\n    ca_bundle: {pki['ca']}\n"
    with FaultProxy(fhir_server.base_url, ssl_context=_context(pki, require_client=True)) as proxy:
        assert _sync(proxy.base_url, tmp_path, trusted) == 3
        assert "client certificate" in capsys.readouterr().err
        with_client = (
            trusted + f"    client_cert: {pki['client_cert']}\n    client_key: {pki['client_key']}\n"
        )
        assert _sync(proxy.base_url, tmp_path, with_client) == 0
