"""Records pickle as (class, field values) for the grouper's spill: every record class round-trips."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime

from fhir_cat2.sources import records
from fhir_cat2.sources.records import ResourceRecord, Src, When

from .support.fieldmaps import same

WHEN = When(date(2025, 3, 4), date(2025, 3, 5), datetime(2025, 3, 4, 9, tzinfo=UTC), None)


def _example(cls: type) -> object:
    """An instance with every field set to something other than its default."""
    values: dict[str, object] = {}
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else None
        if field.name == "src":
            values[field.name] = Src("file.json", "entry[3]")
        elif field.type in ("When | None",):
            values[field.name] = WHEN
        elif isinstance(default, bool):
            values[field.name] = not default
        elif isinstance(default, frozenset):
            values[field.name] = frozenset({("http://loinc.org", field.name)})
        elif field.name == "quantity":
            values[field.name] = records.QuantityValue(7.5, "mm[Hg]", "<")
        elif field.name == "components":
            values[field.name] = (records.ComponentRecord(frozenset({("s", "c")}), None, True),)
        else:
            values[field.name] = f"{field.name}-value"
    return cls(**values)


def test_every_record_class_round_trips_through_pickle() -> None:
    classes = [records.QuantityValue, records.ComponentRecord, Src, When, *ResourceRecord.__subclasses__()]
    assert len(classes) > 10
    for cls in classes:
        record = _example(cls) if cls not in (Src, When) else (Src("f", "line 2") if cls is Src else WHEN)
        back = pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        assert same(back, record), cls.__name__
