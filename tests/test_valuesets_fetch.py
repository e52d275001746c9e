"""fhir-cat2 valuesets fetch: VSAC FHIR $expand with basic auth ('apikey', key), paging, retries, errors;
tested with `responses` only (no network). The API key is never printed or logged."""

from __future__ import annotations

import base64
import json
import logging
import re
import time

import pytest
import responses

from fhir_cat2.cli import main
from fhir_cat2.errors import AuthError, ConfigError
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.rules.valuesets import ValueSetRegistry
from fhir_cat2.vsac import VSAC_BASE, VsacClient, api_key_from_env, fetch

KEY = "secret-umls-key-1234"
OID = "2.16.840.1.113883.3.464.1003.104.12.1011"
EXPAND = re.compile(re.escape(VSAC_BASE) + r"/ValueSet/([0-9.]+)/\$expand")

MINIMAL_RULES = (
    """\
version: 1
name: fetch test
measurements:
  systolic_bp:
    label: SBP
    codes: [loinc#8480-6]
    unit: mm[Hg]
    units: {"mm[Hg]": {factor: 1}}
    source: test
library:
  htn:
    exists: {resource: Condition, valuesets: [2.16.840.1.113883.3.464.1003.104.12.1011], overlaps: period}
  visit:
    exists: {resource: Encounter, valuesets: """
    '["http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113883.3.464.1003.101.12.1001"], during: period}\n'
)


def page(oid: str, codes: list[str], total: int, offset: int = 0) -> dict:
    return {
        "resourceType": "ValueSet",
        "id": oid,
        "url": f"http://cts.nlm.nih.gov/fhir/ValueSet/{oid}",
        "version": "20240101",
        "name": "Test",
        "expansion": {
            "total": total,
            "offset": offset,
            "contains": [{"system": "http://snomed.info/sct", "code": c, "display": f"d{c}"} for c in codes],
        },
    }


