"""Configuration: one validated model, read from a YAML file, with environment overrides.

Secrets never live in the file: it names an environment variable or a file that holds them.
Environment overrides use ``FHIR_CAT2_<SECTION>__<KEY>`` (e.g. ``FHIR_CAT2_RUN__PROGRAM=mips-claims``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .emit.claim import EmitDefaults
from .errors import ConfigError
from .ops_config import LogConfig, MetricsConfig
from .server_config import SECRET_KEYS, ServerConfig, SyncConfig, WriteConfig, refuse_secrets_in_file

ENV_PREFIX = "FHIR_CAT2_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reference(_Section):
    reference: str | None = None
    display: str | None = None

    def as_fhir(self) -> dict[str, str]:
        return {k: v for k, v in (("reference", self.reference), ("display", self.display)) if v}


class DefaultsConfig(_Section):
    """What to write when the input does not document a Claim's or MeasureReport's required element."""

    provider: Reference | None = None
    coverage: Reference | None = None
    reporter: Reference | None = None
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    def emit_defaults(self) -> EmitDefaults:
        defaults = EmitDefaults(currency=self.currency)
        configured = set()
        for name in ("provider", "coverage", "reporter"):
            value: Reference | None = getattr(self, name)
            if value is not None and value.as_fhir():
                setattr(defaults, name, value.as_fhir())
                configured.add(name)
        defaults.configured = frozenset(configured)
        return defaults


class RunConfig(_Section):
    period: int | None = Field(default=None, ge=1900, le=2200)
    program: Literal["hedis", "mips-claims"] = "hedis"
    emit: list[Literal["claim", "measure-report"]] = ["claim", "measure-report"]
    measures: list[str] | None = None
    rules: str | None = None
    valuesets: str | None = None
    """Folder of FHIR ValueSet expansions (e.g. from ``fhir-cat2 valuesets fetch``); --valuesets overrides."""
    report: Literal["individual", "summary", "both"] = "individual"
    quarantine_exit_zero: bool = False
    workers: int | None = Field(default=None, ge=1, le=64)
    """Processes that evaluate patients in replay (default: the machine's CPUs, at most 8)."""


class AppConfig(_Section):
    run: RunConfig = RunConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    server: ServerConfig = ServerConfig()
    sync: SyncConfig = SyncConfig()
    write: WriteConfig = WriteConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        # Secrets stay verbatim strings (YAML would turn "0123" into a number or "yes" into True).
        node[path[-1]] = value if path[-1] in SECRET_KEYS or not value else yaml.safe_load(value)
    return data


def load_config(path: str | os.PathLike[str] | None, environ: dict[str, str] | None = None) -> AppConfig:
    """Read and validate ``path`` (None: defaults only), then apply FHIR_CAT2_SECTION__KEY overrides."""
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        data = loaded or {}
        refuse_secrets_in_file(data, source)
    data = _apply_env(data, dict(os.environ if environ is None else environ))
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{loc}: {err['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
