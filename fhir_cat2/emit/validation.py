"""Full fhir.resources R4B validation of every resource we write, memoised on the resource's shape.

Validating a Claim or MeasureReport with the R4B model costs 0.5-1.5 ms, as much as reading and
evaluating the input that produced it. But what the model checks splits in two:

- structure: which elements are present, their nesting, required elements, choice types, empty values.
  For resources of the same *shape* (the same keys in the same order at every level, the same list
  lengths, the same kinds of leaf values) the answer is always the same;
- primitive values: each leaf against its FHIR type (id, code, dateTime, positiveInt...), which the model
  checks with one pydantic validator per field type.

So the first resource of each shape is validated with the full model. From it we record, for every leaf,
the validator of the model field that holds it (the very same annotated type the model uses). Later
resources of that shape are checked leaf by leaf with those validators; values already seen valid for a
type are remembered. The verdict equals the full model's; ``tests/test_output_validation.py`` checks
that claim against the full model on thousands of mutated resources.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import BaseModel, TypeAdapter, ValidationError

MODELS: dict[str, type[BaseModel]] = {
    "Claim": Claim,
    "MeasureReport": MeasureReport,
    "Bundle": Bundle,
    "Composition": Composition,
    "DetectedIssue": DetectedIssue,
}
"""What we write (Claim, MeasureReport, Bundle) and what our Bundles hold."""
MAX_REMEMBERED = 20_000
"""Valid values remembered per leaf type (ids and references are mostly unique: keep memory bounded)."""

Shape = tuple[Any, ...]
_NONE = type(None)
MAX_SHAPES = 5_000
_UNSEEN: list[Any] = []


def first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"failed FHIR R4B validation at {loc}: {first['msg']}"


def _walk(children: Iterable[Any], tokens: list[Any], leaves: list[Any]) -> None:
    """One pass over a container's children (a dict's values, a list's items): shape tokens and leaf values,
    in document order.

    The tokens are a prefix code, so equal token sequences mean equal shapes: a dict is the tuple of its
    keys (then its values), a list its length (then its items), a leaf its type."""
    for child in children:
        kind = type(child)
        if kind is dict:
            tokens.append(tuple(child))
            _walk(child.values(), tokens, leaves)
        elif kind is list:
            tokens.append(len(child))
            _walk(child, tokens, leaves)
        else:
            tokens.append(kind)
            leaves.append(child)


def _unwrap(annotation: Any) -> Any:
    """The element type of a field: without Optional, List or Union-with-None."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not _NONE]
            if len(args) != 1:
                raise _Unplannable(f"union {annotation}")
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - fhir.resources annotates with typing.List
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


class _Unplannable(Exception):
    """The shape uses a construct the planner does not model: such resources get full validation."""


_Check = tuple[int, Callable[[Any], Any], set[Any], str]
"""One leaf to check: its index among the leaves, the validator of its field type, the values of its
type already found valid for that field type, and its path for the error message."""
_LEAF_KINDS = frozenset({str, int, float, bool})
"""Leaf values the planner checks by value (hashable JSON scalars); any other leaf gets full validation."""


