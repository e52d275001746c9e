"""FHIR values the field maps read: dates and dateTimes, references, and the QI-Core names they look for."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson

from ..errors import InputError
from .records import When

Resolver = Callable[[str], str]
"""Maps a reference string as written (urn:uuid:…, absolute URL, Type/id) to 'Type/id'."""

REQUEST_TYPES = frozenset({"ServiceRequest", "MedicationRequest", "DeviceRequest"})
"""Orders: QI-Core times them by when they were authored."""
REASON_EXTENSIONS = ("qicore-notDoneReason", "qicore-doNotPerformReason")
DO_NOT_PERFORM_EXTENSION = "qicore-doNotPerform"
RECORDED_EXTENSION = "qicore-recorded"
"""QI-Core 4.1.1 ProcedureNotDone.recorded: when the act was recorded as not done (valueDateTime)."""


# ----------------------------------------------------------------------------------------------- times


def _month_end(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def parse_when(value: str, field: str) -> When:
    """FHIR date or dateTime -> When. Partial dates cover their whole month or year."""
    try:
        n = len(value)
        if n == 4:
            y = int(value)
            return When(date(y, 1, 1), date(y, 12, 31))
        if n == 7:
            y, m = int(value[:4]), int(value[5:7])
            return When(date(y, m, 1), date(y, m, _month_end(y, m)))
        day = date.fromisoformat(value[:10])
        if n == 10:
            return When(day, day, datetime(day.year, day.month, day.day, tzinfo=UTC))
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return When(day, day, instant)
    except ValueError as exc:
        raise InputError(f"{field}: '{value}' is not a FHIR date or dateTime") from exc


# ----------------------------------------------------------------------------------------------- refs


def split_ref(ref: str) -> tuple[str, str] | None:
    """'Type/id' -> (Type, id); None for anything else."""
    type_, sep, id_ = ref.partition("/")
    if not sep or not id_ or "/" in id_:
        return None
    return type_, id_


def plain_resolver(ref: str) -> str:
    """Resolve a reference with no bundle context: absolute URLs and _history suffixes are cut to Type/id."""
    if ref.startswith(("http://", "https://")):
        parts = ref.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2:
            return f"{parts[-2]}/{parts[-1]}"
    elif "/_history/" in ref:
        return ref.split("/_history/")[0]
    return ref


def patient_id_of(ref: str | None) -> str | None:
    """The id of a resolved 'Patient/id' reference; None for anything else."""
    if not ref:
        return None
    parts = split_ref(ref)
    if parts is None or parts[0] != "Patient":
        return None
    return parts[1]


def content_id(resource: dict[str, Any]) -> str:
    """A stable id for a resource that arrived without one: a hash of its content."""
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"sha256-{digest[:32]}"
