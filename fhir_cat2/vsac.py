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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import requests
from pydantic import SecretStr

from .auth import BasicAuth
from .errors import AuthError, ConfigError, FatalServerError, ResourceGoneError
from .fhir import FhirClient, RetryPolicy, Timeouts
from .rules.loader import read_table, referenced_valuesets
from .rules.valuesets import valueset_key

log = logging.getLogger("fhir_cat2.vsac")

VSAC_BASE = "https://cts.nlm.nih.gov/fhir"
PAGE_SIZE = 1000
TIMEOUTS = Timeouts(connect=10.0, read=60.0)
RETRY = RetryPolicy(attempts=5, backoff_base=2.0, backoff_max=60.0, retry_after_cap=60.0)
"""Five tries in all: VSAC answers 429 under load and says how long to wait."""


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
    """Fetches ValueSet expansions through the project's one HTTP client (``fhir.FhirClient``: one session,
    timeouts always set, retries of 429/5xx with backoff honouring Retry-After, errors by status)."""

    def __init__(
        self,
        api_key: str,
        *,
        base: str = VSAC_BASE,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = FhirClient(
            base,
            auth=BasicAuth("apikey", SecretStr(api_key)),
            timeouts=TIMEOUTS,
            retry=retry or RETRY,
            session=session,
        )
        self.page_size = page_size

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.request(
                "GET", path, params={k: str(v) for k, v in params.items()}, what="VSAC $expand"
            )
        except AuthError as exc:
            raise AuthError(
                f"VSAC refused the API key (HTTP {exc.status})", status=exc.status, outcome=exc.outcome
            ) from None
        except ResourceGoneError as exc:
            raise ResourceGoneError(
                f"VSAC has no such value set (HTTP {exc.status})", status=exc.status, outcome=exc.outcome
            ) from None
        data = response.body
        if not isinstance(data, dict):
            raise FatalServerError("VSAC answered with something other than a JSON object", status=200)
        return data

    def expand(self, ref: str) -> dict[str, Any]:
        """The expanded ValueSet for an OID or canonical URL, every page of it."""
        key = valueset_key(ref)
        if all(part.isdigit() for part in key.split(".")):  # an OID (given as such, urn:oid: or a VSAC URL)
            url = f"ValueSet/{quote(key)}/$expand"
            base_params: dict[str, Any] = {}
        else:
            url = "ValueSet/$expand"
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
