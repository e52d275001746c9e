"""Site code mappings: FHIR R4 ConceptMaps saying that a local code counts as a standard one.

Loaded from a folder (``--concept-maps DIR``, config ``terminology.concept_maps``): every ``*.json`` file
holding a ConceptMap or a Bundle of them. A bad map is a configuration error naming the file and the element,
found before any work.

Which mappings count. R4 reads ``equivalence`` from the target to the source: ``equivalent`` and ``equal``
(the same meaning), ``wider`` (the target is wider than the source) and ``subsumes`` (the target subsumes the
source: the source is-a target) all say that whatever the local code documents is an instance of the target,
so the target may be counted. ``narrower`` and ``specializes`` (the target is narrower: not every instance of
the source is one of it), ``inexact`` and ``relatedto`` (no such promise) are read but not applied, and
``unmatched`` and ``disjoint`` never are. Mappings are not chained (a source maps to its own targets only).
Every source code a map lists counts as reviewed and is no longer reported as unrecognised, unless its only
targets are the untouched drafts ``fhir-cat2 codes suggest`` wrote (their comment starts with ``DRAFT_MARK``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from .errors import ConfigError
from .sources.records import Code
from .terminology import normalise_system

log = logging.getLogger("fhir_cat2.conceptmaps")

APPLIED = frozenset({"equivalent", "equal", "wider", "subsumes"})
"""Equivalences under which the source counts as the target (see the module docstring)."""
NOT_APPLIED = frozenset({"relatedto", "narrower", "specializes", "inexact", "unmatched", "disjoint"})
EQUIVALENCES = APPLIED | NOT_APPLIED
DRAFT_MARK = "fhir-cat2 draft:"
"""Starts the comment of a target ``codes suggest`` left for a person: until it is edited, the code is not
marked reviewed."""


class CodeMapping(NamedTuple):
    """A code a ConceptMap added to a record: ``source`` as documented, counted as ``target``."""

    source: Code
    target: Code
    map: str
    """The map's url, else its name, else its file."""

    @property
    def source_text(self) -> str:
        return _shown(self.source)

    @property
    def target_text(self) -> str:
        return _shown(self.target)

    def describe(self) -> str:
        return f"{self.source_text} counted as {self.target_text} by ConceptMap {self.map}"


def _shown(code: Code) -> str:
    return f"{code[0]}|{code[1]}" if code[0] else code[1]


@dataclass(frozen=True, slots=True)
class LoadedMap:
    label: str
    url: str | None
    name: str | None
    file: str
    applied: int
    not_applied: int

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "name": self.name,
            "file": self.file,
            "mappings_applied": self.applied,
            "mappings_not_applied": self.not_applied,
        }


