"""Exceptions of fhir-cat2: one root, families by what the caller should do.

    FhirCat2Error                       root; never raised itself
    ├── ConfigError                     refuse before any work (exit 2); also a token URL that is no
    │                                   OAuth token endpoint (404, a web page)
    │   ├── ConfigFileError             the configuration is invalid: names file and line, or the variable
    │   ├── RulesError                  a rules table is invalid: names file, line, field
    │   └── TlsVerificationError        the server's certificate is not trusted (exit 2: fix the CA bundle)
    ├── InputError                      skip this item and quarantine it; the run goes on
    ├── LockHeldError                   another run holds the state lock (exit 5)
    └── ServerError                     a FHIR server answered badly; carries its OperationOutcome
        ├── AuthError                   401/403 or a token endpoint refused us (exit 3)
        ├── RetryableServerError        429, 5xx, connection error, read timeout: retry with backoff
        │   └── ServerUnavailableError  still failing after the retry budget, or https:// to a plain-HTTP
        │       │                       port (exit 4, raised at once: retrying will not help)
        │       └── BulkExportError     a Bulk Data export the server would not give us (exit 4): kick-off
        │           │                   refused (its OperationOutcome summarised), export failed, a file
        │           │                   that stayed unreadable, a manifest that is no manifest
        │           ├── BulkExportTimeout  still running after the configured wait (exit 7; the next run
        │           │                   resumes polling the same export)
        │           └── BulkExportExpired  the status URL or a file is gone (404/410): kick off again
        ├── ResourceGoneError           404/410
        ├── PreconditionFailedError     412 (If-Match lost a race, or an ambiguous conditional write)
        └── FatalServerError            any other 4xx: fail at once, do not retry

The CLI maps families to exit codes (``fhir_cat2.cli.EXIT_*``); stages raise the narrowest type.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

__all__ = [
    "AuthError",
    "BulkExportError",
    "BulkExportExpired",
    "BulkExportTimeout",
    "ConfigError",
    "ConfigFileError",
    "FatalServerError",
    "FhirCat2Error",
    "InputError",
    "LockHeldError",
    "PreconditionFailedError",
    "QuarantineKind",
    "ResourceGoneError",
    "RetryableServerError",
    "RulesError",
    "ServerError",
    "ServerUnavailableError",
    "TlsVerificationError",
    "outcome_summary",
]


class FhirCat2Error(Exception):
    """Root of every error fhir-cat2 raises on purpose."""


class ConfigError(FhirCat2Error):
    """Bad configuration or option: stop before doing any work."""


class ConfigFileError(ConfigError):
    """The configuration is invalid. ``problems`` lists each as 'file:line: field: message', or for a value
    from the environment 'FHIR_CAT2_SECTION__KEY: field: message'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class RulesError(ConfigError):
    """A rules table is invalid. ``problems`` lists every problem as 'file:line: field: message'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s) in rules table:\n  " + "\n  ".join(problems))


class TlsVerificationError(ConfigError):
    """The server's TLS certificate could not be verified against the trusted CAs."""

    status: int | None = None
    outcome: dict[str, Any] | None = None
    retry_after: float | None = None
    diagnostics = ""


class QuarantineKind(StrEnum):
    """What sent an item to quarantine: data-free, for counting (see ``fhir_cat2.quarantine``)."""

    INVALID_JSON = "invalid-json"
    UNREADABLE_FILE = "unreadable-file"
    UNREADABLE_CONTENT = "unreadable-content"
    """A compressed file that is corrupt or cut short."""
    NOT_FHIR = "not-fhir"
    MALFORMED_RESOURCE = "malformed-resource"
    MALFORMED_BUNDLE = "malformed-bundle"
    NO_PATIENT_REFERENCE = "no-patient-reference"
    UNKNOWN_CODE_SYSTEM = "unknown-code-system"
    UNCONVERTIBLE_UNIT = "unconvertible-unit"
    MISSING_UNIT = "missing-unit"
    IMPLAUSIBLE_VALUE = "implausible-value"
    VALUE_WITH_COMPARATOR = "value-with-comparator"
    TEXT_VALUE = "text-value"
    UNDATED_OBSERVATION = "undated-observation"
    OUTPUT_VALIDATION = "output-validation"
    EVALUATION_FAILED = "evaluation-failed"
    """Evaluating a patient raised: a bug to report (the entry names the exception type only)."""
    WRITE_BACK = "write-back"
    """The write server refused a write, or could not take it."""
    EXPORT_ERROR = "export-error"
    """A Bulk Data export's error file reported something the server could not export."""


