"""Configuration of live servers (``server``, ``sync`` and ``write`` sections) and building clients from it.

Secrets (token, password, client secret, private key) are never read from the configuration file: a file
that holds one is refused. They come from the environment (``FHIR_CAT2_SERVER__AUTH__CLIENT_SECRET``...),
or from an environment variable or a file the configuration names (``client_secret_env``,
``client_secret_file``...). They are held as ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from .errors import ConfigError
from .logs import register_secret
from .ops_config import _Section

if TYPE_CHECKING:  # the HTTP stack is imported where clients are built: replay never needs it
    import requests

    from .fhir import FhirClient

SECRET_KEYS = frozenset({"token", "password", "client_secret", "private_key"})


def _http_url(value: str | None) -> str | None:
    """A base URL setting: http(s) only, without a trailing slash."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value else value


class AuthConfig(_Section):
    type: Literal["none", "bearer", "basic", "client-credentials", "smart-backend"] = "none"
    # bearer
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: str | None = None
    # basic
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: str | None = None
    # client-credentials and smart-backend
    client_id: str | None = None
    token_url: str | None = None
    scope: str | None = None
    refresh_skew_seconds: float = Field(default=60.0, ge=0)
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    client_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    # smart-backend
    private_key: SecretStr | None = None
    private_key_env: str | None = None
    private_key_file: str | None = None
    algorithm: Literal["RS384", "ES384"] = "RS384"
    kid: str | None = None
    jku: str | None = None


class TimeoutConfig(_Section):
    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=60.0, gt=0)


class RetryConfig(_Section):
    attempts: int = Field(default=6, ge=1, le=50)
    backoff_base: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    retry_after_cap: float = Field(default=300.0, ge=0)


class TlsConfig(_Section):
    """TLS is always verified; these add a private CA and a client certificate (mutual TLS)."""

    ca_bundle: str | None = None
    """PEM file of the CA certificates to trust instead of the system's (e.g. a hospital's internal CA)."""
    client_cert: str | None = None
    """PEM client certificate for mutual TLS (may hold the key too)."""
    client_key: str | None = None
    """PEM private key of the client certificate, unencrypted, readable by the service user only."""


class ServerConfig(_Section):
    base_url: str | None = None
    auth: AuthConfig = AuthConfig()
    timeout: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    page_size: int = Field(default=200, ge=1, le=1000)
    pool_size: int = Field(default=10, ge=1, le=100)
    tls: TlsConfig = TlsConfig()
    allow_insecure_http: bool = False
    """Plain http:// to a host other than this machine is refused unless this is true."""

    _http = field_validator("base_url")(_http_url)


class SyncConfig(_Section):
    state: str = "fhir-cat2-state.sqlite"
    overlap_minutes: float = Field(default=5.0, ge=0)
    patient_batch: int = Field(default=50, ge=1, le=500)
    resource_types: list[str] | None = None
    scan_paging: Literal["links", "keyset"] = "links"
    out: str = "fhir-cat2-out"
    keep_runs: int = Field(default=1000, ge=1)
    """Run records kept in the state file (the newest; older ones are deleted)."""


