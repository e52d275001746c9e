"""``fhir-cat2 explain`` on a patient's resources, as a measure's tests read it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fhir_cat2.cli import main


def explain_text(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    measure: str,
    resources: Iterable[dict[str, Any]],
    *flags: str,
) -> str:
    """Write ``resources`` as one Bundle in ``tmp_path``, run ``fhir-cat2 explain`` on it for patient p1
    and ``measure`` in 2025 (with ``flags``, e.g. ``--full``) and return what it prints."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    (tmp_path / "p.json").write_text(json.dumps(bundle))
    argv = ["explain", str(tmp_path), "--patient", "p1", "--measure", measure, "--period", "2025", *flags]
    assert main(argv) == 0
    return capsys.readouterr().out
