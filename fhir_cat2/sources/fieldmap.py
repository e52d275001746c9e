"""Field maps: for each record field, the FHIR elements it reads and how; compiled once into a fast reader.

A map (see ``fields.py``) lists, per field of a ``records`` class, a reading spec: which element or
elements (``"code"``, ``"hospitalization.dischargeDisposition"``, ``"participant[].individual"``), of which
FHIR type, converted how (codes, a reference, a time...), required or not. From one map come two things:

- the **fast reader**: Python source generated from the specs and compiled once per type (as dataclasses
  builds ``__init__``): one function that reads the parsed JSON with the exact-type readers of
  ``readers.py`` and calls the record class positionally. A generic interpreter walking the map per
  resource would be several times slower; this runs as fast as the hand-written reader it replaced.
- the **validation model**: a pydantic model of exactly the elements the specs declare (``create_model``
  from the datatypes in ``fhir_models.py``). It builds no records: when the fast reader declines a
  resource (a wrong JSON type, a bad date), the model names the failing field; when pydantic accepts what
  the fast reader would not (a number in a string), its dump, exact JSON, is read by the fast reader.

So a field a measure needs is one entry in its map, and the two can never disagree on what is read.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from ..errors import InputError
from . import fhir_models as fm
from . import readers
from .records import ResourceRecord, Src
from .values import Resolver

Reader = Callable[[dict[str, Any], Src, Resolver, str], ResourceRecord]


# ----------------------------------------------------------------------------------------------- specs


class _Source:
    """Builds a reader's source: helper names for the namespace, fresh local names."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            name: getattr(readers, name) for name in dir(readers) if not name.startswith("_")
        }
        self.functions: list[str] = []
        self.prelude: list[str] = []
        """Statements of the function being written, before its return."""
        self.shared_vars: dict[Any, str] = {}
        """Readings held in locals of the function being written (see ``shared``)."""
        self._count = 0

    def shared(self, key: Any, build: Callable[[], str]) -> str:
        """A local holding the expression ``build`` makes, computed once per resource however many fields
        read it (``key`` says which reading it is)."""
        var = self.shared_vars.get(key)
        if var is None:
            expr = build()
            if key in self.shared_vars:  # the reading shares itself (a Time): it is that local
                return self.shared_vars[key]
            self._count += 1
            var = self.shared_vars[key] = f"s{self._count}"
            self.prelude.append(f"    {var} = {expr}")
        return var

    def local(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def constant(self, value: Any, hint: str) -> str:
        self._count += 1
        name = f"_{hint}{self._count}"
        self.namespace[name] = value
        return name


def _container(path: str) -> tuple[str, str]:
    """(source of the object holding the last element of a dotted path ("a.b"), that element's name).
    Absent objects on the way read as empty."""
    *parents, last = path.split(".")
    var = "r"
    for parent in parents:
        var = f"child({var}, {parent!r})"
    return var, last


def _access(path: str) -> str:
    """Source reading the raw value at a dotted path."""
    holder, name = _container(path)
    return f"{holder}.get({name!r})"


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one record field is read: the elements it declares, and the source of its value."""

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        """(path, pydantic type, required) of each element it reads."""
        return ()

    def expr(self, src: _Source) -> str:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class _Element(Spec):
    path: str
    required: bool = False
    reader = ""
    """The readers.py function that reads the raw value."""
    model: Any = None

    absent: Any = None
    """Its reading when the element is absent (the reader gives the same, at the cost of a call)."""

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        yield self.path, self.model, self.required

    def call(self) -> str:
        """The reading of the raw value, a format with {} for it."""
        return self.reader + "({})"

    def expr(self, src: _Source) -> str:
        var = src.local()
        return f"{self.read(src, var, f'({var} := {_access(self.path)})')}"

    def read(self, src: _Source, var: str, value: str | None = None) -> str:
        """The reading of ``var`` (the raw value; ``value`` assigns it) when it is there, else ``absent``."""
        absent = "None" if self.absent is None else src.constant(self.absent, "absent")
        return f"({absent} if {value or var} is None else {self.call().format(var)})"


@dataclasses.dataclass(frozen=True)
class Text(_Element):
    """A string (code, string, uri...)."""

    model: Any = str
    reader = "text"

    def expr(self, src: _Source) -> str:
        if self.required:
            return f"required_text({_access(self.path)})"
        return super().expr(src)


@dataclasses.dataclass(frozen=True)
class Integer(_Element):
    model: Any = int
    reader = "integer"


@dataclasses.dataclass(frozen=True)
class Boolean(_Element):
    model: Any = bool
    reader = "boolean"


@dataclasses.dataclass(frozen=True)
class Codes(_Element):
    """A CodeableConcept's (system, code) pairs."""

    model: Any = fm.CodeableConcept
    reader = "codes"
    absent: Any = readers.NO_CODES

    def expr(self, src: _Source) -> str:
        if self.required:
            return f"codes(required_object({_access(self.path)}))"
        return super().expr(src)


@dataclasses.dataclass(frozen=True)
class FirstCode(_Element):
    """The first code of a CodeableConcept (a status)."""

    model: Any = fm.CodeableConcept
    reader = "first_code"


@dataclasses.dataclass(frozen=True)
class CodingCode(_Element):
    """The code of a Coding."""

    model: Any = fm.Coding
    reader = "coding_code"


@dataclasses.dataclass(frozen=True)
class Present(_Element):
    """Whether a CodeableConcept is there (dataAbsentReason)."""

    model: Any = fm.CodeableConcept
    reader = "present"
    absent: Any = False


@dataclasses.dataclass(frozen=True)
class QuantityOf(_Element):
    """A Quantity with a value."""

    model: Any = fm.Quantity
    reader = "quantity"


@dataclasses.dataclass(frozen=True)
class Ref(_Element):
    """A Reference, resolved to Type/id."""

    model: Any = fm.Reference

    def call(self) -> str:
        return "ref({}, resolve)"

    def expr(self, src: _Source) -> str:
        if self.required:
            return f"ref(required_object({_access(self.path)}), resolve)"
        return super().expr(src)


@dataclasses.dataclass(frozen=True)
class Time(_Element):
    """A date or dateTime (instant) as a ``When``; an unparseable one is an error naming the element."""

    model: Any = str
    reader = "when"

    def call(self) -> str:
        return f"when({{}}, {self.path!r})"

    def expr(self, src: _Source) -> str:
        return src.shared(self, lambda: super(Time, self).expr(src))


@dataclasses.dataclass(frozen=True)
class Day(Time):
    """A date or dateTime's first day."""

    def call(self) -> str:
        return f"day({{}}, {self.path!r})"


@dataclasses.dataclass(frozen=True)
class PeriodOf(_Element):
    """A Period as a ``When``."""

    model: Any = fm.Period

    def call(self) -> str:
        return f"period({{}}, {self.path!r})"


def choice(prefix: str, *types: str) -> FirstOf:
    """A choice element (``effective[x]``), its types tried in the order given: the first one present."""
    readers_of = {"DateTime": Time, "Instant": Time, "Period": PeriodOf}
    return FirstOf(*(readers_of[type_](prefix + type_) for type_ in types))


@dataclasses.dataclass(frozen=True)
class _List(Spec):
    path: str
    model: Any = None

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        yield self.path, list[self.model], False  # type: ignore[name-defined]

    def items(self) -> str:
        holder, name = _container(self.path)
        return f"objects_at({holder}, {name!r})"


@dataclasses.dataclass(frozen=True)
class CodesOf(_List):
    """The codes of a list of CodeableConcepts."""

    model: Any = fm.CodeableConcept

    def expr(self, src: _Source) -> str:
        return f"codes_of({self.items()})"


@dataclasses.dataclass(frozen=True)
class Categories(_List):
    """The codes of a list of CodeableConcepts, systems aside."""

    model: Any = fm.CodeableConcept

    def expr(self, src: _Source) -> str:
        return f"categories({self.items()})"


@dataclasses.dataclass(frozen=True)
class ExtensionCodes(_List):
    """The codes of the extensions whose url ends in one of ``suffixes``."""

    suffixes: tuple[str, ...] = ()
    model: Any = fm.Extension

    def expr(self, src: _Source) -> str:
        return f"extension_codes({self.items()}, {src.constant(self.suffixes, 'suffixes')})"


@dataclasses.dataclass(frozen=True)
class FirstRef(Spec):
    """The first of a list of backbone elements' References that refers to something
    (``"participant[].individual"``)."""

    path: str

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        yield self.path, fm.Reference, False

    def expr(self, src: _Source) -> str:
        items, _, name = self.path.partition("[].")
        return f"first_ref(objects_at(r, {items!r}), {name!r}, resolve)"


@dataclasses.dataclass(frozen=True)
class Raw(Spec):
    """The element as parsed JSON, for ``Computed``: a list of objects, an object, or any value."""

    path: str
    model: Any = Any

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        yield self.path, self.model, False

    def expr(self, src: _Source) -> str:
        holder, name = _container(self.path)
        if getattr(self.model, "__origin__", None) is list:
            return f"objects_at({holder}, {name!r})"
        return f"{holder}.get({name!r})"


@dataclasses.dataclass(frozen=True)
class Computed(Spec):
    """``function(*inputs)``: for a field that needs several elements read together. The function checks
    the exact JSON types of the Raw inputs it reads, as the readers do."""

    function: Callable[..., Any]
    inputs: tuple[Spec, ...]
    resolve: bool = False
    """Pass the reference resolver as the last argument."""

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        for spec in self.inputs:
            yield from spec.elements()

    def expr(self, src: _Source) -> str:
        args = [spec.expr(src) for spec in self.inputs]
        if self.resolve:
            args.append("resolve")
        return f"{src.constant(self.function, self.function.__name__)}({', '.join(args)})"


def computed(function: Callable[..., Any], *inputs: Spec, resolve: bool = False) -> Computed:
    return Computed(function, inputs, resolve)


@dataclasses.dataclass(frozen=True)
class FirstOf(Spec):
    """The first of several readings that is not None (a time, a reference); all of them read, so checked."""

    choices: tuple[Spec, ...]

    def __init__(self, *choices: Spec) -> None:
        object.__setattr__(self, "choices", choices)

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        for spec in self.choices:
            yield from spec.elements()

    def expr(self, src: _Source) -> str:
        # each reading in a local first (all are read), then the first that is not None, without a call
        held = [src.shared(spec, lambda spec=spec: spec.expr(src)) for spec in self._flat()]  # type: ignore[misc]
        return "(" + " else ".join(f"{var} if {var} is not None" for var in held[:-1]) + f" else {held[-1]})"

    def _flat(self) -> Iterable[Spec]:
        for spec in self.choices:
            if isinstance(spec, FirstOf):
                yield from spec._flat()
            else:
                yield spec


@dataclasses.dataclass(frozen=True)
class FirstPresent(Spec):
    """The reading of the first of several elements that is present (not absent, not null), whatever it
    holds; all of them read, so checked. ``default`` when none is."""

    choices: tuple[_Element, ...]
    default: Any

    def __init__(self, *choices: _Element, default: Any = None) -> None:
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "default", default)

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        for spec in self.choices:
            yield from spec.elements()

    def expr(self, src: _Source) -> str:
        pairs = []
        for spec in self.choices:
            var = src.local()
            pairs.append(f"({var} := {_access(spec.path)}), {spec.read(src, var)}")
        return f"first_present({src.constant(self.default, 'default')}, {', '.join(pairs)})"


