"""Authentication as ``requests.auth.AuthBase`` classes: none, static bearer, HTTP basic, OAuth2 client
credentials, and SMART Backend Services (a client assertion JWT signed RS384 or ES384).

Token-based auths fetch their token lazily (on the first request), measure its lifetime from *before* the
token request, refresh it ``skew`` seconds before it expires, and drop it when the server answers 401 so
that ``FhirClient`` can fetch a new one and try once more. Token requests go through the bound
``FhirClient`` (the one module that makes HTTP calls), with its timeouts and retries.

Secrets are ``SecretStr`` and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import requests
from pydantic import SecretStr

from .errors import ConfigError, FatalServerError, ResourceGoneError
from .logs import register_secret

if TYPE_CHECKING:
    from .fhir import FhirClient

log = logging.getLogger("fhir_cat2.auth")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SMART_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300  # SMART Backend Services: exp no more than five minutes in the future


class BearerTokenAuth(requests.auth.AuthBase):
    """A static bearer token (from the environment or a file). A 401 cannot be cured by refreshing it."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return r

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=**********)"


class BasicAuth(requests.auth.AuthBase):
    def __init__(self, username: str, password: SecretStr) -> None:
        self.username = username
        self._password = password

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = requests.auth._basic_auth_str(
            self.username, self._password.get_secret_value()
        )
        return r

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=**********)"


class TokenAuth(requests.auth.AuthBase):
    """Base of the OAuth2 auths: caches an access token and refreshes it before it expires."""

    def __init__(self, token_url: str | None, scope: str | None, *, skew: float = 60.0) -> None:
        self.token_url = token_url
        self.setting = "server.auth"
        """The configuration section of this auth: messages name ``<setting>.token_url``."""
        self.scope = scope
        self.skew = skew
        self._client: FhirClient | None = None
        self._token: SecretStr | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.tokens_fetched = 0
        self.granted_scope: str | None = None
        """The scope of the current token, as the token endpoint granted it."""

    def bind(self, client: FhirClient) -> None:
        """Called by FhirClient: token requests go through it (timeouts, retries, error mapping)."""
        self._client = client

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.access_token().get_secret_value()}"
        return r

    def access_token(self) -> SecretStr:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - self.skew:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        if self._client is None:
            raise RuntimeError("TokenAuth used before FhirClient bound it")
        token_url = self.token_url or discover_token_url(self._client, f"{self.setting}.token_url")
        self.token_url = token_url
        requested_at = time.monotonic()  # lifetime counts from before the request, never after
        body = self._client.token_request(
            token_url, self._form(token_url), self._basic(), f"{self.setting}.token_url"
        )
        expires_in = body.get("expires_in")
        try:
            lifetime = float(expires_in) if expires_in is not None else 300.0
        except (TypeError, ValueError):
            lifetime = 300.0
        self._token = SecretStr(str(body["access_token"]))
        register_secret(str(body["access_token"]))
        granted = body.get("scope")
        # RFC 6749 5.1: a token response leaves out the scope only when it is the one requested
        self.granted_scope = granted if isinstance(granted, str) else self.scope
        # A short-lived token must not be refreshed on every request: skew is at most half its life.
        self._expires_at = requested_at + lifetime
        self.skew = min(self.skew, lifetime / 2)
        self.tokens_fetched += 1
        log.info(
            "obtained an access token (expires in %ss, scope %s)", expires_in, body.get("scope") or self.scope
        )

    def _form(self, token_url: str) -> dict[str, str]:
        raise NotImplementedError

    def _basic(self) -> tuple[str, str] | None:
        return None