@dataclass
class ConceptMaps:
    """The site's ConceptMaps, indexed by source code."""

    maps: list[LoadedMap] = field(default_factory=list)
    by_source: dict[Code, tuple[CodeMapping, ...]] = field(default_factory=dict)
    listed: set[Code] = field(default_factory=set)
    """Every source code a map lists, applied or not."""
    _cache: dict[frozenset[Code], tuple[frozenset[Code], tuple[CodeMapping, ...]]] = field(
        default_factory=dict, repr=False
    )

    def __bool__(self) -> bool:
        return bool(self.by_source)

    def targets(self) -> Iterator[tuple[Code, Code]]:
        """(source, target) of every applied mapping."""
        for source, mappings in self.by_source.items():
            for mapping in mappings:
                yield source, mapping.target

    def apply(self, codes: frozenset[Code]) -> tuple[frozenset[Code], tuple[CodeMapping, ...]]:
        """``codes`` with the targets its codes map to, and the mappings that added a code (none: the
        same set). The same code sets come back record after record: each is worked out once."""
        cached = self._cache.get(codes)
        if cached is not None:
            return cached
        used: list[CodeMapping] = []
        for code in sorted(codes):
            for mapping in self.by_source.get(code, ()):
                if mapping.target not in codes and all(mapping.target != u.target for u in used):
                    used.append(mapping)
        result = (codes | {u.target for u in used}, tuple(used)) if used else (codes, ())
        if len(self._cache) >= 8192:
            self._cache.clear()
        self._cache[codes] = result
        return result

    def load_dir(self, folder: str | os.PathLike[str]) -> int:
        """Load every ConceptMap under ``folder``; returns how many. Raises ConfigError naming the file and
        the element of the first problem."""
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"--concept-maps: '{folder}' is not a folder")
        count = 0
        for file in sorted(path.rglob("*.json")):
            for resource in _resources(file):
                self._add(resource, str(file))
                count += 1
        if count == 0:
            raise ConfigError(f"--concept-maps: no ConceptMap in {folder}")
        for loaded in self.maps:
            log.info(
                "ConceptMap %s: %d mappings applied, %d not applied (equivalence not one of %s)",
                loaded.label,
                loaded.applied,
                loaded.not_applied,
                ", ".join(sorted(APPLIED)),
            )
        return count

    def _add(self, resource: dict[str, Any], file: str) -> None:
        url = _text(resource, "url", file, "ConceptMap")
        name = _text(resource, "name", file, "ConceptMap")
        label = url or name or file
        if any(m.label == label for m in self.maps):
            raise ConfigError(f"concept map file {file}: ConceptMap {label} is loaded twice")
        groups = resource.get("group")
        if not isinstance(groups, list) or not groups:
            raise ConfigError(f"concept map file {file}: ConceptMap.group: a list of groups is required")
        applied = not_applied = 0
        for g, group in enumerate(groups):
            where = f"ConceptMap.group[{g}]"
            if not isinstance(group, dict):
                raise ConfigError(f"concept map file {file}: {where}: not an object")
            source_system = normalise_system(_text(group, "source", file, where))
            target_system = normalise_system(_text(group, "target", file, where))
            if not source_system:
                raise ConfigError(
                    f"concept map file {file}: {where}.source: the source code system is required"
                )
            elements = group.get("element")
            if not isinstance(elements, list) or not elements:
                raise ConfigError(f"concept map file {file}: {where}.element: a list of elements is required")
            for e, element in enumerate(elements):
                at = f"{where}.element[{e}]"
                if not isinstance(element, dict):
                    raise ConfigError(f"concept map file {file}: {at}: not an object")
                code = _text(element, "code", file, at)
                if not code:
                    raise ConfigError(f"concept map file {file}: {at}.code: the source code is required")
                source = (source_system, code)
                targets = element.get("target", [])
                if not isinstance(targets, list):
                    raise ConfigError(f"concept map file {file}: {at}.target: not a list")
                for t, target in enumerate(targets):
                    tat = f"{at}.target[{t}]"
                    if not isinstance(target, dict):
                        raise ConfigError(f"concept map file {file}: {tat}: not an object")
                    equivalence = _text(target, "equivalence", file, tat)
                    if equivalence not in EQUIVALENCES:
                        raise ConfigError(
                            f"concept map file {file}: {tat}.equivalence: '{equivalence or ''}' is not an R4"
                            f" equivalence ({', '.join(sorted(EQUIVALENCES))})"
                        )
                    target_code = _text(target, "code", file, tat)
                    draft = (_text(target, "comment", file, tat) or "").startswith(DRAFT_MARK)
                    if equivalence not in APPLIED:
                        not_applied += 1
                        if not draft:
                            self.listed.add(source)
                        elif target_code:
                            log.warning(
                                "concept map file %s: %s has target code %s but equivalence %s: not applied",
                                file,
                                tat,
                                target_code,
                                equivalence,
                            )
                        continue
                    if not target_code:
                        raise ConfigError(
                            f"concept map file {file}: {tat}.code: a target code is required"
                            f" for equivalence '{equivalence}'"
                        )
                    if not target_system:
                        raise ConfigError(
                            f"concept map file {file}: {where}.target: the target code system is required"
                            f" (element {code} maps to {target_code})"
                        )
                    mapping = CodeMapping(source, (target_system, target_code), label)
                    self.listed.add(source)
                    if mapping.target == source:
                        continue
                    known = self.by_source.get(source, ())
                    if all(m.target != mapping.target for m in known):
                        self.by_source[source] = (*known, mapping)
                    applied += 1
        self.maps.append(LoadedMap(label, url, name, file, applied, not_applied))


def _text(element: dict[str, Any], key: str, file: str, where: str) -> str | None:
    value = element.get(key)
    if value is None or isinstance(value, str):
        return value.strip() if isinstance(value, str) else None
    raise ConfigError(f"concept map file {file}: {where}.{key}: not a string")


def _resources(file: Path) -> Iterable[dict[str, Any]]:
    try:
        data = orjson.loads(file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"concept map file {file}: cannot read it ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"concept map file {file}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"concept map file {file}: not a JSON object")
    if data.get("resourceType") == "Bundle":
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise ConfigError(f"concept map file {file}: Bundle.entry is not a list")
        items = [e.get("resource") for e in entries if isinstance(e, dict)]
        found = [i for i in items if isinstance(i, dict) and i.get("resourceType") == "ConceptMap"]
        if not found:
            raise ConfigError(f"concept map file {file}: the Bundle holds no ConceptMap")
        return found
    if data.get("resourceType") != "ConceptMap":
        raise ConfigError(
            f"concept map file {file}: resourceType is '{data.get('resourceType')}', not ConceptMap"
        )
    return [data]


def load_concept_maps(folder: str | os.PathLike[str] | None) -> ConceptMaps:
    maps = ConceptMaps()
    if folder:
        maps.load_dir(folder)
    return maps
