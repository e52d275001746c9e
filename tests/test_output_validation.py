"""Every resource we write is validated with the full fhir.resources R4B model; the shape-memoised
validator (fhir_cat2/emit/validation.py) must give the full model's verdict on every input."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_cat2.emit.validation import MODELS, ShapeCachedValidator

from .conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "fixtures-hedis"


def _outputs() -> list[dict[str, Any]]:
    out = []
    for name in ("Claim.ndjson", "MeasureReport.ndjson"):
        out += [json.loads(line) for line in (GOLDEN / name).read_text().splitlines()]
    return out


def _full_verdict(resource: dict[str, Any]) -> bool:
    try:
        MODELS[resource["resourceType"]].model_validate(resource)
    except ValidationError:
        return False
    return True


BAD_VALUES = [
    "",
    " padded",
    "2025-13-45",
    "not a date",
    -1,
    0,
    1.5,
    True,
    None,
    "x" * 70,
    "bad id!",
    {},
    [],
    "http://ok.example/x",
    "2025-03-04",
    "2025-03-04T10:00:00Z",
    3,
    "final",
    "ünïcode",
]


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _set(resource: dict[str, Any], path: tuple, value: Any) -> None:
    node = resource
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _mutations(resource: dict[str, Any], rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    leaves = [p for p in _leaves(resource) if p != ("resourceType",)]
    for _ in range(count):
        mutated = copy.deepcopy(resource)
        kind = rng.random()
        path = rng.choice(leaves)
        if kind < 0.7:
            _set(mutated, path, rng.choice(BAD_VALUES))
        elif kind < 0.85:  # drop an element
            node = mutated
            for key in path[:-1]:
                node = node[key]
            if isinstance(node, dict):
                del node[path[-1]]
        else:  # an element the model does not have
            node = mutated
            for key in path[:-1]:
                node = node[key]
            if isinstance(node, dict):
                node["colour"] = "red"
        out.append(mutated)
    return out


def test_every_golden_output_is_valid_for_both():
    validator = ShapeCachedValidator()
    for resource in _outputs():
        assert _full_verdict(resource)
        assert validator.problem(resource) is None


@pytest.mark.parametrize("seed", range(2))
def test_cached_verdict_equals_the_full_model_on_mutations(seed):
    """Differential test: warm the cache with valid resources, then compare verdicts on mutations."""
    rng = random.Random(seed)
    validator = ShapeCachedValidator()
    originals = _outputs()
    for resource in originals:
        assert validator.problem(resource) is None  # every shape is now planned
    disagreements = []
    checked = 0
    for resource in originals:
        for mutated in _mutations(resource, rng, 12):
            full = _full_verdict(mutated)
            cached = validator.problem(mutated) is None
            checked += 1
            if full != cached:
                disagreements.append((resource["id"], mutated))
    assert checked > 1000
    assert not disagreements, disagreements[:1]


def test_same_shape_resources_skip_the_full_model():
    validator = ShapeCachedValidator()
    claims = [r for r in _outputs() if r["resourceType"] == "Claim"]
    for claim in claims:
        validator.problem(claim)
    before = validator.full_validations
    for index, claim in enumerate(claims * 5):
        again = copy.deepcopy(claim)
        again["id"] = f"copy-{index}"
        assert validator.problem(again) is None
    assert validator.full_validations == before


def test_a_bad_leaf_in_a_known_shape_is_named():
    validator = ShapeCachedValidator()
    claim = next(r for r in _outputs() if r["resourceType"] == "Claim")
    assert validator.problem(claim) is None
    bad = copy.deepcopy(claim)
    bad["item"][0]["servicedDate"] = "2025-02-30"
    problem = validator.problem(bad)
    assert problem is not None and "item.0.servicedDate" in problem


def test_a_problem_reads_the_same_whichever_shapes_were_seen_first():
    """Workers see shapes in different orders: a known shape and a new one must give the same text."""
    claim = next(r for r in _outputs() if r["resourceType"] == "Claim")
    bad = copy.deepcopy(claim)
    bad["item"][0]["servicedDate"] = "2025-02-30"
    fresh = ShapeCachedValidator().problem(bad)
    warmed = ShapeCachedValidator()
    assert warmed.problem(claim) is None
    assert fresh is not None and warmed.problem(bad) == fresh


def test_bad_values_in_known_shapes_are_caught_without_the_full_model():
    """Leaves of the golden outputs given a bad value of the same Python type (so the shape is one already
    planned): the fast path alone must reach the full model's verdict and name the leaf."""
    validator = ShapeCachedValidator()
    originals = _outputs()
    for resource in originals:
        assert validator.problem(resource) is None
    full_before = validator.full_validations
    cases = []
    for resource in originals:
        for path in _leaves(resource):
            node: Any = resource
            for key in path:
                node = node[key]
            cases += [
                (resource, path, bad)
                for bad in BAD_VALUES
                if path != ("resourceType",) and type(bad) is type(node) and bad != node
            ]
    caught = 0
    for resource, path, bad in random.Random(7).sample(cases, 1500):
        mutated = copy.deepcopy(resource)
        _set(mutated, path, bad)
        problem = validator.problem(mutated)
        assert (problem is None) == _full_verdict(mutated), (path, bad)
        if problem is not None:
            caught += 1
            assert ".".join(str(p) for p in path) + ":" in problem
    assert validator.full_validations == full_before  # all of it on the fast path
    assert caught > 150


