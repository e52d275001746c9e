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
from typing import Any

from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import BaseModel, TypeAdapter, ValidationError

MODELS: dict[str, type[BaseModel]] = {"Claim": Claim, "MeasureReport": MeasureReport}
MAX_REMEMBERED = 20_000
"""Valid values remembered per leaf type (ids and references are mostly unique: keep memory bounded)."""

Shape = tuple[Any, ...]
_NONE = type(None)
MAX_SHAPES = 5_000


def first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"failed FHIR R4B validation at {loc}: {first['msg']}"


def _walk(value: Any, tokens: list[Any], leaves: list[Any]) -> None:
    """One pass: the shape tokens (keys, brackets, leaf types) and the leaf values, in document order."""
    kind = type(value)
    if kind is dict:
        tokens.append("{")
        for key, child in value.items():
            tokens.append(key)
            _walk(child, tokens, leaves)
        tokens.append("}")
    elif kind is list:
        tokens.append("[")
        for child in value:
            _walk(child, tokens, leaves)
        tokens.append("]")
    else:
        tokens.append(kind)
        leaves.append(value)


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


class ShapeCachedValidator:
    def __init__(self) -> None:
        self._plans: dict[Shape, list[tuple[TypeAdapter[Any], set[Any], str]] | None] = {}
        self._adapters: dict[str, tuple[TypeAdapter[Any], set[Any]]] = {}
        self._fields: dict[type[BaseModel], dict[str, Any]] = {}
        self.full_validations = 0

    def problem(self, resource: dict[str, Any]) -> str | None:
        """None when ``resource`` is valid for its R4B model, else the first problem as text."""
        tokens: list[Any] = []
        leaves: list[Any] = []
        _walk(resource, tokens, leaves)
        shape = tuple(tokens)
        if shape in self._plans:
            plan = self._plans[shape]
            if plan is not None:
                return self._check(plan, leaves)
        return self._full(resource, shape)

    def _full(self, resource: dict[str, Any], shape: Shape) -> str | None:
        self.full_validations += 1
        try:
            MODELS[resource["resourceType"]].model_validate(resource)
        except ValidationError as exc:
            return first_problem(exc)  # an invalid shape is not remembered: values may differ next time
        if len(self._plans) >= MAX_SHAPES:
            self._plans.clear()
        plan: list[tuple[TypeAdapter[Any], set[Any], str]] = []
        try:
            self._plan(MODELS[resource["resourceType"]], resource, plan, resource["resourceType"])
        except _Unplannable:
            self._plans[shape] = None
        else:
            self._plans[shape] = plan
        return None

    @staticmethod
    def _check(plan: list[tuple[TypeAdapter[Any], set[Any], str]], leaves: list[Any]) -> str | None:
        for (adapter, seen, path), value in zip(plan, leaves, strict=True):
            if adapter is None:
                continue
            key = (type(value), value)
            if key in seen:
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                return f"failed FHIR R4B validation at {path}: {exc.errors()[0]['msg']}"
            if len(seen) >= MAX_REMEMBERED:
                seen.clear()
            seen.add(key)
        return None

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

    def _adapter(self, annotation: Any) -> tuple[TypeAdapter[Any], set[Any]]:
        key = repr(annotation)
        found = self._adapters.get(key)
        if found is None:
            found = (TypeAdapter(annotation), set())
            self._adapters[key] = found
        return found

    def _plan(self, model: type[BaseModel], data: dict[str, Any], plan: list[Any], path: str) -> None:
        """Append, in document order, one (validator, remembered values, path) per leaf of ``data``."""
        fields = self._field_annotations(model)
        for key, value in data.items():
            where = f"{path}.{key}"
            if key == "resourceType":
                plan.append((None, None, where))  # part of the shape: nothing left to check
                continue
            if key not in fields:
                raise _Unplannable(f"{model.__name__}.{key}")
            self._plan_value(_unwrap(fields[key]), value, plan, where)

    def _plan_value(self, annotation: Any, value: Any, plan: list[Any], path: str) -> None:
        if isinstance(value, list):
            for index, child in enumerate(value):
                self._plan_value(annotation, child, plan, f"{path}.{index}")
            return
        if isinstance(value, dict):
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
        adapter, seen = self._adapter(annotation)
        plan.append((adapter, seen, path))


_VALIDATOR = ShapeCachedValidator()


def problem_of(resource: dict[str, Any]) -> str | None:
    """The process-wide validator: the first problem of ``resource`` as text, or None when it is valid."""
    return _VALIDATOR.problem(resource)
