"""Property tests of the rules loader: an arbitrary rules table (random changes to the shipped one, or any
YAML at all) is either refused with problems a person can act on (file:line: field: message) or loaded; and
a table that loads runs over the fixtures without crashing."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_cat2.errors import RulesError
from fhir_cat2.pipeline import Pipeline, RunOptions
from fhir_cat2.rules.loader import load_rules
from fhir_cat2.sources.files import iter_input_files, read_file

from ..conftest import ROOT, MemorySink
from .test_input_properties import BUG, _paths, json_values

SHIPPED = yaml.safe_load((resources.files("fhir_cat2") / "data" / "rules.yaml").read_text(encoding="utf-8"))
SHIPPED.pop("include")  # the main file alone: mutated copies are written without the measure files
FIXTURE_FILES = list(iter_input_files([str(ROOT / "fixtures")]))


def load(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_rules(path)
    except RulesError as exc:
        assert exc.problems, "refused without saying why"
        for problem in exc.problems:
            assert isinstance(problem, str) and problem.startswith(str(path)), problem
        return None


@st.composite
def mutated_tables(draw: st.DrawFn) -> Any:
    table = yaml.safe_load(yaml.safe_dump(SHIPPED))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(table)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = table
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add", "number"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
        elif action == "number":
            parent[path[-1]] = draw(st.sampled_from([-1, 0, 10**12, 1e308, -0.0, 2.5]))
        else:
            parent[path[-1]] = draw(json_values)
    return table


@settings(max_examples=max(10, settings.default.max_examples // 3))  # each example replays the fixtures
@given(table=mutated_tables())
def test_a_mutated_rules_table_is_refused_clearly_or_runs_without_crashing(tmp_path_factory, table):
    ruleset = load(tmp_path_factory.mktemp("r"), yaml.safe_dump(table, allow_unicode=True))
    if ruleset is None:
        return
    sink = MemorySink()
    try:
        pipeline = Pipeline(ruleset, RunOptions(period_year=2025), sink)
    except RulesError:
        return
    for path in FIXTURE_FILES:
        pipeline.ingest(read_file(path))
    pipeline.run()
    assert not [q.reason for q in sink.quarantined if BUG in q.reason]


@given(text=st.text(max_size=200))
def test_any_text_as_a_rules_table_is_refused_with_a_reason(tmp_path_factory, text):
    assert load(tmp_path_factory.mktemp("t"), text) is None or text.strip()