@dataclasses.dataclass(frozen=True)
class Else(Spec):
    """``primary`` when it is not empty, else ``fallback`` (both read)."""

    primary: Spec
    fallback: Spec

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        yield from self.primary.elements()
        yield from self.fallback.elements()

    def expr(self, src: _Source) -> str:
        return f"either({self.primary.expr(src)}, {self.fallback.expr(src)})"


@dataclasses.dataclass(frozen=True)
class PatientOf(Spec):
    """The patient id of a reference read by ``reference``; None when it is not a Patient."""

    reference: Spec

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        return self.reference.elements()

    def expr(self, src: _Source) -> str:
        return f"patient_of({self.reference.expr(src)})"


@dataclasses.dataclass(frozen=True)
class ResourceId(Spec):
    """The resource's own id (as the source settled it)."""

    def expr(self, src: _Source) -> str:
        return "resource_id"


@dataclasses.dataclass(frozen=True)
class Each(Spec):
    """A tuple of nested records, one per backbone element of a list (Observation.component)."""

    path: str
    map: Map

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        for path, model, required in self.map.elements():
            yield f"{self.path}[].{path}", model, required

    def expr(self, src: _Source) -> str:
        name = f"read_{self.path}"
        src.functions.append(_function_source(self.map, name, src))
        var = src.local()
        return f"tuple([{name}({var}, resolve) for {var} in objects_at(r, {self.path!r})])"


