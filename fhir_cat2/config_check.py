"""``fhir-cat2 config check [FILE]``: is this configuration ready for an unattended run?

One line per finding, ``ok:``, ``warning:`` or ``problem:``, in this order:

1. the file: YAML, known keys, valid values, no secret written in it, environment overrides applied;
2. secrets resolved (from the environment or the files named), never printed; key types checked;
3. URLs: https, or http to this machine only (unless ``server.allow_insecure_http``); TLS files readable;
4. the rules table and value sets load; the state, output and metrics locations are writable; files that
   hold secrets are not readable by other users;
5. unless ``--offline`` or a problem above: a token from the token endpoint, then the server's
   CapabilityStatement (FHIR version, searchable types, transactions), and the same for a write server.

Exit code: 0 when there is no problem (warnings allowed); 2 for configuration problems; 3 when the token
endpoint or the server refuses the credentials; 4 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import AppConfig, _apply_env
from .errors import AuthError, ConfigError, FhirCat2Error, ServerError, ServerUnavailableError
from .fhir import FhirClient, RetryPolicy, refuse_insecure
from .logs import redact
from .runs import EXIT_AUTH, EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from .server_config import AuthConfig, build_auth, build_client, refuse_secrets_in_file, tls_options


@dataclass
class Findings:
    source: str
    lines: list[str] = field(default_factory=list)
    problems: dict[int, int] = field(default_factory=dict)
    """exit code -> number of problems of that kind"""

    def ok(self, text: str) -> None:
        self.lines.append(f"ok: {text}")

    def warning(self, text: str) -> None:
        self.lines.append(f"warning: {text}")

    def problem(self, text: str, code: int = EXIT_CONFIG) -> None:
        self.lines.append(f"problem: {text}")
        self.problems[code] = self.problems.get(code, 0) + 1

    def exit_code(self) -> int:
        for code in (EXIT_CONFIG, EXIT_AUTH, EXIT_UNAVAILABLE):
            if self.problems.get(code):
                return code
        return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    findings = check(args.file, offline=args.offline)
    for line in findings.lines:
        print(redact(line))
    count = sum(findings.problems.values())
    verdict = "ready" if not count else f"{count} problem(s)"
    print(redact(f"{findings.source}: {verdict}"))
    return findings.exit_code()


def check(path: str | None, *, offline: bool = False, environ: dict[str, str] | None = None) -> Findings:
    findings = Findings(path or "environment")
    config = _load(path, findings, dict(os.environ if environ is None else environ))
    if config is None:
        findings.warning("nothing else checked until the file is valid")
        return findings
    clients = _static_checks(config, findings)
    if offline or clients is None:
        if clients is None and not offline:
            findings.warning("the server was not contacted: fix the problems above first")
        return findings
    for label, client, auth in clients:
        _network_checks(label, client, auth, findings)
        client.close()
    return findings


def _load(path: str | None, findings: Findings, environ: dict[str, str]) -> AppConfig | None:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            findings.problem(f"cannot read {path}: {exc.strerror}")
            return None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            findings.problem(
                f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}"
            )
            return None
        if loaded is not None and not isinstance(loaded, dict):
            findings.problem(f"{path}: expected a mapping (section: keys) at the top level")
            return None
        data = loaded or {}
        try:
            refuse_secrets_in_file(data, path)
        except ConfigError as exc:
            findings.problem(str(exc))
            return None
    overrides = sorted(n for n in environ if n.startswith("FHIR_CAT2_") and "__" in n)
    data = _apply_env(data, environ)
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            findings.problem(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        return None
    findings.ok(
        f"{findings.source}: valid"
        + (f"; environment overrides: {', '.join(overrides)}" if overrides else "")
    )
    return config


def _static_checks(config: AppConfig, findings: Findings) -> list[tuple[str, FhirClient, Any]] | None:
    """Everything that needs no network. Returns the clients to contact, or None after a problem."""
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
    _rules(config, findings)
    _writable("sync.state", Path(config.sync.state).expanduser().parent, findings)
    _writable("sync.out", Path(config.sync.out).expanduser(), findings)
    state = Path(config.sync.state).expanduser()
    if state.exists():
        _permissions("sync.state", str(state), findings)
    if config.metrics.file:
        _writable("metrics.file", Path(config.metrics.file).expanduser().parent, findings)
    if sum(findings.problems.values()) > before or not server.base_url:
        return None if sum(findings.problems.values()) > before else []
    clients: list[tuple[str, FhirClient, Any]] = []
    source_auth = auths.get("server.auth")
    clients.append(("server", build_client(server.base_url, server, source_auth), source_auth))
    if config.write.base_url and config.write.base_url != server.base_url:
        write_auth = auths.get("write.auth")
        clients.append(("write", build_client(config.write.base_url, server, write_auth), write_auth))
    for _, client, _ in clients:
        # a check answers in seconds: two tries, short waits
        client.retry = RetryPolicy(
            min(2, client.retry.attempts), min(client.retry.backoff_base, 0.5), 2.0, 5.0
        )
    return clients


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


def _rules(config: AppConfig, findings: Findings) -> None:
    from .cli import load_ruleset

    try:
        ruleset = load_ruleset(config.run.rules, config.run.valuesets)
    except FhirCat2Error as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for problem in problems:
            findings.problem(f"rules: {problem}")
        return
    table = ruleset.table
    findings.ok(
        f"rules: {config.run.rules or 'shipped table'}: {len(table.code_rules)} code rules,"
        f" {len(table.measures)} measures"
    )


def _network_checks(label: str, client: FhirClient, auth: Any, findings: Findings) -> None:
    base = client.base_url
    if auth is not None and hasattr(auth, "access_token"):
        try:
            auth.access_token()
        except AuthError as exc:
            findings.problem(f"{label}: token refused: {exc}", EXIT_AUTH)
            return
        except ServerUnavailableError as exc:
            findings.problem(f"{label}: token endpoint unreachable: {exc}", EXIT_UNAVAILABLE)
            return
        except ConfigError as exc:
            findings.problem(f"{label}: {exc}")
            return
        findings.ok(f"{label}: token obtained from {auth.token_url} (not shown)")
    try:
        capabilities = client.capabilities()
    except AuthError as exc:
        findings.problem(f"{label}: {base} refused the credentials: {exc}", EXIT_AUTH)
        return
    except ServerUnavailableError as exc:
        findings.problem(f"{label}: {base} unreachable: {exc}", EXIT_UNAVAILABLE)
        return
    except (ServerError, ConfigError) as exc:
        findings.problem(f"{label}: {base}: {exc}")
        return
    version = str(capabilities.get("fhirVersion") or "unknown")
    software = capabilities.get("software") or {}
    name = " ".join(str(software.get(k)) for k in ("name", "version") if software.get(k)) or "unnamed server"
    if not version.startswith("4.0"):
        findings.problem(f"{label}: {base} speaks FHIR {version}; fhir-cat2 needs R4 (4.0.x)")
        return
    from .sources.server import CORE_TYPES, server_interactions, supported_types

    supported = supported_types(capabilities)
    missing = [t for t in CORE_TYPES if supported and t not in supported]
    findings.ok(
        f"{label}: {base}: CapabilityStatement of {name}, FHIR {version}, {len(supported)} searchable types"
    )
    if missing:
        findings.warning(f"{label}: not searchable on this server (not read): {', '.join(missing)}")
    if "transaction" not in server_interactions(capabilities):
        findings.warning(f"{label}: no transaction interaction listed; write-back will send batch Bundles")
