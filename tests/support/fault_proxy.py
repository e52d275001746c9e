"""A small fault-injecting HTTP reverse proxy for tests: fhir-cat2 -> proxy -> a real FHIR server.

Stdlib only, one thread per connection. Requests are forwarded as they come; absolute URLs of the upstream
in bodies and headers (next links, fullUrls, Location) are rewritten to the proxy's own origin, so the
client never learns the upstream address. Faults are rules that match a request (method, a regex on the
path and query, optionally a regex on the body) and apply to the first ``times`` matches (or all of them,
``times=None``):

``drop``           read the request, close the connection without answering (upstream never sees it)
``drop_after``     forward it (the upstream processes it), then close without answering: a lost response
``delay``          wait ``seconds`` before forwarding (beyond the client's read timeout: a timeout)
``delay_after``    forward it, then wait ``seconds`` before answering (the upstream processed it)
``status``         answer ``status`` (503, 429, 422...) with an OperationOutcome (issue ``issue_code``) and
                   optional Retry-After
``truncate``       forward it, send the headers with the full Content-Length, then half the body, close
``cut_json``       forward it, answer with only the first half of the body as a complete response

Optionally the proxy speaks TLS (``ssl_context``), with or without requiring a client certificate.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str = ""
    """Regex searched in the request's path and query (e.g. r'^/fhir/Observation\\?' or '_getpages')."""
    body: str = ""
    """Regex searched in the request body (e.g. '"resourceType": ?"MeasureReport"' in a transaction)."""
    times: int | None = 1
    """How many matching requests get the fault; None: all of them."""
    after: int = 0
    """Matching requests that pass untouched before the fault starts."""
    seconds: float = 0.0
    status: int = 503
    issue_code: str = "transient"
    retry_after: str | None = None
    hits: int = 0
    passed: int = 0

    def matches(self, method: str, target: str, body: bytes = b"") -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if re.search(self.path, target) is None:
            return False
        if self.body and re.search(self.body, body.decode("utf-8", "replace")) is None:
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        return True


@dataclass
class Seen:
    method: str
    target: str
    fault: str | None
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    def __init__(self, upstream: str, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path.rstrip("/")
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.ssl_context = ssl_context
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.base_path

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, kind: str, **options: Any) -> Fault:
        fault = Fault(kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def take(self, method: str, target: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, target, body):
                    fault.hits += 1
                    self.seen.append(Seen(method, target, fault.kind))
                    return fault
            self.seen.append(Seen(method, target, None))
            return None

    def faulted(self) -> int:
        return sum(1 for s in self.seen if s.fault)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (timeout) is expected here


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body go out in separate writes: without this, Nagle and delayed ACKs add 40 ms each
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._proxy()

        def do_POST(self) -> None:
            self._proxy()

        def do_PUT(self) -> None:
            self._proxy()

        def do_DELETE(self) -> None:
            self._proxy()

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy.take(self.command, self.path, body)
            kind = fault.kind if fault else None
            if kind == "drop":
                self._drop()
                return
            if kind == "delay":
                time.sleep(fault.seconds)  # type: ignore[union-attr]
            if kind == "status":
                self._status(fault)  # type: ignore[arg-type]
                return
            try:
                status, headers, payload = self._forward(body)
            except OSError:
                self.send_error(502)
                return
            if kind == "drop_after":
                self._drop()
                return
            if kind == "delay_after":
                time.sleep(fault.seconds)  # type: ignore[union-attr]
            if kind == "cut_json":
                payload = payload[: max(1, len(payload) // 2)]
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if kind == "truncate":
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self._drop()
                return
            self.wfile.write(payload)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                if body:
                    headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                out_headers = []
                for name, value in response.getheaders():
                    if name.lower() in HOP_BY_HOP:
                        continue
                    out_headers.append((name, value.replace(proxy.upstream_origin, proxy.origin)))
                return (
                    response.status,
                    out_headers,
                    payload.replace(proxy.upstream_origin.encode(), proxy.origin.encode()),
                )
            finally:
                connection.close()

        def _status(self, fault: Fault) -> None:
            outcome = (
                b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"'
                + fault.issue_code.encode()
                + b'","diagnostics":"injected fault"}]}'
            )
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/fhir+json")
            if fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            self.send_header("Content-Length", str(len(outcome)))
            self.end_headers()
            self.wfile.write(outcome)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