# ----------------------------------------------------------------------------------------------- maps


@dataclasses.dataclass(frozen=True, eq=False)
class Map:
    """The field map of a record class: a spec per field (fields left out keep their defaults)."""

    record: type
    fields: dict[str, Spec]

    def elements(self) -> Iterable[tuple[str, Any, bool]]:
        for spec in self.fields.values():
            yield from spec.elements()

    def but(self, **fields: Spec) -> Map:
        """This map with some fields read otherwise, or more fields read."""
        return Map(self.record, {**self.fields, **fields})


_BASE = {"last_updated": "lastUpdated", "version_id": "versionId"}
"""Record fields read from Resource.meta."""


def _function_source(field_map: Map, name: str, src: _Source, resource_type: str = "") -> str:
    """Source of the reader of ``field_map``: ``name(r, src, resolve, resource_id)``, or for a nested map
    ``name(r, resolve)``. Record fields not in the map are the resource's own (type, id, source, meta) or
    keep their defaults."""
    nested = not resource_type
    lines = [f"def {name}(r, src, resolve, resource_id):" if not nested else f"def {name}(r, resolve):"]
    outer, src.prelude = src.prelude, []
    outer_shared, src.shared_vars = src.shared_vars, {}
    if not nested:
        src.prelude.append("    text(r.get('id'))")  # checked; the source settled the id
        src.prelude.append("    meta = child(r, 'meta')")
    record = src.constant(field_map.record, field_map.record.__name__)
    args = []
    for field in dataclasses.fields(field_map.record):
        if field.name in field_map.fields:
            spec = field_map.fields[field.name]
            value = src.shared_vars.get(spec) or spec.expr(src)  # a local when another field read it
        elif not nested and field.name == "resource_type":
            value = repr(resource_type)
        elif not nested and field.name == "id":
            value = "resource_id"
        elif not nested and field.name == "src":
            value = "src"
        elif not nested and field.name in _BASE:
            value = f"text(meta.get({_BASE[field.name]!r}))"
        elif field.default is not dataclasses.MISSING:
            value = src.constant(field.default, "default")
        else:
            raise TypeError(f"{field_map.record.__name__}.{field.name} is neither in its map nor defaulted")
        args.append(f"        {value},  # {field.name}")
    lines.extend(src.prelude)
    src.prelude, src.shared_vars = outer, outer_shared
    lines.append(f"    return {record}(")
    lines.extend(args)
    lines.append("    )")
    return "\n".join(lines)