class BulkConfig(_Section):
    """``source.bulk``: how ``sync --source bulk`` asks for and reads a Bulk Data export."""

    level: Literal["system", "patient", "group"] | None = None
    """Export level; omitted: ``group`` when ``source.group`` is set, else ``system``."""
    max_wait_minutes: float = Field(default=360.0, gt=0)
    """Give up polling after this long (exit 7); the export goes on, and the next run resumes it."""
    poll_seconds: float = Field(default=1.0, gt=0)
    """The first wait between status polls when the server sends no Retry-After (it doubles, to 60s)."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Export files downloaded at once."""
    file_hosts: list[str] = Field(default_factory=list)
    """Base URLs other than the server's that export files may come from (e.g. the EHR's storage)."""
    keep_export: bool = False
    """On Ctrl-C or SIGTERM, leave the export running on the server (default: cancel it)."""

    @field_validator("file_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [_http_url(v) or v for v in value]


class PatientsSourceConfig(_Section):
    """``source.mode: patients``: one patient at a time, for EHRs whose searches require ``patient``."""

    concurrency: int = Field(default=4, ge=1, le=64)
    """Patients fetched at the same time (one thread and one HTTP session each)."""
    everything: Literal["auto", "always", "never"] = "auto"
    """``Patient/{id}/$everything`` for a patient's whole record: where the CapabilityStatement lists it
    (auto), always, or never (one search per resource type)."""


class SourceConfig(_Section):
    """``source``: how ``sync`` reads the server (``search``: change scan plus per-patient searches;
    ``bulk``: FHIR Bulk Data ``$export``; ``patients``: one patient at a time, for EHRs whose searches
    require ``patient``)."""

    mode: Literal["search", "bulk", "patients"] = "search"
    group: str | None = None
    """The Group whose members a Group-level export reads, or patients mode reads (flag --group)."""
    patients_file: str | None = None
    """patients mode: a file of patient ids, one a line, instead of a Group (flag --patients-file)."""
    bulk: BulkConfig = BulkConfig()
    patients: PatientsSourceConfig = PatientsSourceConfig()


class WriteConfig(_Section):
    base_url: str | None = None
    auth: AuthConfig | None = None
    strategy: Literal["update", "conditional-create"] = "update"
    bundle_size: int = Field(default=100, ge=1, le=1000)
    bundle_type: Literal["transaction", "batch"] = "transaction"
    billing_claims: Literal["separate", "append"] = "separate"
    withdraw_stale: bool = True

    _http = field_validator("base_url")(_http_url)


def refuse_secrets_in_file(data: Any, source: str, path: str = "") -> None:
    """A configuration file must not hold a secret itself: it names a variable or a file instead."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key in SECRET_KEYS and value not in (None, ""):
                raise ConfigError(
                    f"{source}: {where}: secrets never go in the configuration file;"
                    f" set {key}_env or {key}_file,"
                    f" or the environment variable FHIR_CAT2_{where.upper().replace('.', '__')}"
                )
            refuse_secrets_in_file(value, source, where)


def _secret(
    direct: SecretStr | None, env_name: str | None, file_path: str | None, what: str
) -> SecretStr | None:
    if direct is not None and direct.get_secret_value():
        register_secret(direct.get_secret_value())
        return direct
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"{what}: environment variable {env_name} is not set")
        register_secret(value)
        return SecretStr(value)
    if file_path:
        try:
            text = Path(file_path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {file_path}: {exc.strerror}") from None
        secret = text if "PRIVATE KEY" in text else text.strip()
        register_secret(secret)
        return SecretStr(secret)
    return None


def build_auth(cfg: AuthConfig, section: str) -> requests.auth.AuthBase | None:
    """The auth object for a configuration; refuses missing pieces before any request (exit 2)."""
    from .auth import BasicAuth, BearerTokenAuth, ClientCredentialsAuth, SmartBackendAuth

    if cfg.type == "none":
        return None
    if cfg.type == "bearer":
        token = _secret(cfg.token, cfg.token_env, cfg.token_file, f"{section}.token")
        if token is None:
            raise ConfigError(
                f"{section}: type bearer needs token_env, token_file or FHIR_CAT2_{_env(section)}__TOKEN"
            )
        return BearerTokenAuth(token)
    if cfg.type == "basic":
        password = _secret(cfg.password, cfg.password_env, cfg.password_file, f"{section}.password")
        if not cfg.username or password is None:
            raise ConfigError(
                f"{section}: type basic needs username and password_env, password_file or"
                f" FHIR_CAT2_{_env(section)}__PASSWORD"
            )
        return BasicAuth(cfg.username, password)
    if not cfg.client_id:
        raise ConfigError(f"{section}: type {cfg.type} needs client_id")
    if cfg.token_url is not None and not cfg.token_url.startswith(("https://", "http://")):
        raise ConfigError(f"{section}.token_url must be an http(s) URL")
    if cfg.type == "client-credentials":
        secret = _secret(
            cfg.client_secret, cfg.client_secret_env, cfg.client_secret_file, f"{section}.client_secret"
        )
        if secret is None:
            raise ConfigError(
                f"{section}: type client-credentials needs client_secret_env, client_secret_file or"
                f" FHIR_CAT2_{_env(section)}__CLIENT_SECRET"
            )
        client_credentials = ClientCredentialsAuth(
            cfg.client_id,
            secret,
            token_url=cfg.token_url,
            scope=cfg.scope,
            method=cfg.client_auth_method,
            skew=cfg.refresh_skew_seconds,
        )
        client_credentials.setting = section
        return client_credentials
    key = _secret(cfg.private_key, cfg.private_key_env, cfg.private_key_file, f"{section}.private_key")
    if key is None:
        raise ConfigError(
            f"{section}: type smart-backend needs private_key_file, private_key_env or"
            f" FHIR_CAT2_{_env(section)}__PRIVATE_KEY"
        )
    if not cfg.scope:
        raise ConfigError(
            f"{section}: type smart-backend needs scope (e.g. 'system/*.read system/Claim.write')"
        )
    smart = SmartBackendAuth(
        cfg.client_id,
        key,
        token_url=cfg.token_url,
        scope=cfg.scope,
        algorithm=cfg.algorithm,
        kid=cfg.kid,
        jku=cfg.jku,
        skew=cfg.refresh_skew_seconds,
    )
    smart.setting = section
    return smart


def _env(section: str) -> str:
    return section.upper().replace(".", "__")


def tls_options(tls: TlsConfig) -> tuple[str | bool, str | tuple[str, str] | None]:
    """(verify, cert) for requests; refuses unreadable files before any request."""
    for name in ("ca_bundle", "client_cert", "client_key"):
        value = getattr(tls, name)
        if value is not None and not os.access(Path(value).expanduser(), os.R_OK):
            raise ConfigError(f"server.tls.{name}: cannot read {value}")
    if tls.client_key and not tls.client_cert:
        raise ConfigError("server.tls.client_key needs server.tls.client_cert")
    verify: str | bool = str(Path(tls.ca_bundle).expanduser()) if tls.ca_bundle else True
    cert: str | tuple[str, str] | None = None
    if tls.client_cert:
        cert_path = str(Path(tls.client_cert).expanduser())
        cert = (cert_path, str(Path(tls.client_key).expanduser())) if tls.client_key else cert_path
    return verify, cert


def build_client(
    base_url: str,
    server: ServerConfig,
    auth: requests.auth.AuthBase | None,
    setting: str = "server.base_url",
) -> FhirClient:
    """A client for ``base_url``; ``setting`` names where that URL came from, for messages."""
    from .fhir import FhirClient, RetryPolicy, Timeouts

    verify, cert = tls_options(server.tls)
    return FhirClient(
        base_url,
        auth=auth,
        verify=verify,
        cert=cert,
        allow_insecure_http=server.allow_insecure_http,
        timeouts=Timeouts(server.timeout.connect, server.timeout.read),
        retry=RetryPolicy(
            server.retry.attempts,
            server.retry.backoff_base,
            server.retry.backoff_max,
            server.retry.retry_after_cap,
        ),
        pool_size=server.pool_size,
        setting=setting,
    )
