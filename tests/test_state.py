"""Sync state: watermarks per server and type, committed together, never backwards, with an overlap window;
and the example configuration with its live-server sections loads as documented."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

from fhir_cat2.config import load_config
from fhir_cat2.state import SyncState, format_instant, format_until

from .conftest import ROOT

A = "https://a.example/fhir"
B = "https://b.example/fhir"


def test_watermarks_are_per_server_and_type_and_never_move_backwards(tmp_path):
    state = SyncState(tmp_path / "s.sqlite")
    t1 = datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    state.commit_watermarks(A, {"Encounter": t1, "Observation": t1})
    state.commit_watermarks(B, {"Encounter": t1 + timedelta(hours=1)})
    state.commit_watermarks(A, {"Encounter": t1 - timedelta(days=1)})  # older: ignored
    assert state.watermarks(A) == {"Encounter": t1, "Observation": t1}
    assert state.watermark(B, "Encounter") == t1 + timedelta(hours=1)
    window = state.window(A, "Encounter", t1 + timedelta(hours=2), timedelta(minutes=5))
    assert window.since == t1 - timedelta(minutes=5) and window.until == t1 + timedelta(hours=2)
    assert state.window(A, "Procedure", t1, timedelta(minutes=5)).since is None  # never synced: everything
    state.close()
    reopened = SyncState(tmp_path / "s.sqlite")
    assert reopened.watermarks(A)["Observation"] == t1
    reopened.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600


def test_each_job_keeps_its_own_watermarks(tmp_path):
    state = SyncState(tmp_path / "s.sqlite")
    t1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    state.commit_watermarks(A, {"Encounter": t1}, job="hedis-job")
    state.commit_watermarks(A, {"Encounter": t1 + timedelta(hours=3), "Patient": t1}, job="mips-job")
    assert state.watermarks(A, "hedis-job") == {"Encounter": t1}
    assert state.watermarks(A, "mips-job") == {"Encounter": t1 + timedelta(hours=3), "Patient": t1}
    assert state.watermarks(A) == {}  # no job '' ran
    assert state.window(A, "Patient", t1 + timedelta(hours=4), timedelta(0), "hedis-job").since is None
    assert state.watermarks(A, None) == {"Encounter": t1 + timedelta(hours=3), "Patient": t1}  # any job
    state.close()


def test_a_schema_2_state_file_is_migrated_keeping_its_watermarks_and_runs(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        CREATE TABLE watermark (server TEXT NOT NULL, resource_type TEXT NOT NULL, high_water TEXT NOT NULL,
            run_id TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (server, resource_type));
        INSERT INTO watermark VALUES ('https://a.example/fhir', 'Encounter', '2026-01-01T10:00:00.000Z',
            'r1', '2026-01-01T10:00:01.000Z');
        """
    )
    db.commit()
    db.close()
    state = SyncState(path)
    t1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert state.watermarks(A) == {"Encounter": t1}  # kept, as job ''
    assert state.watermarks(A, "some-job") == {}  # which no job of ours reads: its first run reads all
    state.commit_watermarks(A, {"Encounter": t1 + timedelta(days=1)}, job="some-job")
    assert state.watermarks(A, "some-job") == {"Encounter": t1 + timedelta(days=1)}
    version = state._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == "4"
    state.close()
    assert SyncState(path).watermarks(A) == {"Encounter": t1}  # opening again changes nothing


def test_job_key_follows_what_a_run_derives_and_where_it_writes():
    from dataclasses import replace

    from fhir_cat2.pipeline import RunOptions
    from fhir_cat2.rules.loader import load_rules
    from fhir_cat2.sync import LiveSettings, job_key

    rules = load_rules()
    settings = LiveSettings(base_url=A, state_path="s", out="o")
    base = RunOptions()
    key = job_key(settings, rules, base)
    assert len(key) == 16 and key == job_key(settings, rules, RunOptions())  # stable
    assert job_key(replace(settings, since=datetime(2020, 1, 1, tzinfo=UTC)), rules, base) == key
    different = [
        job_key(settings, rules, replace(base, program="mips-claims")),
        job_key(settings, rules, replace(base, emit=frozenset({"claim"}))),
        job_key(settings, rules, replace(base, measures=("CMS165",))),
        job_key(settings, rules, replace(base, report="both")),
        job_key(settings, rules, replace(base, period_year=2024)),
        job_key(replace(settings, write_to=B), rules, base),
    ]
    assert len({key, *different}) == 1 + len(different)

    edited = load_rules()
    edited.table = edited.table.model_copy(update={"code_rules": edited.table.code_rules[:-1]})
    assert job_key(settings, edited, base) != key

    # a value set that keeps Observations by their value's code (CMS646's staging result) expands to one
    # code fewer: the rules table is the same, what a full read keeps is not
    screened = load_rules()
    kept = screened.value_screened_codes()
    assert kept["Observation"], "the shipped rules keep some Observations by their value's code"
    fewer = {**kept, "Observation": frozenset(sorted(kept["Observation"])[1:])}
    screened.value_screened_codes = lambda: fewer  # type: ignore[method-assign]
    assert job_key(settings, screened, base) != key


def test_run_records(tmp_path):
    state = SyncState(tmp_path / "s.sqlite")
    state.start_run("r1", "sync", A, None, "2026-01-01T00:00:00.000Z")
    state.finish_run("r1", "completed", "{}")
    assert state._db.execute("SELECT status FROM run WHERE id='r1'").fetchone() == ("completed",)
    state.close()


def test_instant_formats():
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_instant(when) == "2026-01-02T03:04:05.678Z"
    assert format_until(when) == "2026-01-02T03:04:05.678Z"
    assert format_until(when.replace(microsecond=0)) == "2026-01-02T03:04:05Z"  # a whole second covers it all


def test_example_configuration_loads():
    config = load_config(ROOT / "config.example.yaml", environ={})
    assert config.write.strategy == "update" and config.sync.overlap_minutes == 5
    assert config.server.retry.attempts == 6 and config.server.auth.type == "none"


def test_a_concept_map_of_visit_types_starts_the_job_afresh(tmp_path):
    """Encounter and Condition codes are in no relevant-codes set (kept whole), so a map that makes a local
    visit type count must change the job key itself: else the old bookmarks hide the visits it now counts."""
    import json

    from fhir_cat2.conceptmaps import load_concept_maps
    from fhir_cat2.pipeline import RunOptions
    from fhir_cat2.rules.loader import load_rules
    from fhir_cat2.sync import LiveSettings, job_key

    visit_map = {
        "resourceType": "ConceptMap",
        "url": "http://example.org/cm/visits",
        "status": "active",
        "group": [
            {
                "source": "http://example.org/visit-types",
                "target": "http://www.ama-assn.org/go/cpt",
                "element": [{"code": "OFFICE", "target": [{"code": "99213", "equivalence": "equivalent"}]}],
            }
        ],
    }
    (tmp_path / "visits.json").write_text(json.dumps(visit_map))
    settings = LiveSettings(base_url=A, state_path="s", out="o")
    plain = job_key(settings, load_rules(), RunOptions())
    mapped = job_key(settings, load_rules(concept_maps=load_concept_maps(tmp_path)), RunOptions())
    assert plain != mapped
    assert plain == job_key(settings, load_rules(concept_maps=load_concept_maps(None)), RunOptions())
