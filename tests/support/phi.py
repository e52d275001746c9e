"""Patient data in test input, to prove it never reaches a log line: every Patient's names, birth date and
identifier values (of every resource) found in FHIR JSON, Bundles, NDJSON and .gz files under some paths."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _documents(path: Path) -> Iterator[Any]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        name = file.name.lower().removesuffix(".gz")
        if not name.endswith((".json", ".ndjson", ".jsonl")):
            continue
        raw = gzip.decompress(file.read_bytes()) if file.name.lower().endswith(".gz") else file.read_bytes()
        try:
            yield json.loads(raw)
        except ValueError:
            for line in raw.splitlines():
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def _resources(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("resourceType"), str):
            yield node
        for value in node.values():
            yield from _resources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _resources(value)


def collect(paths: list[Path]) -> dict[str, str]:
    """{value: what it is}. Identifier values equal to a resource id are left out: references are allowed in
    logs, and Synthea uses the Patient's id as its identifier."""
    found: dict[str, str] = {}
    ids: set[str] = set()
    identifiers: set[str] = set()
    for path in paths:
        for document in _documents(path):
            for resource in _resources(document):
                if isinstance(resource.get("id"), str):
                    ids.add(resource["id"])
                for identifier in resource.get("identifier") or []:
                    if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
                        identifiers.add(identifier["value"])
                if resource.get("resourceType") != "Patient":
                    continue
                for name in resource.get("name") or []:
                    if not isinstance(name, dict):
                        continue
                    parts = [name.get("family"), name.get("text"), *(name.get("given") or [])]
                    for part in parts:
                        if isinstance(part, str) and len(part) >= 3:
                            found[part] = "name"
                if isinstance(resource.get("birthDate"), str) and len(resource["birthDate"]) == 10:
                    found[resource["birthDate"]] = "birth date"
    for value in identifiers - ids:
        if len(value) >= 4:
            found[value] = "identifier value"
    return found


def leaks(text: str, phi: dict[str, str]) -> list[str]:
    """The patient data found in ``text`` (whole words only: 'Lee' is not in 'Sleep')."""
    hits = []
    for value, kind in phi.items():
        if value in text and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text):
            hits.append(f"{kind} {value!r}")
    return hits
