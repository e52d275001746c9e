"""Download the value-set expansions a rules table needs from the VSAC FHIR terminology service.

    fhir-cat2 valuesets fetch --api-key-env VSAC_API_KEY --out valuesets/ [--rules my-rules.yaml]

VSAC authenticates with HTTP basic auth, user ``apikey`` and the UMLS API key as password. The key is read
from the named environment variable and is never printed, logged or written. Large expansions are paged with
``offset``/``count`` until ``expansion.total`` codes are in hand. Each expansion is written as one FHIR
ValueSet JSON file; ``--valuesets DIR`` (or ``run.valuesets``) then loads them, taking precedence over the
shipped tables.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import requests

from .errors import AuthError, ConfigError, FatalServerError, ResourceGoneError, ServerUnavailableError
from .rules.loader import read_table, referenced_valuesets
from .rules.valuesets import valueset_key

log = logging.getLogger("fhir_cat2.vsac")

VSAC_BASE = "https://cts.nlm.nih.gov/fhir"
PAGE_SIZE = 1000
TIMEOUT = (10.0, 60.0)
RETRIES = 4
MAX_WAIT = 60.0


@dataclass
class FetchReport:
    written: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """References VSAC does not know (404/410)."""


def api_key_from_env(variable: str, environ: dict[str, str] | None = None) -> str:
    """The key held by ``variable``; refuses (before any request) when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    if not value:
        raise ConfigError(f"environment variable {variable} is not set (it should hold your UMLS API key)")
    return value


class VsacClient:
    """Fetches ValueSet expansions; one session, one request function, retries on 429/5xx with backoff."""

    def __init__(
        self,
        api_key: str,
        *,
        base: str = VSAC_BASE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.base = base.rstrip("/")
        self.session = session or requests.Session()
        self.session.auth = ("apikey", api_key)
        self.sleep = sleep
        self.page_size = page_size

    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(RETRIES + 1):
            try:
                response = self.session.get(
                    url, params=params, timeout=TIMEOUT, headers={"Accept": "application/fhir+json"}
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == RETRIES:
                    raise ServerUnavailableError(f"VSAC unreachable: {type(exc).__name__}") from None
                self.sleep(min(2.0**attempt, MAX_WAIT))
                continue
            status = response.status_code
            if status == 200:
                data = orjson.loads(response.content)
                if not isinstance(data, dict):
                    raise FatalServerError(
                        "VSAC answered with something other than a JSON object", status=status
                    )
                return data
            outcome = _outcome(response)
            if status in (401, 403):
                raise AuthError(f"VSAC refused the API key (HTTP {status})", status=status, outcome=outcome)
            if status in (404, 410):
                raise ResourceGoneError(
                    f"VSAC has no such value set (HTTP {status})", status=status, outcome=outcome
                )
            if status == 429 or status >= 500:
                if attempt == RETRIES:
                    raise ServerUnavailableError(
                        f"VSAC still failing after {RETRIES} retries (HTTP {status})", status=status
                    )
                self.sleep(_retry_after(response) or min(2.0**attempt, MAX_WAIT))
                continue
            raise FatalServerError(
                f"VSAC refused the request (HTTP {status})", status=status, outcome=outcome
            )
        raise AssertionError("unreachable")

    def expand(self, ref: str) -> dict[str, Any]:
        """The expanded ValueSet for an OID or canonical URL, every page of it."""
        key = valueset_key(ref)
        if all(part.isdigit() for part in key.split(".")):  # an OID (given as such, urn:oid: or a VSAC URL)
            url = f"{self.base}/ValueSet/{quote(key)}/$expand"
            base_params: dict[str, Any] = {}
        else:
            url = f"{self.base}/ValueSet/$expand"
            base_params = {"url": key}
        contains: list[Any] = []
        offset = 0
        first: dict[str, Any] | None = None
        while True:
            page = self._get(url, {**base_params, "offset": offset, "count": self.page_size})
            expansion = page.get("expansion") or {}
            items = expansion.get("contains") or []
            if first is None:
                first = page
            contains.extend(items)
            total = expansion.get("total")
            offset += len(items)
            if not items or total is None or offset >= int(total):
                break
        assert first is not None
        result = dict(first)
        expansion = dict(result.get("expansion") or {})
        expansion["contains"] = contains
        expansion["total"] = len(contains)
        expansion.pop("offset", None)
        result["expansion"] = expansion
        return result


def fetch(refs: Iterable[str], out: str | os.PathLike[str], client: VsacClient) -> FetchReport:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    report = FetchReport()
    for ref in sorted(set(refs)):
        try:
            valueset = client.expand(ref)
        except ResourceGoneError:
            log.warning("VSAC has no value set %s", ref)
            report.missing.append(ref)
            continue
        name = valueset_key(ref).replace("/", "_").replace(":", "_") + ".json"
        target = folder / name
        temporary = target.with_suffix(".json.tmp")
        temporary.write_bytes(
            orjson.dumps(valueset, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        temporary.replace(target)
        report.written.append(ref)
    return report


def valuesets_needed(rules: str | None) -> list[str]:
    """Every value set a rules table (default: the shipped one) refers to."""
    return sorted(referenced_valuesets(read_table(rules)))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_WAIT)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_WAIT)


def _outcome(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome" else None