class ClientCredentialsAuth(TokenAuth):
    """OAuth2 client_credentials with a client secret (client_secret_basic or client_secret_post)."""

    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr,
        *,
        token_url: str | None,
        scope: str | None = None,
        method: str = "client_secret_basic",
        skew: float = 60.0,
    ) -> None:
        super().__init__(token_url, scope, skew=skew)
        self.client_id = client_id
        self._secret = client_secret
        self.method = method

    def _form(self, token_url: str) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.method == "client_secret_post":
            form["client_id"] = self.client_id
            form["client_secret"] = self._secret.get_secret_value()
        return form

    def _basic(self) -> tuple[str, str] | None:
        if self.method == "client_secret_basic":
            return (self.client_id, self._secret.get_secret_value())
        return None

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self.client_id!r}, client_secret=**********)"


class SmartBackendAuth(TokenAuth):
    """SMART Backend Services: client_credentials with a signed JWT client assertion (private_key_jwt)."""

    def __init__(
        self,
        client_id: str,
        private_key: SecretStr,
        *,
        token_url: str | None,
        scope: str,
        algorithm: str = "RS384",
        kid: str | None = None,
        jku: str | None = None,
        assertion_lifetime: int = MAX_ASSERTION_LIFETIME,
        skew: float = 60.0,
    ) -> None:
        super().__init__(token_url, scope, skew=skew)
        if algorithm not in SMART_ALGORITHMS:
            raise ConfigError(
                f"SMART Backend Services signs with {' or '.join(SMART_ALGORITHMS)}, not {algorithm}"
            )
        if not 0 < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ConfigError(f"assertion lifetime must be 1..{MAX_ASSERTION_LIFETIME} seconds")
        self.client_id = client_id
        self.algorithm = algorithm
        self.kid = kid
        self.jku = jku
        self.assertion_lifetime = assertion_lifetime
        self._key = _load_private_key(private_key, algorithm)

    def client_assertion(self, token_url: str, now: float | None = None) -> str:
        import jwt

        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": issued + self.assertion_lifetime,
            "iat": issued,
            "jti": uuid.uuid4().hex,
        }
        headers: dict[str, Any] = {"typ": "JWT"}
        if self.kid:
            headers["kid"] = self.kid
        if self.jku:
            headers["jku"] = self.jku
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def _form(self, token_url: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "scope": self.scope or "",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.client_assertion(token_url),
        }

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, algorithm={self.algorithm!r}, key=**********)"


def scope_allows(scope: str | None, resource_type: str, permissions: str) -> bool:
    """Whether SMART scopes (v1 ``system/Claim.write``, v2 ``system/Claim.cu``, ``*`` for any type) grant
    every one of ``permissions`` (letters of c r u d s) on ``resource_type``."""
    v1 = {"read": "rs", "write": "cud", "*": "cruds"}
    for item in (scope or "").split():
        context, _, rest = item.partition("/")
        target, _, granted = rest.partition(".")
        if context not in ("system", "user") or not granted:
            continue
        granted = granted.split("?", 1)[0]
        letters = v1.get(granted, granted)
        if target in ("*", resource_type) and all(p in letters for p in permissions):
            return True
    return False


def _load_private_key(pem: SecretStr, algorithm: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.get_secret_value().encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the SMART private key is not a readable unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    if algorithm == "RS384" and not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("algorithm RS384 needs an RSA private key")
    if algorithm == "ES384" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    ):
        raise ConfigError("algorithm ES384 needs an EC P-384 private key")
    return key


def discover_token_url(client: FhirClient, setting: str = "server.auth.token_url") -> str:
    """The token endpoint from ``[base]/.well-known/smart-configuration`` (SMART App Launch 2.0). A server
    that does not publish one needs the setting: a configuration error (exit 2), not refused credentials."""
    url = f"{client.base_url}/.well-known/smart-configuration"
    try:
        body = client.get_json_elsewhere(url, "GET .well-known/smart-configuration")
    except (ResourceGoneError, FatalServerError) as exc:
        raise ConfigError(f"cannot discover the token endpoint ({exc}); set {setting}") from None
    token_url = body.get("token_endpoint") if isinstance(body, dict) else None
    if not isinstance(token_url, str) or not token_url.startswith(("https://", "http://")):
        raise ConfigError(f"the server's smart-configuration names no token_endpoint; set {setting}")
    return token_url