def compile_reader(field_map: Map, resource_type: str) -> tuple[Reader, str]:
    """The fast reader of ``field_map``, and its source (for tests and for reading)."""
    src = _Source()
    name = f"read_{resource_type}"
    main = _function_source(field_map, name, src, resource_type)
    source = "\n\n".join([*src.functions, main]) + "\n"
    exec(compile(source, f"<field map {resource_type}>", "exec"), src.namespace)
    return src.namespace[name], source


# ----------------------------------------------------------------------------------------------- models


def _tree(elements: Iterable[tuple[str, Any, bool]]) -> dict[str, Any]:
    """Paths -> nested dict: leaves are (type, required); "a[]" marks a list of backbone elements."""
    tree: dict[str, Any] = {}
    for path, model, required in elements:
        node = tree
        *parents, last = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                raise TypeError(f"{path}: {parent} is read both as a value and as an object")
        known = node.get(last)
        if known is not None and known != (model, required):
            raise TypeError(f"{path} is declared twice, differently: {known} and {(model, required)}")
        node[last] = (model, required)
    return tree


def _requires(tree: dict[str, Any]) -> bool:
    """Whether an object has a required element, itself or in an object (not a list) inside it."""
    return any(
        (not key.endswith("[]") and _requires(node)) if isinstance(node, dict) else node[1]
        for key, node in tree.items()
    )


