"""Every outgoing resource is validated with the full fhir.resources R4B model, in submission order,
inline or in a worker process."""

from __future__ import annotations

import json

import pytest

from fhir_cat2.emit import validation
from fhir_cat2.emit.validation import OrderedValidator

from .conftest import ROOT

CLAIM = json.loads((ROOT / "tests" / "golden" / "fixtures-hedis" / "Claim.ndjson").read_text().splitlines()[0])


def _claims(n: int) -> list[dict]:
    out = []
    for index in range(n):
        claim = json.loads(json.dumps(CLAIM))
        claim["id"] = f"c{index}"
        if index % 97 == 5:
            claim["item"][0]["sequence"] = -1  # positiveInt: invalid
        out.append(claim)
    return out


@pytest.mark.parametrize("workers", ["0", "1"])
def test_order_is_kept_and_invalid_resources_are_rejected(monkeypatch, workers):
    monkeypatch.setenv("FHIR_CAT2_VALIDATION_WORKERS", workers)
    monkeypatch.setattr(validation, "INLINE_UNTIL", 10)
    monkeypatch.setattr(validation, "WINDOW", 2)
    monkeypatch.setattr(validation, "BATCH", 7)
    accepted: list[str] = []
    rejected: list[tuple[str, str]] = []
    validator = OrderedValidator(lambda r: accepted.append(r["id"]), lambda r, why: rejected.append((r["id"], why)))
    claims = _claims(300)
    for claim in claims:
        validator.submit(claim)
    validator.close()
    bad = {c["id"] for i, c in enumerate(claims) if i % 97 == 5}
    assert accepted == [c["id"] for c in claims if c["id"] not in bad]
    assert [r[0] for r in rejected] == sorted(bad, key=lambda x: int(x[1:]))
    assert "Claim/c5 failed FHIR R4B validation at item.0.sequence" in rejected[0][1]
