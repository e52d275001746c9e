"""Value sets by OID or canonical URL: the compact tables shipped in the package, or FHIR ValueSet
expansions a hospital downloads from VSAC (``--valuesets DIR``), which take precedence."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError
from ..sources.records import Code
from ..terminology import normalise_system


@dataclass(frozen=True, slots=True)
class ValueSet:
    oid: str | None
    url: str | None
    name: str
    version: str | None
    codes: frozenset[Code]
    origin: str


def valueset_key(ref: str) -> str:
    """The lookup key of a value-set reference: the OID when one can be read from it, else the URL."""
    ref = ref.strip()
    if ref.startswith("urn:oid:"):
        return ref[len("urn:oid:") :]
    if "/ValueSet/" in ref:
        tail = ref.split("/ValueSet/", 1)[1].split("|", 1)[0]
        if tail and all(part.isdigit() for part in tail.split(".")):
            return tail
    return ref.split("|", 1)[0]


class ValueSetRegistry:
    def __init__(self) -> None:
        self._sets: dict[str, ValueSet] = {}

    def __contains__(self, ref: str) -> bool:
        return valueset_key(ref) in self._sets

    def __len__(self) -> int:
        return len({id(v) for v in self._sets.values()})

    def get(self, ref: str) -> ValueSet:
        try:
            return self._sets[valueset_key(ref)]
        except KeyError:
            raise KeyError(ref) from None

    def codes(self, ref: str) -> frozenset[Code]:
        return self.get(ref).codes

    def add(self, valueset: ValueSet) -> None:
        for key in (valueset.oid, valueset.url):
            if key:
                self._sets[valueset_key(key)] = valueset

    @classmethod
    def shipped(cls) -> ValueSetRegistry:
        registry = cls()
        folder = resources.files("fhir_cat2") / "data" / "valuesets"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                data = orjson.loads(entry.read_bytes())
                registry.add(_from_compact(data, f"package:{entry.name}"))
        return registry

    def load_dir(self, folder: str | os.PathLike[str]) -> int:
        """Load every FHIR ValueSet JSON file under ``folder``; returns how many were loaded."""
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"--valuesets: '{folder}' is not a folder")
        count = 0
        for file in sorted(path.rglob("*.json")):
            try:
                data = orjson.loads(file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ConfigError(f"value set file {file}: not valid JSON ({exc})") from None
            if not isinstance(data, dict):
                raise ConfigError(f"value set file {file}: not a JSON object")
            if data.get("resourceType") == "Bundle":
                items: Iterable[Any] = [
                    e.get("resource") for e in data.get("entry") or [] if isinstance(e, dict)
                ]
            else:
                items = [data]
            for item in items:
                if isinstance(item, dict) and item.get("resourceType") == "ValueSet":
                    self.add(_from_fhir(item, str(file)))
                    count += 1
        return count


def _from_compact(data: dict[str, Any], origin: str) -> ValueSet:
    codes = frozenset(
        (normalise_system(system), code) for system, codes in data["codes"].items() for code in codes
    )
    return ValueSet(
        data.get("oid"), data.get("url"), data.get("name", ""), data.get("version"), codes, origin
    )


def _from_fhir(resource: dict[str, Any], origin: str) -> ValueSet:
    codes: set[Code] = set()

    def walk(contains: Any) -> None:
        for item in contains or []:
            if not isinstance(item, dict):
                continue
            if item.get("code") and item.get("system") and not item.get("abstract"):
                codes.add((normalise_system(item["system"]), str(item["code"])))
            walk(item.get("contains"))

    walk((resource.get("expansion") or {}).get("contains"))
    if not codes:  # an enumerated compose without an expansion
        for include in (resource.get("compose") or {}).get("include") or []:
            system = include.get("system")
            for concept in include.get("concept") or []:
                if system and concept.get("code"):
                    codes.add((normalise_system(system), str(concept["code"])))
    url = resource.get("url")
    oid = None
    for ident in resource.get("identifier") or []:
        value = ident.get("value", "") if isinstance(ident, dict) else ""
        if value.startswith("urn:oid:"):
            oid = value[len("urn:oid:") :]
    if oid is None and url:
        key = valueset_key(url)
        oid = key if key != url else None
    if not url and not oid:
        raise ConfigError(f"value set file {origin}: ValueSet has neither url nor an OID identifier")
    name = resource.get("name") or resource.get("title") or oid or url or ""
    return ValueSet(oid, url, name, resource.get("version"), frozenset(codes), origin)