@pytest.fixture(autouse=True)
def waits(monkeypatch) -> list[float]:
    """time.sleep replaced by a recorder (the retries of the shared HTTP client sleep through it)."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def client(**kw) -> VsacClient:
    return VsacClient(KEY, **kw)


@responses.activate
def test_basic_auth_with_apikey_user_and_one_page():
    """VSAC: basic auth, user 'apikey', password = the key; GET ValueSet/<oid>/$expand."""
    responses.get(EXPAND, json=page(OID, ["59621000", "I10"], 2))
    result = client().expand(OID)
    assert [c["code"] for c in result["expansion"]["contains"]] == ["59621000", "I10"]
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"apikey:{KEY}".encode()).decode()
    assert "offset=0" in sent.url and "count=" in sent.url


@responses.activate
def test_large_expansions_are_paged_with_offset_and_count():
    """Paging: offset advances by the codes received until expansion.total is reached."""
    responses.get(EXPAND, json=page(OID, ["a", "b"], 5, 0))
    responses.get(EXPAND, json=page(OID, ["c", "d"], 5, 2))
    responses.get(EXPAND, json=page(OID, ["e"], 5, 4))
    result = client(page_size=2).expand(OID)
    assert [c["code"] for c in result["expansion"]["contains"]] == ["a", "b", "c", "d", "e"]
    assert result["expansion"]["total"] == 5
    offsets = [re.search(r"offset=(\d+)", call.request.url).group(1) for call in responses.calls]
    assert offsets == ["0", "2", "4"]


@responses.activate
def test_canonical_url_of_a_non_vsac_value_set_uses_expand_by_url():
    """A canonical URL that is not an OID is expanded with ValueSet/$expand?url=..."""
    responses.get(f"{VSAC_BASE}/ValueSet/$expand", json=page("x", ["1"], 1))
    client().expand("http://example.org/fhir/ValueSet/local-set")
    assert "url=http%3A%2F%2Fexample.org%2Ffhir%2FValueSet%2Flocal-set" in responses.calls[0].request.url


@responses.activate
def test_429_and_5xx_are_retried_honouring_retry_after(waits):
    """Retry 429/5xx with backoff (full jitter); Retry-After in seconds is honoured (sleep is patched)."""
    responses.get(EXPAND, status=429, headers={"Retry-After": "7"})
    responses.get(EXPAND, status=503)
    responses.get(EXPAND, json=page(OID, ["x"], 1))
    assert [c["code"] for c in client().expand(OID)["expansion"]["contains"]] == ["x"]
    assert len(waits) == 2 and waits[0] == 7.0 and 0.0 <= waits[1] <= 4.0


@responses.activate
def test_vsac_down_past_the_retries_is_unavailable(waits):
    from fhir_cat2.errors import ServerUnavailableError

    responses.get(EXPAND, status=503)
    with pytest.raises(ServerUnavailableError):
        client().expand(OID)
    assert len(responses.calls) == 5 and len(waits) == 4


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_refused_key_is_an_auth_error_that_does_not_show_the_key(status):
    """401/403 -> AuthError (exit 3); the message never contains the key."""
    responses.get(
        EXPAND,
        status=status,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "login", "diagnostics": "bad key"}],
        },
    )
    with pytest.raises(AuthError) as info:
        client().expand(OID)
    assert KEY not in str(info.value) and "error: login" in str(info.value)


@responses.activate
def test_fetch_writes_loadable_expansions_and_reports_missing(tmp_path):
    """Written files load with --valuesets DIR; 404 is reported as missing, the rest still written."""
    responses.get(f"{VSAC_BASE}/ValueSet/{OID}/$expand", json=page(OID, ["I10", "59621000"], 2))
    responses.get(f"{VSAC_BASE}/ValueSet/2.16.840.1.113883.3.464.1003.101.12.1001/$expand", status=404)
    report = fetch([OID, "2.16.840.1.113883.3.464.1003.101.12.1001"], tmp_path / "vs", client())
    assert report.written == [OID] and report.missing == ["2.16.840.1.113883.3.464.1003.101.12.1001"]
    registry = ValueSetRegistry()
    assert registry.load_dir(tmp_path / "vs") == 1
    assert ("http://hl7.org/fhir/sid/icd-10-cm", "I10") not in registry.codes(OID)  # systems kept as sent
    assert ("http://snomed.info/sct", "I10") in registry.codes(OID)


def test_missing_api_key_variable_is_refused_before_any_request(monkeypatch):
    """--api-key-env names an unset variable: configuration error, nothing fetched."""
    monkeypatch.delenv("NO_SUCH_VSAC_KEY", raising=False)
    with pytest.raises(ConfigError):
        api_key_from_env("NO_SUCH_VSAC_KEY")


@responses.activate
def test_cli_fetches_what_a_rules_table_needs_and_never_prints_the_key(tmp_path, monkeypatch, capsys, caplog):
    """fhir-cat2 valuesets fetch --api-key-env VAR --out DIR --rules FILE: one request per referenced value
    set (OID or VSAC canonical URL); the key appears in no output or log record."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(MINIMAL_RULES)
    monkeypatch.setenv("MY_VSAC_KEY", KEY)
    responses.get(EXPAND, json=page(OID, ["I10"], 1))
    caplog.set_level(logging.DEBUG)
    code = main(
        [
            "--log-level",
            "DEBUG",
            "valuesets",
            "fetch",
            "--api-key-env",
            "MY_VSAC_KEY",
            "--out",
            str(tmp_path / "vs"),
            "--rules",
            str(rules),
        ]
    )
    assert code == 0
    requested = sorted(EXPAND.match(c.request.url.split("?")[0]).group(1) for c in responses.calls)
    assert requested == ["2.16.840.1.113883.3.464.1003.101.12.1001", OID]
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + caplog.text
    assert "2 value sets written" in out.err
    written = sorted(p.name for p in (tmp_path / "vs").iterdir())
    assert written == ["2.16.840.1.113883.3.464.1003.101.12.1001.json", f"{OID}.json"]
    assert json.loads((tmp_path / "vs" / f"{OID}.json").read_text())["resourceType"] == "ValueSet"


def test_cli_without_the_variable_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MY_VSAC_KEY", raising=False)
    assert main(["valuesets", "fetch", "--api-key-env", "MY_VSAC_KEY", "--out", str(tmp_path / "vs")]) == 2
    assert "MY_VSAC_KEY is not set" in capsys.readouterr().err


def test_default_table_needs_only_value_sets_it_ships():
    """Every value set the shipped rules name is shipped (so the default run needs no download)."""
    from fhir_cat2.rules.loader import referenced_valuesets

    ruleset = load_rules()
    assert all(ref in ruleset.registry for ref in referenced_valuesets(ruleset.table))
