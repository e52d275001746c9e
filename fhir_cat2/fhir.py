"""The one module that makes HTTP calls: a small FHIR R4 REST client.

Everything that talks to a server (sync, record, write-back, token endpoints) goes through
``FhirClient.request``, which

* uses one ``requests.Session`` with an explicit pool size, and always sets connect and read timeouts;
* sends ``Accept: application/fhir+json`` (and ``Prefer: handling=strict`` on searches, so a server that
  does not know a parameter says so instead of silently returning everything);
* maps the status to the error family of ``fhir_cat2.errors`` and keeps the server's OperationOutcome:
  401/403 AuthError, 404/410 ResourceGoneError, 412 PreconditionFailedError, 429/5xx RetryableServerError,
  any other 4xx FatalServerError;
* retries 429, 500, 502, 503, 504, connection errors and read timeouts with tenacity: exponential backoff
  with full jitter, ``Retry-After`` (seconds or an HTTP date) honoured up to a cap; after the budget it
  raises ServerUnavailableError;
* after a 401, asks a refreshable auth for a new token once and resends; a second 401 is an AuthError.

Searches are lazy: ``search_pages`` follows ``Bundle.link[next]`` exactly as the server gave it and
refuses (before any credential is sent) a next link whose origin differs from the base URL.

Logs carry the method, the path without its query (a resource type or reference), the status and the
time taken: never a query string, a body or a token.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import tenacity

from .errors import (
    AuthError,
    ConfigError,
    FatalServerError,
    FhirCat2Error,
    PreconditionFailedError,
    ResourceGoneError,
    RetryableServerError,
    ServerError,
    ServerUnavailableError,
    TlsVerificationError,
    outcome_summary,
)

log = logging.getLogger("fhir_cat2.fhir")
# urllib3 logs every request line, query string included, at DEBUG: keep it quiet under DEBUG too.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "fhir-cat2"
MAX_REDIRECTS = 5
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying a request that failed in a transient way."""

    attempts: int = 6
    """Tries in all, the first included."""
    backoff_base: float = 1.0
    """Seconds; the n-th wait is drawn from [0, base * 2**(n-1)] (full jitter), capped by backoff_max."""
    backoff_max: float = 60.0
    retry_after_cap: float = 300.0
    """A server's Retry-After is honoured up to this many seconds."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0


class RefreshableAuth(Protocol):
    """What the client needs of an auth that holds a token: drop it so the next request fetches a new one."""

    def invalidate(self) -> None: ...


@dataclass
class FhirResponse:
    status: int
    headers: Mapping[str, str]
    body: Any
    """Parsed JSON (dict) or None for an empty body."""

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")


@dataclass
class SearchPage:
    """One page of a search: the Bundle as the server sent it, and its position in the walk."""

    number: int
    bundle: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    """Entries with search.mode match or include (outcome entries are left out)."""


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with default ports filled in: what a token may be sent to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """This machine: localhost, 127.0.0.0/8 or ::1."""
    import ipaddress

    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_insecure(url: str, what: str, allow_insecure_http: bool) -> None:
    """Plain http:// leaves this machine only when the configuration says so."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "http" and not allow_insecure_http and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"{what} uses plain http:// to {parts.hostname}: patient data and credentials would cross the"
            " network unencrypted; use https://, or set server.allow_insecure_http: true"
        )


# OpenSSL reasons for a peer that answered the ClientHello with something that is not TLS (plain HTTP)
NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
    }
)


