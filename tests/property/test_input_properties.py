"""Property tests of the input path: whatever bytes, JSON or mutated FHIR resources come in, the pipeline
never crashes; what it cannot use is quarantined with a reason, and what it writes is valid FHIR R4B."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.measurereport import MeasureReport
from hypothesis import given
from hypothesis import strategies as st

from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.sources.files import read_file

from ..conftest import ROOT, MemorySink

RULESET = load_rules()
BUG = "report this as a bug"
PATIENT_BUNDLES = sorted((ROOT / "fixtures" / "patients").glob("*.json"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([10**30, -(10**25), 2**64]),  # beyond 64 bits
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, 0.1 + 0.2]),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2025-02-30",
            "2025-13-01",
            "0000-01-01",
            "9999-12-31T23:59:59Z",
            "2025-03-04T25:00:00Z",
            "2025",
            "2025-06",
            "2025-03-04T09:00:00+14:00",
            "2025-03-04T09:00:00.123456789-12:00",
            "yesterday",
            "",
            " ",
            "Zoë Ñúñez 山田 😀",
            "\u202e\u0000",
            "mm[Hg]",
            "%",
            "mmol/mol",
            "http://loinc.org",
            "85354-9",
            "8480-6",
            "4548-4",
            "Patient/p1",
            "Encounter/",
            "urn:uuid:",
            "#contained",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def run_bytes(tmp_path: Path, name: str, data: bytes) -> MemorySink:
    path = tmp_path / name
    path.write_bytes(data)
    sink = MemorySink()
    pipeline = Pipeline(RULESET, RunOptions(period_year=2025), sink)
    pipeline.ingest(read_file(path))
    pipeline.run()
    return sink


def check(sink: MemorySink) -> None:
    for entry in sink.quarantined:
        assert entry.reason.strip(), "a quarantine entry without a reason"
        assert BUG not in entry.reason, entry.reason
    for resource in sink.resources:
        model = Claim if resource["resourceType"] == "Claim" else MeasureReport
        model.model_validate(resource)  # whatever we write is valid R4B


@given(data=st.binary(max_size=400), name=st.sampled_from(["x.json", "x.ndjson", "x.json.gz"]))
def test_arbitrary_bytes_never_crash(tmp_path_factory, data, name):
    check(run_bytes(tmp_path_factory.mktemp("b"), name, data))


@given(document=json_values, as_ndjson=st.booleans())
def test_arbitrary_json_never_crashes(tmp_path_factory, document, as_ndjson):
    text = json.dumps(document) if not as_ndjson else "\n".join(json.dumps(d) for d in ([document] * 2))
    check(run_bytes(tmp_path_factory.mktemp("j"), "x.ndjson" if as_ndjson else "x.json", text.encode()))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_bundles(draw: st.DrawFn) -> dict[str, Any]:
    """A fixture patient's Bundle with one to four of its resources changed: a value replaced by anything
    (wrong types, odd dates, huge numbers, unicode), an element removed, or an unknown element added."""
    bundle = json.loads(draw(st.sampled_from(PATIENT_BUNDLES)).read_text())
    for _ in range(draw(st.integers(1, 4))):
        entry = draw(st.sampled_from(bundle["entry"]))
        resource = entry["resource"]
        path = draw(st.sampled_from(_paths(resource)[1:]))
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and path[-1] != "resourceType":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return bundle


@given(bundle=mutated_bundles())
def test_mutated_fixture_resources_are_used_or_quarantined_never_crash(tmp_path_factory, bundle):
    text = json.dumps(bundle, allow_nan=False)
    check(run_bytes(tmp_path_factory.mktemp("m"), "bundle.json", text.encode()))


def test_the_generators_reach_interesting_cases():
    """Guard against a strategy that silently stopped producing: floats are finite, bundles are real."""
    assert PATIENT_BUNDLES and all(math.isfinite(x) for x in (1e308, 5e-324))