def test_remembered_values_are_kept_per_python_type():
    """A value remembered as valid is only trusted for a leaf of the same Python type."""
    validator = ShapeCachedValidator()
    claim = next(r for r in _outputs() if r["resourceType"] == "Claim")
    assert validator.problem(claim) is None
    as_text = copy.deepcopy(claim)
    as_text["item"][0]["sequence"] = str(claim["item"][0]["sequence"])  # "1": same value, not an int
    assert (validator.problem(as_text) is None) == _full_verdict(as_text)
    as_bool = copy.deepcopy(claim)
    as_bool["item"][0]["sequence"] = True  # True == 1, yet not a positiveInt
    assert (validator.problem(as_bool) is None) == _full_verdict(as_bool)


def test_unusual_leaf_values_always_get_the_full_model():
    """A leaf that is not a JSON scalar (here a Decimal) is never checked from memory."""
    from decimal import Decimal

    validator = ShapeCachedValidator()
    claim = next(r for r in _outputs() if r["resourceType"] == "Claim")
    odd = copy.deepcopy(claim)
    odd["total"]["value"] = Decimal("0")
    for _ in range(2):
        before = validator.full_validations
        assert (validator.problem(odd) is None) == _full_verdict(odd)
        assert validator.full_validations == before + 1


@pytest.fixture(scope="module")
def gaps_bundles(tmp_path_factory) -> list[dict[str, Any]]:
    """Two Gaps in Care Bundles of the fixtures (``--emit gaps``)."""
    from fhir_cat2.cli import main

    out = tmp_path_factory.mktemp("gaps")
    argv = ["replay", str(ROOT / "fixtures"), "--out", str(out), "--now", "2026-01-15T00:00:00Z"]
    assert main([*argv, "--emit", "claim,measure-report,gaps", "--no-progress"]) == 0
    return [json.loads(line) for line in (out / "Bundle.ndjson").read_text().splitlines()[:2]]


def test_cached_verdict_equals_the_full_model_on_bundle_mutations(gaps_bundles):
    """A Bundle is checked as its entries' resources and the Bundle without them (shapes that recur): the
    verdict must still be the full Bundle model's, mutations inside the entries included."""
    rng = random.Random(3)
    validator = ShapeCachedValidator()
    for bundle in gaps_bundles:
        assert _full_verdict(bundle) and validator.problem(bundle) is None
    disagreements = []
    verdicts = set()
    for bundle in gaps_bundles:
        for mutated in _mutations(bundle, rng, 40):
            try:
                full = _full_verdict(mutated)
            except TypeError:  # fhir.resources fails on an entry's resourceType that is not text
                assert validator.problem(mutated) is not None
                continue
            verdicts.add(full)
            if full != (validator.problem(mutated) is None):
                disagreements.append(mutated)
    assert verdicts == {True, False}
    assert not disagreements, disagreements[:1]