class ShapeCachedValidator:
    def __init__(self) -> None:
        self._plans: dict[Shape, list[_Check] | None] = {}
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        self._seen: dict[tuple[str, type], set[Any]] = {}
        self._fields: dict[type[BaseModel], dict[str, Any]] = {}
        self._elements: dict[tuple[type[BaseModel], str], tuple[Any, str]] = {}
        self.full_validations = 0

    def problem(self, resource: dict[str, Any]) -> str | None:
        """None when ``resource`` is valid for its R4B model, else the first problem as text."""
        if resource.get("resourceType") == "Bundle" and isinstance(resource.get("entry"), list):
            return self._bundle_problem(resource)
        return self._problem(resource)

    def _bundle_problem(self, bundle: dict[str, Any]) -> str | None:
        """A Bundle as the full model checks it: its entries' resources each with the model their
        resourceType names (what Bundle.entry.resource's validator does), and the Bundle without them. Each
        part has a shape that recurs (a MeasureReport, a DetectedIssue, entries of a count), where whole
        Bundles, of every patient's own makeup, hardly ever do."""
        entries = bundle["entry"]
        skeleton_entries: list[Any] = []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                inner = entry["resource"]
                kind = inner.get("resourceType")
                if not isinstance(kind, str):  # fhir.resources itself raises TypeError on this
                    return "failed FHIR R4B validation at Bundle.entry.resource.resourceType: not a type"
                if kind not in MODELS:
                    return self._worded(bundle)  # a type we do not write: the full model decides
                problem = self._problem(inner)
                if problem is not None:
                    return self._worded(bundle) or problem
                skeleton_entries.append({k: v for k, v in entry.items() if k != "resource"})
            else:
                skeleton_entries.append(entry)
        problem = self._problem({**bundle, "entry": skeleton_entries})
        if problem is not None:
            return self._worded(bundle) or problem
        return None

    def _problem(self, resource: dict[str, Any]) -> str | None:
        tokens: list[Any] = []
        leaves: list[Any] = []
        tokens.append(tuple(resource))
        _walk(resource.values(), tokens, leaves)
        shape = tuple(tokens)
        plan = self._plans.get(shape, _UNSEEN)
        if plan is not None and plan is not _UNSEEN:
            problem = self._check(plan, leaves)
            if problem is None:
                return None
            return self._worded(resource) or problem
        return self._full(resource, shape)

    @staticmethod
    def _worded(resource: dict[str, Any]) -> str | None:
        """The problem the fast path found, as the full model words it for a shape not seen before: the
        text must not depend on which shapes this process (one of several workers) validated first.
        Invalid output is rare; its verdict was reached already, so this is no full validation."""
        try:
            MODELS[resource["resourceType"]].model_validate(resource)
        except ValidationError as exc:
            return first_problem(exc)
        return None

    def _full(self, resource: dict[str, Any], shape: Shape) -> str | None:
        self.full_validations += 1
        try:
            MODELS[resource["resourceType"]].model_validate(resource)
        except ValidationError as exc:
            return first_problem(exc)  # an invalid shape is not remembered: values may differ next time
        if len(self._plans) >= MAX_SHAPES:
            self._plans.clear()
        leaves: list[tuple[str | None, Any, str]] = []
        try:
            self._plan(MODELS[resource["resourceType"]], resource, leaves, resource["resourceType"])
        except _Unplannable:
            self._plans[shape] = None
        else:
            self._plans[shape] = [
                (index, self._adapters[field_type].validate_python, self._seen_set(field_type, value), path)
                for index, (field_type, value, path) in enumerate(leaves)
                if field_type is not None
            ]
        return None

    @staticmethod
    def _check(plan: list[_Check], leaves: list[Any]) -> str | None:
        for index, validate, seen, path in plan:
            value = leaves[index]
            if value in seen:
                continue
            try:
                validate(value)
            except ValidationError as exc:
                return f"failed FHIR R4B validation at {path}: {exc.errors()[0]['msg']}"
            if len(seen) >= MAX_REMEMBERED:
                seen.clear()
            seen.add(value)
        return None

    def _seen_set(self, field_type: str, value: Any) -> set[Any]:
        """Valid values are remembered per field type and per Python type (the shape fixes the latter at
        each leaf, so equal values are the same value: True and 1, or 1 and 1.0, never share a set)."""
        key = (field_type, type(value))
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = set()
        return found

    # ------------------------------------------------------------------------------------------ planning

    def _field_annotations(self, model: type[BaseModel]) -> dict[str, Any]:
        found = self._fields.get(model)
        if found is None:
            found = {}
            for name, info in model.model_fields.items():
                found[info.alias or name] = info.annotation
                found.setdefault(name, info.annotation)
            self._fields[model] = found
        return found

    def _element_type(self, model: type[BaseModel], key: str) -> tuple[Any, str]:
        """The element type of field ``key`` of ``model`` and the key of its validator (made once)."""
        found = self._elements.get((model, key))
        if found is None:
            fields = self._field_annotations(model)
            if key not in fields:
                raise _Unplannable(f"{model.__name__}.{key}")
            annotation = _unwrap(fields[key])
            type_key = repr(annotation)
            if type_key not in self._adapters:
                self._adapters[type_key] = TypeAdapter(annotation)
            found = self._elements[(model, key)] = (annotation, type_key)
        return found

    def _plan(self, model: type[BaseModel], data: dict[str, Any], plan: list[Any], path: str) -> None:
        """Append, in document order, one (field type or None, value, path) per leaf of ``data``."""
        for key, value in data.items():
            where = f"{path}.{key}"
            if key == "resourceType":
                plan.append((None, None, where))  # part of the shape: nothing left to check
                continue
            self._plan_value(*self._element_type(model, key), value, plan, where)

    def _plan_value(self, annotation: Any, type_key: str, value: Any, plan: list[Any], path: str) -> None:
        kind = type(value)
        if kind is list:
            for index, child in enumerate(value):
                self._plan_value(annotation, type_key, child, plan, f"{path}.{index}")
            return
        if kind is dict:
            klass = getattr(annotation, "get_model_klass", None)
            model = klass() if klass is not None else annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise _Unplannable(f"{annotation}")
            if "resourceType" in value and model.__name__ != value["resourceType"]:
                raise _Unplannable("a contained resource")
            self._plan(model, value, plan, path)
            return
        if value is None:  # whether null may stand here is structure: the full validation settled it
            plan.append((None, None, path))
            return
        if kind not in _LEAF_KINDS:
            raise _Unplannable(f"a {kind.__name__} value")
        plan.append((type_key, value, path))


_VALIDATOR = ShapeCachedValidator()


def problem_of(resource: dict[str, Any]) -> str | None:
    """The process-wide validator: the first problem of ``resource`` as text, or None when it is valid."""
    return _VALIDATOR.problem(resource)