def _model(name: str, tree: dict[str, Any], base: type[BaseModel] = fm.Element) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for key, node in tree.items():
        is_list = key.endswith("[]")
        element = key.removesuffix("[]")
        if isinstance(node, dict):
            nested = _model(name + element[0].upper() + element[1:], node)
            model: Any = list[nested] if is_list else nested  # type: ignore[valid-type]
            required = not is_list and _requires(node)  # an object with a required element is required
        else:
            model, required = node
        field_name = element + "_" if keyword.iskeyword(element) else element
        alias = element if field_name != element else None
        if required:
            definitions[field_name] = (model, Field(alias=alias))
        elif model is Any:
            definitions[field_name] = (Any, Field(default=None, alias=alias))
        elif getattr(model, "__origin__", None) is list:
            definitions[field_name] = (model, Field(default_factory=list, alias=alias))
        else:
            definitions[field_name] = (model | None, Field(default=None, alias=alias))
    return create_model(name, __base__=base, **definitions)


def validation_model(field_map: Map, resource_type: str) -> type[BaseModel]:
    """The pydantic model of exactly the elements ``field_map`` reads, plus resourceType, id and meta."""
    elements = [
        ("resourceType", str, True),
        ("id", str, False),
        ("meta", fm.Meta, False),  # what _BASE reads
        *field_map.elements(),
    ]
    return _model(resource_type, _tree(elements))


# ----------------------------------------------------------------------------------------------- reading


class FieldReader:
    """One resource type's compiled reader and validation model."""

    __slots__ = ("_model", "map", "read", "resource_type", "source")

    def __init__(self, field_map: Map, resource_type: str) -> None:
        self.map = field_map
        self.resource_type = resource_type
        self.read, self.source = compile_reader(field_map, resource_type)
        self._model: type[BaseModel] | None = None

    @property
    def model(self) -> type[BaseModel]:
        """The validation model, made when first needed: regular input never needs it."""
        if self._model is None:
            self._model = validation_model(self.map, self.resource_type)
        return self._model


def build_readers(maps: dict[str, Map]) -> dict[str, FieldReader]:
    return {resource_type: FieldReader(field_map, resource_type) for resource_type, field_map in maps.items()}


def _error_text(name: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        problems.append(f"{loc}: {err['msg']}")
    return f"{name} is malformed: " + "; ".join(problems)


def read_record(
    reader: FieldReader, resource: dict[str, Any], src: Src, resolve: Resolver, resource_id: str
) -> ResourceRecord:
    """The record of ``resource``. Raises InputError naming the resource and the failing field."""
    try:
        return reader.read(resource, src, resolve, resource_id)
    except (readers.Unexpected, InputError):
        pass  # pydantic decides, and names the field
    name = f"{resource['resourceType']}/{resource_id}"
    try:
        model = reader.model.model_validate(resource)
    except ValidationError as exc:
        raise InputError(_error_text(name, exc)) from None
    # What pydantic accepted, as exact JSON (a number in a string made a number), read the fast way.
    normal = model.model_dump(by_alias=True, exclude_none=True)
    try:
        return reader.read(normal, src, resolve, resource_id)
    except InputError as exc:
        raise InputError(f"{name}: {exc}", exc.kind) from None
    except readers.Unexpected:
        # The map's reader and its model disagree: a fhir-cat2 bug (the field map tests look for these).
        raise InputError(f"{name} is malformed in a way fhir-cat2 cannot name (please report it)") from None