def tls_error(label: str, url: str, exc: Exception, setting: str = "server.base_url") -> FhirCat2Error:
    """A TLS failure is not transient: an unverifiable certificate is a trust problem (exit 2), a port that
    does not speak TLS is unavailable (exit 4: nothing to retry, the URL is wrong), and any other refused
    handshake usually a missing or rejected client certificate (exit 3)."""
    reason = _ssl_reason(exc)
    host, port = _host_port(url)
    if reason == "CERTIFICATE_VERIFY_FAILED" or "certificate verify failed" in str(exc):
        return TlsVerificationError(
            f"{label}: the TLS certificate of {host} could not be verified; if the server uses a private CA,"
            " set server.tls.ca_bundle to its PEM file"
        )
    if reason in NOT_TLS_REASONS:
        return ServerUnavailableError(
            f"{label}: TLS handshake with {host}:{port} failed: the server does not speak TLS there"
            f" (plain HTTP? then the URL is http://); check {setting}"
        )
    return AuthError(
        f"{label}: the TLS handshake with {host} failed; if the server requires a client certificate,"
        " set server.tls.client_cert and server.tls.client_key"
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests and urllib3 nest the socket error in args and causes."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [a for a in current.args if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]


def _ssl_reason(exc: BaseException) -> str | None:
    import ssl

    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return str(cause.reason)
    return None


def _host_port(url: str) -> tuple[str, int]:
    _, host, port = origin(url)
    return host, port


def path_only(url: str) -> str:
    """The URL's path, for logs: no host, no query string (queries can name patients)."""
    return urlsplit(url).path or "/"


class WaitRetryAfter(tenacity.wait.wait_base):
    """The server's ``Retry-After`` (already in seconds on the error), capped; else the ``fallback`` wait."""

    def __init__(self, cap: float, fallback: tenacity.wait.wait_base) -> None:
        self.cap = cap
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.cap))
        return self.fallback(retry_state)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _operation_outcome(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None


def error_for_status(status: int, what: str, body: Any, retry_after: float | None = None) -> ServerError:
    """The exception for an error status, carrying the server's OperationOutcome."""
    outcome = _operation_outcome(body)
    message = f"{what}: HTTP {status}"
    if isinstance(body, dict) and outcome is None and ("error" in body or "error_description" in body):
        # An OAuth2 token endpoint error: {"error": ..., "error_description": ...}. It speaks of our client
        # (invalid_client, unknown kid), never of patients, and the operator needs it: it is shown.
        text = str(body.get("error_description") or body.get("error"))
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "security", "diagnostics": text}],
        }
        message = f"{message}: {text}"
    kwargs: dict[str, Any] = {"status": status, "outcome": outcome}
    if status in (401, 403):
        return AuthError(message, **kwargs)
    if status in (404, 410):
        return ResourceGoneError(message, **kwargs)
    if status == 412:
        return PreconditionFailedError(message, **kwargs)
    if status in RETRY_STATUSES:
        return RetryableServerError(message, retry_after=retry_after, **kwargs)
    if 400 <= status < 500:
        return FatalServerError(message, **kwargs)
    if status >= 500:
        return RetryableServerError(message, retry_after=retry_after, **kwargs)
    return FatalServerError(f"{what}: unexpected HTTP {status}", **kwargs)


