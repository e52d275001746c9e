"""Generated patients for the cross-check with the reference engine (fqm-execution running the published CQL).

Each case is one patient built to reach one branch of a measure: a population, an exclusion, an exception, a
stratum, a boundary day or age. ``tools/oracle_cases.py`` writes them as Bundles, runs
``../shared/tools/fqm-oracle`` on them and records its populations in ``expected.json``;
``tests/test_oracle_cases.py`` checks, offline, that fhir-cat2 gives the same populations.

Cases live in one module per measure (``tests/oracle/cms165.py``...), each calling ``case`` at import.
Builders are the suite's own (``tests/conftest.py``), written for patient ``p1``: ``case`` gives the patient
the case's name as id, prefixes every other id with it and rewrites the references, so cases never collide.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

PERIOD = 2025
"""The measurement period every case is built for (calendar year)."""


@dataclass(frozen=True)
class Case:
    name: str
    """The patient id, unique across all cases (FHIR id: letters, digits, '-', at most 64)."""
    measures: tuple[str, ...]
    """The CMS ids the case was built for; the reference engine runs these on it."""
    why: str
    """The branch it reaches, in words."""
    resources: tuple[dict[str, Any], ...]


_CASES: dict[str, Case] = {}


def case(name: str, measures: str | tuple[str, ...], why: str, resources: list[dict[str, Any]]) -> Case:
    """Register a case: ``resources`` built for patient ``p1`` are made the case's own."""
    if name in _CASES:
        raise ValueError(f"two cases are called {name}")
    if len(name) > 48 or not all(c.isalnum() or c == "-" for c in name):
        raise ValueError(f"case name {name!r}: letters, digits and '-' only, at most 48")
    made = Case(name, (measures,) if isinstance(measures, str) else measures, why, _isolated(name, resources))
    _CASES[name] = made
    return made


def all_cases() -> list[Case]:
    """Every case of every measure module, in name order."""
    from . import __path__ as here

    for module in pkgutil.iter_modules(here):
        if module.name.startswith("cms"):
            importlib.import_module(f"{__package__}.{module.name}")
    return sorted(_CASES.values(), key=lambda c: c.name)


def bundle(made: Case) -> dict[str, Any]:
    """The case as a collection Bundle (what ``fhir-cat2 replay`` and the oracle read)."""
    return {
        "resourceType": "Bundle",
        "id": made.name,
        "type": "collection",
        "entry": [{"resource": r} for r in made.resources],
    }


def _isolated(name: str, resources: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    def own(resource_type: str, rid: str) -> str:
        return name if resource_type == "Patient" else f"{name}-{rid}"

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            ref = value.get("reference")
            if isinstance(ref, str) and ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
                resource_type, rid = ref.split("/")
                out["reference"] = f"{resource_type}/{own(resource_type, rid)}"
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    made = []
    for resource in resources:
        copy = walk(resource)
        copy["id"] = own(resource["resourceType"], resource["id"])
        made.append(copy)
    return tuple(made)