class InputError(FhirCat2Error):
    """One input item cannot be used; it goes to quarantine with this message as the reason and ``kind`` as
    its category (set where the problem is found, never read out of the message)."""

    def __init__(self, message: str, kind: QuarantineKind = QuarantineKind.MALFORMED_RESOURCE) -> None:
        super().__init__(message)
        self.kind = kind


class LockHeldError(FhirCat2Error):
    """Another run holds the lock of the state store."""


def _issues(outcome: dict[str, Any] | None) -> list[dict[str, Any]]:
    issues = (outcome or {}).get("issue") or []
    return [issue for issue in issues if isinstance(issue, dict)] if isinstance(issues, list) else []


def _outcome_diagnostics(outcome: dict[str, Any] | None) -> str:
    parts = []
    for issue in _issues(outcome):
        details = issue.get("details")
        text = (
            issue.get("diagnostics")
            or (details.get("text") if isinstance(details, dict) else None)
            or issue.get("code")
        )
        if text:
            parts.append(f"{issue.get('severity', 'error')}: {text}")
    return "; ".join(parts)


_ELEMENT_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[\d+\])*")
_ISSUE_CODE = re.compile(r"[a-z][a-z-]{0,39}")
_SEVERITIES = ("fatal", "error", "warning", "information")


def outcome_summary(outcome: dict[str, Any] | None) -> str:
    """An OperationOutcome as it may be logged: each issue's severity, code and element paths. Never its
    diagnostics or details text: servers echo search URLs and resource content there (names, values)."""
    parts = []
    for issue in _issues(outcome):
        severity = issue.get("severity") if issue.get("severity") in _SEVERITIES else "error"
        code = issue.get("code")
        text = (
            f"{severity}: {code if isinstance(code, str) and _ISSUE_CODE.fullmatch(code) else 'unspecified'}"
        )
        paths = issue.get("expression") or issue.get("location") or []
        where = [p for p in paths if isinstance(p, str) and _ELEMENT_PATH.fullmatch(p)][:3]
        if where:
            text += f" at {', '.join(where)}"
        parts.append(text)
    return "; ".join(parts)


class ServerError(FhirCat2Error):
    """A FHIR server answered with an error. Keeps the status and the server's OperationOutcome.

    Its message (what stderr, the logs and the run record show) summarises the OperationOutcome by issue
    codes and element paths only; the diagnostics text, which can quote patient data, is kept in
    ``diagnostics`` for quarantine.ndjson (see ``with_diagnostics``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.outcome = outcome
        self.retry_after = retry_after
        self.message = message
        self.diagnostics = _outcome_diagnostics(outcome)
        summary = outcome_summary(outcome)
        super().__init__(message if not summary else f"{message} (server: {summary})")

    def with_diagnostics(self) -> str:
        """The message and the server's own words: for quarantine.ndjson (owner-only), never for logs."""
        return f"{self}; server diagnostics: {self.diagnostics}" if self.diagnostics else str(self)


class AuthError(ServerError):
    """Authentication or authorisation refused."""


class RetryableServerError(ServerError):
    """A transient failure worth retrying."""


class ServerUnavailableError(RetryableServerError):
    """The server stayed unavailable for the whole retry budget."""


class ResourceGoneError(ServerError):
    """404 or 410."""


class PreconditionFailedError(ServerError):
    """412: a version check failed or a conditional write matched several resources."""


class FatalServerError(ServerError):
    """A 4xx that retrying will not fix."""


class BulkExportError(ServerUnavailableError):
    """A Bulk Data export could not be had from the server."""


class BulkExportTimeout(BulkExportError):
    """The export was still running when the configured wait ran out; the server may still finish it, and a
    run that resumes from its status URL picks it up."""


class BulkExportExpired(BulkExportError):
    """The export's status URL or one of its files is gone (404/410): expired or deleted on the server."""