class FhirClient:
    """A FHIR R4 REST client for one server (one base URL)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = 10,
        session: requests.Session | None = None,
        strict_search: bool = True,
        verify: str | bool = True,
        cert: str | tuple[str, str] | None = None,
        allow_insecure_http: bool = False,
        setting: str = "server.base_url",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must be http(s): {base_url!r}")
        self.allow_insecure_http = allow_insecure_http
        self.setting = setting
        """The setting the base URL came from: what a message tells the operator to check."""
        refuse_insecure(base_url, "the FHIR base URL", allow_insecure_http)
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        """Always sent with each request, so REQUESTS_CA_BUNDLE cannot silently replace a configured CA."""
        self.cert = cert
        self.origin = origin(self.base_url)
        self.auth = auth
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.strict_search = strict_search
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": FHIR_JSON, "User-Agent": USER_AGENT})
        self.requests_sent = 0
        self.retries = 0
        self._counts_lock = threading.Lock()
        """Requests are counted from several threads (patients mode, bulk downloads): ``+=`` is not atomic."""
        self.first_date: str | None = None
        """The Date header of the first response: the server's clock at the start of the run."""
        self._capabilities: dict[str, Any] | None = None
        self._owner_thread = threading.get_ident()
        self._thread_local = threading.local()
        self._thread_sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        bind = getattr(auth, "bind", None)
        if callable(bind):
            bind(self)

    def close(self) -> None:
        self.session.close()
        with self._sessions_lock:
            for session in self._thread_sessions:
                session.close()
            self._thread_sessions.clear()

    # ------------------------------------------------------------------------------------------ core

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        what: str | None = None,
        require_json: bool = True,
    ) -> FhirResponse:
        """Send one request with retries; returns the parsed response or raises a ServerError.

        ``require_json=False``: a 2xx body that is not JSON is returned (as body None) instead of retried, for
        callers that word it themselves (a token URL that serves a web page is a configuration mistake)."""
        url = self.url(path)
        refuse_insecure(url, what or "a request", self.allow_insecure_http)
        if authenticate and origin(url) != self.origin:
            raise FatalServerError(
                f"refusing to send credentials to {_origin_text(url)}:"
                f" not the server's origin {_origin_text(self.base_url)}"
            )
        label = what or f"{method} {path_only(url)}"
        return self._with_retries(
            label,
            self._send_once,
            method,
            url,
            params,
            json_body,
            form,
            headers,
            authenticate,
            label,
            require_json,
        )

    def _with_retries(self, label: str, send: Callable[..., _T], *args: Any) -> _T:
        """``send(*args)`` under the retry policy: RetryableServerError retried with backoff (Retry-After
        honoured, capped); after the budget a ServerUnavailableError."""
        policy = self.retry

        def before_sleep(state: tenacity.RetryCallState) -> None:
            with self._counts_lock:
                self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s failed (%s); retry %d in %.1fs", label, _short(exc), state.attempt_number, delay)

        retrying = tenacity.Retrying(
            # ServerUnavailableError (a token request that already used its own budget) is not retried again
            retry=tenacity.retry_if_exception_type(RetryableServerError)
            & tenacity.retry_if_not_exception_type(ServerUnavailableError),
            stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
            wait=WaitRetryAfter(
                policy.retry_after_cap,
                tenacity.wait_random_exponential(multiplier=policy.backoff_base, max=policy.backoff_max),
            ),
            sleep=_sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(send, *args)
        except ServerUnavailableError:
            raise
        except RetryableServerError as exc:
            raise ServerUnavailableError(
                f"{label}: still failing after {policy.attempts} attempts: {_short(exc)}",
                status=exc.status,
                outcome=exc.outcome,
            ) from exc

    def _send_once(
        self,
        method: str,
        url: str,
        params: Any,
        json_body: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        authenticate: bool,
        label: str,
        require_json: bool = True,
    ) -> FhirResponse:
        response = self._transmit(method, url, params, json_body, form, headers, authenticate, label)
        if response.status_code == 401 and authenticate and hasattr(self.auth, "invalidate"):
            log.info("%s: 401; fetching a new token and trying once more", label)
            self.auth.invalidate()  # type: ignore[union-attr]
            response = self._transmit(method, url, params, json_body, form, headers, authenticate, label)
        return self._handle(response, label, require_json)

    def _transmit(
        self,
        method: str,
        url: str,
        params: Any,
        json_body: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        authenticate: bool,
        label: str,
    ) -> requests.Response:
        send_headers = dict(headers or {})
        data: Any = None
        if json_body is not None:
            data = orjson.dumps(json_body)
            send_headers.setdefault("Content-Type", f"{FHIR_JSON}; charset=utf-8")
        elif form is not None:
            data = dict(form)
        started = time.monotonic()
        with self._counts_lock:
            self.requests_sent += 1
        try:
            # one Session per thread: patients mode fetches several patients at once
            response = self.thread_session().request(
                method,
                url,
                params=params,
                data=data,
                headers=send_headers,
                auth=self.auth if authenticate else None,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
                verify=self.verify,
                cert=self.cert,
            )
        except requests.exceptions.SSLError as exc:
            raise tls_error(label, url, exc, self._setting_for(url)) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            # ConnectTimeout is both; ReadTimeout mid-body and a dropped connection are both transient
            text = _transport_text(exc, url)
            if text.startswith("cannot connect"):
                text += f"; check {self._setting_for(url)}"
            raise RetryableServerError(f"{label}: {text}") from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise RetryableServerError(
                f"{label}: connection broken mid-response ({type(exc).__name__})"
            ) from None
        if self.first_date is None and response.headers.get("Date"):
            self.first_date = response.headers["Date"]
        log.debug("%s -> %d in %.2fs", label, response.status_code, time.monotonic() - started)
        return response

    def _setting_for(self, url: str) -> str:
        """The setting that names where ``url`` points: the base URL's, or the token endpoint's."""
        token_url = getattr(self.auth, "token_url", None)
        if origin(url) != self.origin and isinstance(token_url, str) and origin(url) == origin(token_url):
            return f"{getattr(self.auth, 'setting', 'server.auth')}.token_url"
        return self.setting

    def _handle(self, response: requests.Response, label: str, require_json: bool = True) -> FhirResponse:
        body: Any = None
        if response.content:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = None
        status = response.status_code
        if status >= 400:
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After")) if status in RETRY_STATUSES else None
            )
            raise error_for_status(status, label, body, retry_after)
        if 300 <= status < 400 and status != 304:
            raise FatalServerError(
                f"{label}: unexpected redirect (HTTP {status}); configure the final base URL"
            )
        if response.content and body is None and require_json:
            raise RetryableServerError(f"{label}: HTTP {status} with a body that is not JSON")
        return FhirResponse(status, response.headers, body)

    # ------------------------------------------------------------------------------------------ FHIR

    def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (fetched once)."""
        if self._capabilities is None:
            body = self.request("GET", "metadata", what="GET metadata").body
            if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
                raise FatalServerError(f"{self.base_url}/metadata did not return a CapabilityStatement")
            self._capabilities = body
        return self._capabilities

    def server_time(
        self, probe_type: str | None = "Patient", probe_params: list[tuple[str, str]] | None = None
    ) -> datetime | None:
        """The server's clock now: ``Bundle.meta.lastUpdated`` of a count-only search (milliseconds on most
        servers), else the Date header of the first response (whole seconds, and some servers cache it).
        ``probe_params`` narrow the search (``_id``: servers that refuse searches without a patient);
        ``probe_type`` None: the Date header only."""
        response: FhirResponse | None = None
        try:
            if probe_type is not None:
                response = self.request(
                    "GET",
                    probe_type,
                    params=[*(probe_params or []), ("_summary", "count")],
                    what=f"search {probe_type} (clock)",
                    headers={"Prefer": "handling=strict"} if self.strict_search else None,
                )
        except (FatalServerError, ResourceGoneError):
            response = None  # no _summary=count here: fall back to the Date header
        body = response.body if response is not None else None
        stamp = ((body.get("meta") or {}).get("lastUpdated")) if isinstance(body, dict) else None
        if isinstance(stamp, str):
            try:
                when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                return when if when.tzinfo else when.replace(tzinfo=UTC)
            except ValueError:
                pass
        date_header = (response.headers.get("Date") if response is not None else None) or self.first_date
        if not date_header:
            return None
        try:
            when = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def read(self, resource_type: str, resource_id: str) -> FhirResponse:
        return self.request("GET", f"{resource_type}/{resource_id}")

    def search_pages(
        self,
        resource_type: str,
        params: list[tuple[str, str]],
        *,
        max_pages: int | None = None,
        label: str | None = None,
    ) -> Iterator[SearchPage]:
        """Lazily walk a search, page by page, following next links as given. ``resource_type`` is the path
        searched (``Patient/{id}/$everything`` too); ``label`` names it in logs instead (no ids)."""
        headers = {"Prefer": "handling=strict"} if self.strict_search else None
        label = label or f"search {resource_type}"
        response = self.request("GET", resource_type, params=params, headers=headers, what=f"{label} page 1")
        yield from self.pages_from(response, label, max_pages=max_pages)

    def pages_from(
        self, response: FhirResponse, label: str, *, max_pages: int | None = None
    ) -> Iterator[SearchPage]:
        """The pages of a Bundle already fetched and those its next links lead to (on this server only)."""
        headers = {"Prefer": "handling=strict"} if self.strict_search else None
        number = 1
        while True:
            bundle = response.body
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise FatalServerError(f"{label} page {number}: the server did not return a Bundle")
            entries = []
            for entry in bundle.get("entry") or []:
                if not isinstance(entry, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode")
                resource = entry.get("resource")
                if mode == "outcome" or (
                    isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"
                ):
                    _log_outcome(label, resource)
                    continue
                entries.append(entry)
            yield SearchPage(number, bundle, entries)
            next_url = next_link(bundle)
            if next_url is None or (max_pages is not None and number >= max_pages):
                return
            next_url = urljoin(self.base_url + "/", next_url)
            if origin(next_url) != self.origin:
                raise FatalServerError(
                    f"{label}: the server's next link points to {_origin_text(next_url)}, not to"
                    f" {_origin_text(self.base_url)}; refusing to follow it"
                    " (a token must not leave the server)"
                )
            number += 1
            response = self.request("GET", next_url, headers=headers, what=f"{label} page {number}")

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every resource of a search (matches and includes), across pages, lazily."""
        for page in self.search_pages(resource_type, params):
            for entry in page.entries:
                resource = entry.get("resource")
                if isinstance(resource, dict):
                    yield resource

    def post_bundle(self, bundle: dict[str, Any]) -> FhirResponse:
        """POST a transaction or batch Bundle to the base."""
        return self.request(
            "POST",
            self.base_url,
            json_body=bundle,
            headers={"Prefer": "return=minimal"},
            what=f"{bundle.get('type', 'bundle')} of {len(bundle.get('entry') or [])}",
        )

    def token_request(
        self,
        token_url: str,
        form: Mapping[str, str],
        basic: tuple[str, str] | None = None,
        setting: str = "server.auth.token_url",
    ) -> dict[str, Any]:
        """POST an OAuth2 token request (form-encoded). The token endpoint may be on another host.

        An OAuth error (invalid_client...) or 401/403 is an AuthError; a URL that is no token endpoint at
        all (404, 405, a redirect, a web page, JSON without an access_token) is a ConfigError naming
        ``setting``."""
        label = "token request"
        headers = {"Accept": "application/json"}
        if basic is not None:
            headers["Authorization"] = requests.auth._basic_auth_str(*basic)
        not_oauth = f"{setting}: {_url_text(token_url)} is not an OAuth token endpoint"
        try:
            response = self._request_elsewhere(
                "POST", token_url, form=form, headers=headers, what=label, require_json=False
            )
        except (FatalServerError, ResourceGoneError, PreconditionFailedError) as exc:
            if exc.status in (404, 405, 410) or exc.outcome is None:
                answer = f"HTTP {exc.status}" if exc.status else "a redirect"
                raise ConfigError(f"{not_oauth} (it answered {answer}); check {setting}") from None
            # invalid_client, invalid_scope...: no retry will fix a refused client
            raise AuthError(exc.message, status=exc.status, outcome=exc.outcome) from None
        body = response.body
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            answer = f"HTTP {response.status} with {kind}"
            raise ConfigError(f"{not_oauth} (it answered {answer}); check {setting}")
        if not isinstance(body.get("access_token"), str):
            raise ConfigError(f"{not_oauth} (its answer holds no access_token); check {setting}")
        return body

    def get_json_elsewhere(self, url: str, what: str) -> Any:
        """GET a JSON document without credentials (e.g. .well-known/smart-configuration); None when the
        answer is not JSON."""
        headers = {"Accept": "application/json"}
        return self._request_elsewhere("GET", url, headers=headers, what=what, require_json=False).body

    def open_stream(
        self, url: str, *, authenticate: bool, what: str, accept: str = "application/fhir+ndjson"
    ) -> requests.Response:
        """GET a file as a stream (Bulk Data output): a 200 response whose body the caller reads in chunks
        and closes. Opening it is retried like any request (429/5xx/connection errors, Retry-After).

        Credentials go with the first hop only, and only when ``authenticate`` and the URL is on the server's
        origin; a redirect (Oracle Health answers file requests with a 307 to storage) is followed without
        them, to wherever it points (plain http:// only to this machine unless allowed). Each thread gets its
        own ``requests.Session`` (see ``thread_session``), so files download concurrently."""
        refuse_insecure(url, what, self.allow_insecure_http)
        if authenticate and origin(url) != self.origin:
            raise FatalServerError(
                f"refusing to send credentials to {_origin_text(url)}:"
                f" not the server's origin {_origin_text(self.base_url)}"
            )
        return self._with_retries(what, self._open_once, url, authenticate, what, accept)

    def thread_session(self) -> requests.Session:
        """The calling thread's session: the client's own on the thread that made the client, a session of
        the same configuration on any other (a Session is not meant to be shared between threads)."""
        if threading.get_ident() == self._owner_thread:
            return self.session
        session: requests.Session | None = getattr(self._thread_local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=2, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(self.session.headers)
            self._thread_local.session = session
            with self._sessions_lock:
                self._thread_sessions.append(session)
        return session

    def _open_once(self, url: str, authenticate: bool, label: str, accept: str) -> requests.Response:
        session = self.thread_session()
        send_auth = authenticate
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._get_streaming(session, url, send_auth, label, accept)
            if response.status_code == 401 and send_auth and hasattr(self.auth, "invalidate"):
                response.close()
                log.info("%s: 401; fetching a new token and trying once more", label)
                self.auth.invalidate()  # type: ignore[union-attr]
                response = self._get_streaming(session, url, send_auth, label, accept)
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                response.close()
                url = urljoin(url, location)
                refuse_insecure(url, f"{label} (redirect)", self.allow_insecure_http)
                send_auth = False  # a redirect target (storage) never gets the server's token
                log.debug("%s: redirected to %s (without credentials)", label, _origin_text(url))
                continue
            if response.status_code >= 300:
                try:
                    self._handle(response, label)  # raises the error of its status, with its outcome
                finally:
                    response.close()
                raise FatalServerError(f"{label}: unexpected HTTP {response.status_code}")
            return response
        raise FatalServerError(f"{label}: more than {MAX_REDIRECTS} redirects")

    def _get_streaming(
        self, session: requests.Session, url: str, authenticate: bool, label: str, accept: str
    ) -> requests.Response:
        started = time.monotonic()
        with self._counts_lock:
            self.requests_sent += 1
        try:
            response = session.get(
                url,
                headers={"Accept": accept},
                auth=self.auth if authenticate else None,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
                verify=self.verify,
                cert=self.cert,
                stream=True,
            )
        except requests.exceptions.SSLError as exc:
            raise tls_error(label, url, exc, self._setting_for(url)) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetryableServerError(f"{label}: {_transport_text(exc, url)}") from None
        log.debug("%s -> %d in %.2fs", label, response.status_code, time.monotonic() - started)
        return response

    def _request_elsewhere(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str,
        require_json: bool = True,
    ) -> FhirResponse:
        return self.request(
            method,
            url,
            form=form,
            headers=headers,
            authenticate=False,
            what=what,
            require_json=require_json,
        )


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _log_outcome(label: str, outcome: Any) -> None:
    """A search's OperationOutcome entry, by issue codes and element paths (its diagnostics can quote the
    search URL or data)."""
    if not isinstance(outcome, dict):
        return
    for issue in outcome.get("issue") or []:
        if isinstance(issue, dict) and issue.get("severity") in ("warning", "error", "fatal"):
            log.warning("%s: server says %s", label, outcome_summary({"issue": [issue]}))


def _origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def _url_text(url: str) -> str:
    """A configured URL as a message may show it: origin and path, no user info, no query."""
    return _origin_text(url) + (urlsplit(url).path or "")


def _transport_text(exc: Exception, url: str) -> str:
    """What went wrong on the wire, in words, naming host:port but never the URL (it can hold a query)."""
    import errno
    import socket

    host, port = _host_port(url)
    if isinstance(exc, requests.ConnectTimeout):
        return f"cannot connect to {host}:{port} (connect timeout)"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.Timeout):
        return "timeout"
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"cannot connect to {host}:{port} (host name not found)"
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot connect to {host}:{port} (connection refused)"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"cannot connect to {host}:{port} (no route to host)"
    return "connection failed"


def _short(exc: BaseException | None) -> str:
    return str(exc) if exc is not None else "unknown error"


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time, so tests can patch time.sleep
