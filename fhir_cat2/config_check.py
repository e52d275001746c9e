"""``fhir-cat2 config check [FILE]``: is this configuration ready for an unattended run?

One line per finding, ``ok:``, ``warning:``, ``not verified:`` or ``problem:`` (``--format json``: one
document with a result per check), in this order:

1. the file: YAML, known keys, valid values, no secret written in it, environment overrides applied;
2. secrets resolved (from the environment or the files named), never printed; key types checked;
3. URLs: https, or http to this machine only (unless ``server.allow_insecure_http``); TLS files readable;
4. the rules table and value sets load; the state, output and metrics locations are writable; files that
   hold secrets are not readable by other users;
5. unless ``--offline`` or a problem above: a token from the token endpoint, then the server's
   CapabilityStatement (FHIR version, searchable types, transactions), and the same for a write server;
6. access, with the credentials sync sends (``/metadata`` is public on most servers, so 5 proves none):
   an authenticated ``_summary=count`` search (``_count=1`` where ``_summary`` is refused) per resource
   type sync reads; unless ``--dry-run``, per type written back: the search write-back makes first,
   ``$validate`` of a placeholder where the server offers it, and create/update permission from the
   token's SMART scopes. What cannot be proved without writing is reported as not verified, with why.

Exit code: 0 when there is no problem (warnings and unverified checks allowed); 2 for configuration
problems; 3 when the token endpoint or the server refuses the credentials, or a token's scope cannot
write; 4 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import AppConfig, load_config
from .errors import (
    AuthError,
    ConfigError,
    ConfigFileError,
    FatalServerError,
    FhirCat2Error,
    ServerError,
    ServerUnavailableError,
)
from .fhir import FhirClient, RetryPolicy, origin, refuse_insecure
from .job import emitted_types
from .logs import redact
from .runs import EXIT_AUTH, EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from .server_config import AuthConfig, build_auth, build_client, tls_options

if TYPE_CHECKING:
    from .rules.loader import RuleSet


LEVELS = {"ok": "ok", "warning": "warning", "not-verified": "not verified", "problem": "problem"}


@dataclass
class Finding:
    level: str
    """ok | warning | not-verified | problem"""
    text: str
    check: str | None = None
    """What was checked (--format json): 'search Patient', '$validate Claim', 'write permission Claim'"""
    exit_code: int | None = None
    """For a problem: the exit code of its kind."""


@dataclass
class Findings:
    source: str
    entries: list[Finding] = field(default_factory=list)
    problems: dict[int, int] = field(default_factory=dict)
    """exit code -> number of problems of that kind"""

    @property
    def lines(self) -> list[str]:
        return [f"{LEVELS[e.level]}: {e.text}" for e in self.entries]

    def ok(self, text: str, check: str | None = None) -> None:
        self.entries.append(Finding("ok", text, check))

    def warning(self, text: str, check: str | None = None) -> None:
        self.entries.append(Finding("warning", text, check))

    def not_verified(self, text: str, check: str | None = None) -> None:
        """A check that could not be made: said plainly, not counted as a problem."""
        self.entries.append(Finding("not-verified", text, check))

    def problem(self, text: str, code: int = EXIT_CONFIG, check: str | None = None) -> None:
        self.entries.append(Finding("problem", text, check, code))
        self.problems[code] = self.problems.get(code, 0) + 1

    def exit_code(self) -> int:
        for code in (EXIT_CONFIG, EXIT_AUTH, EXIT_UNAVAILABLE):
            if self.problems.get(code):
                return code
        return EXIT_OK

    def verdict(self) -> str:
        count = sum(self.problems.values())
        if count:
            return f"{count} problem(s)"
        unverified = sum(1 for e in self.entries if e.level == "not-verified")
        return f"ready ({unverified} check(s) not verified)" if unverified else "ready"


def cmd_config_check(args: argparse.Namespace) -> int:
    findings = check(args.file, offline=args.offline, dry_run=getattr(args, "dry_run", False))
    if getattr(args, "format", "text") == "json":
        document = {
            "source": findings.source,
            "verdict": findings.verdict(),
            "exit_code": findings.exit_code(),
            "checks": [
                {k: v for k, v in asdict(entry).items() if v is not None} for entry in findings.entries
            ],
        }
        print(redact(json.dumps(document, indent=2)))
        return findings.exit_code()
    for line in findings.lines:
        print(redact(line))
    print(redact(f"{findings.source}: {findings.verdict()}"))
    return findings.exit_code()


def check(
    path: str | None,
    *,
    offline: bool = False,
    environ: dict[str, str] | None = None,
    dry_run: bool = False,
) -> Findings:
    findings = Findings(path or "environment")
    config = _load(path, findings, dict(os.environ if environ is None else environ))
    if config is None:
        findings.warning("nothing else checked until the file is valid")
        return findings
    plan = _static_checks(config, findings)
    if offline or plan is None:
        if plan is None and not offline:
            findings.warning("the server was not contacted: fix the problems above first")
        return findings
    try:
        _network_checks(plan, findings, dry_run)
    finally:
        for target in plan.targets():
            target.client.close()
    return findings


def _load(path: str | None, findings: Findings, environ: dict[str, str]) -> AppConfig | None:
    try:
        config = load_config(path, environ)
    except ConfigFileError as exc:
        for problem in exc.problems:
            findings.problem(problem)
        return None
    except ConfigError as exc:
        findings.problem(str(exc))
        return None
    overrides = sorted(n for n in environ if n.startswith("FHIR_CAT2_") and "__" in n)
    findings.ok(
        f"{findings.source}: valid"
        + (f"; environment overrides: {', '.join(overrides)}" if overrides else "")
    )
    return config


@dataclass
class Target:
    """A server to contact, with the credentials sync would send it."""

    label: str
    """'server' (the source) or 'write' (a write server of its own)"""
    client: FhirClient
    auth: Any
    section: str | None
    """The auth section whose credentials go there: server.auth, write.auth, or None (none sent)"""
    auth_config: AuthConfig | None


@dataclass
class Plan:
    source: Target | None
    write: Target | None
    """A write server other than the source; None: write-back goes to the source."""
    read_types: list[str]
    write_types: list[str]
    config: AppConfig

    def targets(self) -> list[Target]:
        return [t for t in (self.source, self.write) if t is not None]


def _static_checks(config: AppConfig, findings: Findings) -> Plan | None:
    """Everything that needs no network. Returns what to contact, or None after a problem."""
    before = sum(findings.problems.values())
    server = config.server
    auths: dict[str, Any] = {}
    for section, auth_config in (("server.auth", server.auth), ("write.auth", config.write.auth)):
        if auth_config is None:
            continue
        try:
            auths[section] = build_auth(auth_config, section)
        except ConfigError as exc:
            findings.problem(str(exc))
            continue
        findings.ok(f"{section}: {auth_config.type}{_auth_detail(auth_config)}")
        _secret_file_permissions(section, auth_config, findings)
    try:
        tls_options(server.tls)
        if server.tls.ca_bundle or server.tls.client_cert:
            findings.ok(
                "server.tls: "
                + ", ".join(
                    t
                    for t, v in (
                        ("CA bundle", server.tls.ca_bundle),
                        ("client certificate", server.tls.client_cert),
                    )
                    if v
                )
                + " readable"
            )
        if server.tls.client_key:
            _permissions("server.tls.client_key", server.tls.client_key, findings)
    except ConfigError as exc:
        findings.problem(str(exc))
    urls = [("server.base_url", server.base_url), ("write.base_url", config.write.base_url)]
    urls += [
        (f"{s}.token_url", a.token_url)
        for s, a in (("server.auth", server.auth), ("write.auth", config.write.auth))
        if a
    ]
    for name, url in urls:
        if url:
            try:
                refuse_insecure(url, name, server.allow_insecure_http)
            except ConfigError as exc:
                findings.problem(str(exc))
    if server.allow_insecure_http:
        findings.warning(
            "server.allow_insecure_http is true: plain http:// may carry patient data off this machine"
        )
    if not server.base_url:
        findings.warning("no server.base_url: sync and record need --base-url")
    ruleset = _rules(config, findings)
    _writable("sync.state", Path(config.sync.state).expanduser().parent, findings)
    _writable("sync.out", Path(config.sync.out).expanduser(), findings)
    state = Path(config.sync.state).expanduser()
    if state.exists():
        _permissions("sync.state", str(state), findings)
    if config.metrics.file:
        _writable("metrics.file", Path(config.metrics.file).expanduser().parent, findings)
    if config.source.mode == "patients":
        _population(config, findings)
    if sum(findings.problems.values()) > before:
        return None
    from .sources.server import default_types

    read_types = list(
        config.sync.resource_types or (default_types(ruleset.relevant_codes()) if ruleset else [])
    )
    write_types = list(emitted_types(config.run.emit))
    plan = Plan(None, None, read_types, write_types, config)
    if not server.base_url:
        return plan
    source_auth = auths.get("server.auth")
    plan.source = Target(
        "server",
        build_client(server.base_url, server, source_auth),
        source_auth,
        "server.auth",
        server.auth,
    )
    if config.write.base_url and config.write.base_url != server.base_url:
        # the credentials sync.py's _write_client sends: write.auth, else the source's on the same origin
        write_section: str | None = "write.auth"
        write_config: AuthConfig | None = config.write.auth
        write_auth = auths.get("write.auth")
        if write_config is None:
            same_origin = origin(config.write.base_url) == plan.source.client.origin
            write_section, write_config = ("server.auth", server.auth) if same_origin else (None, None)
            write_auth = build_auth(server.auth, "server.auth") if same_origin else None
        plan.write = Target(
            "write",
            build_client(config.write.base_url, server, write_auth, "write.base_url"),
            write_auth,
            write_section,
            write_config,
        )
    for target in plan.targets():
        client = target.client
        # a check answers in seconds: two tries, short waits
        client.retry = RetryPolicy(
            min(2, client.retry.attempts), min(client.retry.backoff_base, 0.5), 2.0, 5.0
        )
    return plan


def _auth_detail(cfg: AuthConfig) -> str:
    if cfg.type == "none":
        return " (no credentials)"
    where = next(
        (
            f" from {kind} {value}"
            for kind, value in (
                (
                    "environment variable",
                    cfg.token_env or cfg.password_env or cfg.client_secret_env or cfg.private_key_env,
                ),
                (
                    "file",
                    cfg.token_file or cfg.password_file or cfg.client_secret_file or cfg.private_key_file,
                ),
            )
            if value
        ),
        " from the environment",
    )
    client = f", client_id {cfg.client_id}" if cfg.client_id else ""
    algorithm = f", {cfg.algorithm}" if cfg.type == "smart-backend" else ""
    return f"{client}{algorithm}; secret resolved{where} (not shown)"


def _secret_file_permissions(section: str, cfg: AuthConfig, findings: Findings) -> None:
    for name in ("token_file", "password_file", "client_secret_file", "private_key_file"):
        value = getattr(cfg, name)
        if value:
            _permissions(f"{section}.{name}", value, findings)


def _permissions(name: str, value: str, findings: Findings) -> None:
    try:
        mode = stat.S_IMODE(os.stat(Path(value).expanduser()).st_mode)
    except OSError:
        return
    if mode & 0o077:
        findings.warning(f"{name}: {value} is readable by other users (mode {mode:o}); chmod 600 it")


def _writable(name: str, folder: Path, findings: Findings) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        findings.problem(f"{name}: cannot write to {folder}")


def _rules(config: AppConfig, findings: Findings) -> RuleSet | None:
    from .cli import load_ruleset

    try:
        ruleset = load_ruleset(config.run.rules, config.run.valuesets, config.terminology.concept_maps)
    except FhirCat2Error as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for problem in problems:
            findings.problem(f"rules: {problem}")
        return None
    table = ruleset.table
    findings.ok(
        f"rules: {config.run.rules or 'shipped table'}: {len(table.code_rules)} code rules,"
        f" {len(table.measures)} measures"
    )
    return ruleset


# ------------------------------------------------------------------------------------------ network

# Placeholders for $validate: valid R4 shapes that name no patient (display-only references)
PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "Claim": {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"display": "fhir-cat2 config check"},
        "created": "2025-01-01",
        "provider": {"display": "fhir-cat2 config check"},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "fhir-cat2 config check"}}],
    },
    "MeasureReport": {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": "urn:fhir-cat2:config-check",
        "period": {"start": "2025-01-01", "end": "2025-12-31"},
    },
}


class _Stop(Exception):
    """A failure that makes the checks after it pointless (refused credentials, server gone)."""


def _network_checks(plan: Plan, findings: Findings, dry_run: bool) -> None:
    if plan.source is None:
        return
    capabilities = _connect(plan.source, findings)
    if capabilities is None:
        return
    from .sources.server import supported_types

    supported = supported_types(capabilities)
    read_types = [t for t in plan.read_types if not supported or t in supported]
    try:
        if plan.config.source.mode == "patients":
            _patient_searches(plan.source, capabilities, read_types, plan.config, findings)
        else:
            for resource_type in read_types:
                _count_search(plan.source, resource_type, findings, "read")
    except _Stop:
        findings.not_verified(f"{plan.source.label}: the other checks, until the problem above is fixed")
        return
    if plan.config.source.mode == "bulk":
        try:
            _bulk_export(plan.source, plan.config, capabilities, findings)
        except _Stop:
            findings.not_verified(f"{plan.source.label}: the other checks, until the problem above is fixed")
            return
    if dry_run:
        findings.ok("write: not checked (--dry-run: sync --dry-run writes nothing to a server)")
        return
    target = plan.write or plan.source
    if plan.write is not None:
        write_capabilities = _connect(plan.write, findings)
        if write_capabilities is None:
            return
    else:
        write_capabilities = capabilities
    strategy = plan.config.write.strategy
    try:
        for resource_type in plan.write_types:
            if plan.write is not None or resource_type not in read_types:
                # write-back reads the current versions before it writes
                _count_search(target, resource_type, findings, "write")
            _validate(target, resource_type, write_capabilities, findings)
            _write_permission(target, resource_type, strategy, plan.config.write.withdraw_stale, findings)
    except _Stop:
        findings.not_verified(f"{target.label}: the other write checks, until the problem above is fixed")


def export_levels(capabilities: dict[str, Any]) -> set[str]:
    """The Bulk Data export levels a CapabilityStatement lists: ``export`` at system level, on Patient, on
    Group (by name, or by the OperationDefinition it points to)."""

    def exports(operations: Any) -> bool:
        return any(
            isinstance(o, dict)
            and (o.get("name") in ("export", "$export") or str(o.get("definition", "")).endswith("export"))
            for o in operations or []
        )

    levels: set[str] = set()
    for rest in capabilities.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        if exports(rest.get("operation")):
            levels.add("system")
        for resource in rest.get("resource") or []:
            if (
                isinstance(resource, dict)
                and resource.get("type") in ("Patient", "Group")
                and exports(resource.get("operation"))
            ):
                levels.add(str(resource["type"]).lower())
    return levels


def _bulk_export(target: Target, config: AppConfig, capabilities: dict[str, Any], findings: Findings) -> None:
    """sync --source bulk: the CapabilityStatement lists $export at the level, and an authenticated kick-off
    is accepted (then cancelled at once)."""
    from .sources.bulk import BulkExport

    group = config.source.group
    level = config.source.bulk.level or ("group" if group else "system")
    label = target.label
    if level == "group" and not group:
        findings.problem(
            f"{label}: source.bulk.level group needs source.group (the Group id)", check="$export"
        )
        raise _Stop
    where = {"system": "[base]/$export", "patient": "Patient/$export", "group": f"Group/{group}/$export"}[
        level
    ]
    if level in export_levels(capabilities):
        findings.ok(f"{label}: the CapabilityStatement lists $export at {level} level", "$export capability")
    else:
        findings.warning(
            f"{label}: the CapabilityStatement does not list $export at {level} level ({where});"
            " trying a kick-off all the same",
            "$export capability",
        )
    exporter = BulkExport(target.client)
    check = "$export kick-off"
    try:
        job = exporter.kick_off(level, group=group, types=["Patient"])
    except AuthError as exc:
        _auth_problem(target, label, check, "export", "data", exc, findings)
        raise _Stop from None
    except ServerUnavailableError as exc:
        findings.problem(f"{label}: {exc}", EXIT_UNAVAILABLE, check)
        raise _Stop from None
    except ServerError as exc:
        findings.problem(f"{label}: {exc}", check=check)
        raise _Stop from None
    try:
        exporter.cancel(job.status_url)
        cancelled = "cancelled"
    except ServerError as exc:
        cancelled = f"not cancelled ({type(exc).__name__}: it expires on the server)"
    findings.ok(f"{label}: an authenticated {where} kick-off is accepted (a test export, {cancelled})", check)


def _connect(target: Target, findings: Findings) -> dict[str, Any] | None:
    """A token (if the auth uses one) and the CapabilityStatement; None after a problem."""
    label, client, auth = target.label, target.client, target.auth
    base = client.base_url
    if auth is not None and hasattr(auth, "access_token"):
        try:
            auth.access_token()
        except AuthError as exc:
            findings.problem(f"{label}: token refused: {exc}", EXIT_AUTH, "token")
            return None
        except ServerUnavailableError as exc:
            findings.problem(f"{label}: token endpoint unreachable: {exc}", EXIT_UNAVAILABLE, "token")
            return None
        except ConfigError as exc:
            findings.problem(f"{label}: {exc}", check="token")
            return None
        findings.ok(f"{label}: token obtained from {auth.token_url} (not shown)", "token")
    try:
        capabilities = client.capabilities()
    except AuthError as exc:
        # no status: a refused TLS handshake, whose message names the client certificate settings
        hint = f"; {_credentials_hint(target)}" if exc.status is not None else ""
        findings.problem(f"{label}: {base} refused the credentials: {exc}{hint}", EXIT_AUTH, "metadata")
        return None
    except ServerUnavailableError as exc:
        findings.problem(f"{label}: {base} unreachable: {exc}", EXIT_UNAVAILABLE, "metadata")
        return None
    except (ServerError, ConfigError) as exc:
        findings.problem(f"{label}: {base}: {exc}", check="metadata")
        return None
    version = str(capabilities.get("fhirVersion") or "unknown")
    software = capabilities.get("software") or {}
    name = " ".join(str(software.get(k)) for k in ("name", "version") if software.get(k)) or "unnamed server"
    if not version.startswith("4.0"):
        findings.problem(
            f"{label}: {base} speaks FHIR {version}; fhir-cat2 needs R4 (4.0.x)", check="metadata"
        )
        return None
    from .sources.server import CORE_TYPES, server_interactions, supported_types

    supported = supported_types(capabilities)
    missing = [t for t in CORE_TYPES if supported and t not in supported]
    findings.ok(
        f"{label}: {base}: CapabilityStatement of {name}, FHIR {version}, {len(supported)} searchable types",
        "metadata",
    )
    if missing:
        findings.warning(f"{label}: not searchable on this server (not read): {', '.join(missing)}")
    if "transaction" not in server_interactions(capabilities):
        findings.warning(f"{label}: no transaction interaction listed; write-back will send batch Bundles")
    return capabilities


def _count_search(target: Target, resource_type: str, findings: Findings, purpose: str) -> None:
    """One authenticated search, as sync sends it: ``_summary=count``, else ``_count=1``."""
    client = target.client
    check = f"search {resource_type}" if purpose == "read" else f"write-back read {resource_type}"
    label = target.label if purpose == "read" else "write"
    headers = {"Prefer": "handling=strict"} if client.strict_search else None
    what = f"search {resource_type}"
    try:
        try:
            response = client.request(
                "GET", resource_type, params=[("_summary", "count")], headers=headers, what=what
            )
        except FatalServerError:  # no _summary here: the smallest ordinary page instead
            response = client.request(
                "GET", resource_type, params=[("_count", "1")], headers=headers, what=what
            )
    except AuthError as exc:
        action = "read" if purpose == "read" else "read (write-back compares with the current versions)"
        _auth_problem(target, label, check, action, resource_type, exc, findings)
        return
    except ServerUnavailableError as exc:
        findings.problem(f"{label}: {exc}", EXIT_UNAVAILABLE, check)
        raise _Stop from None
    except ConfigError as exc:
        findings.problem(f"{label}: {exc}", check=check)
        raise _Stop from None
    except ServerError as exc:
        hint = " (or leave it out of sync.resource_types)" if purpose == "read" else ""
        findings.problem(f"{label}: {exc}{hint}", check=check)
        return
    body = response.body
    total = body.get("total") if isinstance(body, dict) else None
    count = f": {total} on the server" if isinstance(total, int) else ""
    findings.ok(f"{label}: {check} with the credentials{count}", check)


def _population(config: AppConfig, findings: Findings) -> list[str] | None:
    """patients mode, offline: a Group or a readable file of ids (exactly one). None after a problem."""
    from .sources.patients import read_patients_file

    source = config.source
    if bool(source.group) == bool(source.patients_file):
        findings.problem(
            "source.mode patients reads the members of a Group or a file of patient ids: set one of"
            " source.group or source.patients_file",
            check="population",
        )
        return None
    if source.patients_file:
        try:
            ids = read_patients_file(source.patients_file)
        except ConfigError as exc:
            findings.problem(str(exc), check="population")
            return None
        findings.ok(f"source.patients_file: {len(ids)} patients in {source.patients_file}", "population")
        return ids
    return []


def _patient_searches(
    target: Target,
    capabilities: dict[str, Any],
    read_types: list[str],
    config: AppConfig,
    findings: Findings,
) -> None:
    """patients mode: the population (the Group's members, read from the server), then each read type
    searched for one of its patients, as sync searches: never without a patient."""
    from .sources.patients import group_members, lists_everything, read_patients_file
    from .sources.server import patient_param, supported_types

    label, client = target.label, target.client
    group = config.source.group
    if not group:
        ids = read_patients_file(str(config.source.patients_file))  # checked before: see _static_checks
    else:
        check = "read Group"
        try:
            members = group_members(client, group)
        except AuthError as exc:
            _auth_problem(target, label, check, "read", "Group", exc, findings)
            raise _Stop from None
        except ServerUnavailableError as exc:
            findings.problem(f"{label}: {exc}", EXIT_UNAVAILABLE, check)
            raise _Stop from None
        except (ServerError, ConfigError) as exc:
            findings.problem(f"{label}: {exc}", check=check)
            raise _Stop from None
        skipped = f"; {sum(members.skipped.values())} other members left out" if members.skipped else ""
        findings.ok(
            f"{label}: Group/{group}: {len(members.patients)} patients in {members.pages} page(s){skipped}",
            check,
        )
        ids = members.patients
    if not ids:
        findings.problem(f"{label}: the population has no patient: nothing to search for", check="population")
        raise _Stop
    everything = config.source.patients.everything
    listed = lists_everything(capabilities)
    if everything == "always" and not listed:
        findings.warning(
            f"{label}: source.patients.everything is always, but Patient/$everything is not listed"
        )
    uses = everything == "always" or (everything == "auto" and listed)
    findings.ok(
        f"{label}: patients are read with {'Patient/$everything' if uses else 'one search per type'}"
        f" (source.patients.everything: {everything})",
        "everything",
    )
    supported = supported_types(capabilities)
    headers = {"Prefer": "handling=strict"} if client.strict_search else None
    for resource_type in read_types:
        param = patient_param(resource_type, supported.get(resource_type, set()))
        check = f"search {resource_type}"
        if param is None:
            findings.warning(f"{label}: {resource_type} has no patient search parameter: not read", check)
            continue
        value = ids[0] if param == "_id" else f"Patient/{ids[0]}"
        try:
            client.request(
                "GET",
                resource_type,
                params=[(param, value), ("_count", "1")],
                headers=headers,
                what=f"search {resource_type} for one patient",
            )
        except AuthError as exc:
            _auth_problem(target, label, check, "read", resource_type, exc, findings)
            continue
        except ServerUnavailableError as exc:
            findings.problem(f"{label}: {exc}", EXIT_UNAVAILABLE, check)
            raise _Stop from None
        except ServerError as exc:
            findings.problem(f"{label}: {exc} (or leave it out of sync.resource_types)", check=check)
            continue
        findings.ok(f"{label}: {check} for one patient ({param}=) with the credentials", check)


def _validate(target: Target, resource_type: str, capabilities: dict[str, Any], findings: Findings) -> None:
    check = f"$validate {resource_type}"
    if not _offers_validate(capabilities, resource_type):
        findings.not_verified(
            f"write: {check}: the server lists no $validate operation, so the shape of a {resource_type}"
            " is first checked by the server at the first write-back",
            check,
        )
        return
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": PLACEHOLDERS[resource_type]},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    try:
        response = target.client.request(
            "POST", f"{resource_type}/$validate", json_body=parameters, what=check
        )
    except AuthError as exc:
        _auth_problem(target, "write", check, "validate", resource_type, exc, findings)
        return
    except ServerUnavailableError as exc:
        findings.problem(f"write: {check}: {exc}", EXIT_UNAVAILABLE, check)
        raise _Stop from None
    except ServerError as exc:
        # a validation verdict on the placeholder (400, 412, 422): the credentials were accepted for it
        findings.ok(
            f"write: {check} answered with the credentials (HTTP {exc.status}); nothing stored", check
        )
        return
    findings.ok(
        f"write: {check} accepted with the credentials (HTTP {response.status}); nothing stored", check
    )


def _write_permission(
    target: Target, resource_type: str, strategy: str, withdraw_stale: bool, findings: Findings
) -> None:
    """What is known, without writing, about permission to create and update: the SMART scopes of the token.
    No FHIR request proves it without writing on every server (a conditional create writes when nothing
    matches), so without scopes it is said to be not verified."""
    from .auth import scope_allows

    needed = "cu" + ("d" if withdraw_stale and resource_type == "MeasureReport" else "")
    words = {"c": "create", "u": "update", "d": "delete"}
    names = [words[p] for p in needed]
    action = " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"
    check = f"write permission {resource_type}"
    scope = getattr(target.auth, "granted_scope", None)
    if scope is None:
        why = (
            "no credentials are sent to the write server"
            if target.auth is None
            # quoted: the log redaction reads "basic <word>" as an Authorization header
            else f"credentials of type '{target.auth_config.type if target.auth_config else 'none'}'"
            " carry no scopes"
        )
        findings.not_verified(
            f"write: permission to {action} {resource_type} ({strategy}): {why}, and no request proves it"
            " without writing; the first sync shows it",
            check,
        )
        return
    if scope_allows(scope, resource_type, needed):
        findings.ok(f"write: the token's scope grants {action} on {resource_type}", check)
        return
    findings.problem(
        f"write: the token's scope ({scope}) does not grant {action} on {resource_type}, which write-back"
        f" ({strategy}) needs; ask for system/{resource_type}.write in {target.section}.scope"
        " and have the server's client registration allow it",
        EXIT_AUTH,
        check,
    )


def _offers_validate(capabilities: dict[str, Any], resource_type: str) -> bool:
    for rest in capabilities.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        operations = list(rest.get("operation") or [])
        for resource in rest.get("resource") or []:
            if isinstance(resource, dict) and resource.get("type") == resource_type:
                operations += resource.get("operation") or []
        for operation in operations:
            if isinstance(operation, dict) and str(operation.get("name", "")).lstrip("$") == "validate":
                return True
    return False


def _auth_problem(
    target: Target,
    label: str,
    check: str,
    action: str,
    resource_type: str,
    exc: AuthError,
    findings: Findings,
) -> None:
    """401: the credentials are wrong or missing (stop: every other check would say the same);
    403: they are valid but not allowed this (go on: another type may be allowed)."""
    if exc.status == 403:
        scope = f" (scope: {target.section}.scope)" if hasattr(target.auth, "access_token") else ""
        findings.problem(
            f"{label}: {check}: forbidden (HTTP 403): the credentials are accepted but may not {action}"
            f" {resource_type}; grant it on the server{scope}",
            EXIT_AUTH,
            check,
        )
        return
    findings.problem(f"{label}: {exc}; {_credentials_hint(target)}", EXIT_AUTH, check)
    raise _Stop


def _credentials_hint(target: Target) -> str:
    """Which setting to fix when the server refuses the credentials."""
    cfg, section = target.auth_config, target.section
    if section is None or cfg is None:
        return "no credentials are sent to this server: set write.auth"
    if cfg.type == "none":
        return (
            f"no credentials are configured ({section}.type: none) but the server wants them:"
            f" set {section}.type and its credentials"
        )
    where = _secret_source(cfg)
    if cfg.type == "basic":
        return f"check {section}.username ({cfg.username}) and the password{where}"
    if cfg.type == "bearer":
        return f"the token{where} is wrong or has expired: check {section}.token"
    return (
        f"the server refused the token from the token endpoint: check {section}.client_id, {section}.scope"
        " and the client's registration on the server"
    )


def _secret_source(cfg: AuthConfig) -> str:
    for kind, value in (
        ("environment variable", cfg.token_env or cfg.password_env or cfg.client_secret_env),
        ("file", cfg.token_file or cfg.password_file or cfg.client_secret_file),
    ):
        if value:
            return f" (from {kind} {value})"
    return " (from the environment)"
