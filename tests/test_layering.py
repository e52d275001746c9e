"""The criteria core sits below code rules and measures: what it is built from never imports what is built on
it. Read from the source (every import statement, lazy and type-checking ones included), not by importing."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fhir_cat2"

# module (or package) -> what it must never import, however late or only for type checking
BELOW = {
    "fhir_cat2.criteria": ("fhir_cat2.measures", "fhir_cat2.rules.engine", "fhir_cat2.core", "fhir_cat2.job"),
    "fhir_cat2.rules": ("fhir_cat2.measures", "fhir_cat2.core", "fhir_cat2.job"),
    "fhir_cat2.sources.records": ("fhir_cat2.criteria", "fhir_cat2.rules", "fhir_cat2.measures"),
    "fhir_cat2.contexts": ("fhir_cat2.criteria", "fhir_cat2.rules", "fhir_cat2.measures"),
    "fhir_cat2.findings": ("fhir_cat2.criteria", "fhir_cat2.rules", "fhir_cat2.measures"),
    # inside the core: compiling knows nothing of judging, and the words nothing of either
    "fhir_cat2.criteria.plan": ("fhir_cat2.criteria.judge", "fhir_cat2.criteria.words"),
    "fhir_cat2.criteria.words": (
        "fhir_cat2.criteria.judge",
        "fhir_cat2.criteria.plan",
        "fhir_cat2.criteria.facts",
    ),
    # inside the rules table: the shared base, then the criteria language, then measures, then the table
    "fhir_cat2.rules.base": (
        "fhir_cat2.rules.criteria_schema",
        "fhir_cat2.rules.measure_schema",
        "fhir_cat2.rules.schema",
    ),
    "fhir_cat2.rules.criteria_schema": ("fhir_cat2.rules.measure_schema", "fhir_cat2.rules.schema"),
    "fhir_cat2.rules.measure_schema": ("fhir_cat2.rules.schema",),
}
# the rules table (its models, loader, timing, readings) is below the criteria too; only code rules are above
RULES_TABLE = (
    "fhir_cat2.rules.base",
    "fhir_cat2.rules.criteria_schema",
    "fhir_cat2.rules.measure_schema",
    "fhir_cat2.rules.components",
    "fhir_cat2.rules.schema",
    "fhir_cat2.rules.loader",
    "fhir_cat2.rules.timing",
    "fhir_cat2.rules.facts",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, package: str) -> set[str]:
    """Every module an import statement of ``source`` (a module of ``package``) names, however deep in the
    code it is (a ``from x import y`` names x and x.y)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(module: str) -> list[Path]:
    path = PACKAGE.parent / module.replace(".", "/")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def _violations(module: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in _files(module):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in sorted(_imports(path.read_text(), package)):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                out.append(f"{_module_name(path)} imports {imported}")
    return out


@pytest.mark.parametrize("module", sorted(BELOW))
def test_a_lower_layer_never_imports_a_higher_one(module: str) -> None:
    assert _files(module), module
    assert _violations(module, BELOW[module]) == []


@pytest.mark.parametrize("module", RULES_TABLE)
def test_the_rules_table_never_imports_the_criteria_or_code_rules(module: str) -> None:
    assert _violations(module, ("fhir_cat2.criteria", "fhir_cat2.rules.engine")) == []


LATE_IMPORTS = """
from typing import TYPE_CHECKING
from . import loader

if TYPE_CHECKING:
    from ..measures.evaluate import MeasureEvaluator


def evaluate():
    from ..measures import evaluate
    import fhir_cat2.core
"""


def test_the_import_walk_sees_lazy_and_type_checking_imports() -> None:
    names = _imports(LATE_IMPORTS, "fhir_cat2.rules")
    assert {"fhir_cat2.rules.loader", "fhir_cat2.measures.evaluate", "fhir_cat2.core"} <= names
    assert "fhir_cat2.measures.evaluate.MeasureEvaluator" in names


def test_the_measure_engine_module_is_gone_into_the_criteria_package() -> None:
    assert importlib.util.find_spec("fhir_cat2.measures.engine") is None
    for name in ("plan", "judge", "words", "facts", "spans"):
        assert importlib.util.find_spec(f"fhir_cat2.criteria.{name}") is not None
