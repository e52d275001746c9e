"""Configuration: one validated model, read from a YAML file, with environment overrides.

Secrets never live in the file: it names an environment variable or a file that holds them.
Environment overrides use ``FHIR_CAT2_<SECTION>__<KEY>`` (e.g. ``FHIR_CAT2_RUN__PROGRAM=mips-claims``),
read by pydantic-settings; they win over the file. A problem names the file and line its value came
from, or the environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .deviations import parse as parse_deviations
from .emit.claim import EmitDefaults
from .errors import ConfigError, ConfigFileError, RulesError
from .ops_config import LogConfig, MetricsConfig
from .rules.yamlsource import LineMap, Path_, load_yaml, validation_problems
from .server_config import ServerConfig, SourceConfig, SyncConfig, WriteConfig, refuse_secrets_in_file

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
        given: dict[str, Any] = {}
        for name in ("provider", "coverage", "reporter"):
            value: Reference | None = getattr(self, name)
            if value is not None and value.as_fhir():
                given[name] = value.as_fhir()
        return EmitDefaults(currency=self.currency, configured=frozenset(given), **given)


class RunConfig(_Section):
    period: int | None = Field(default=None, ge=1900, le=2200)
    program: Literal["hedis", "mips-claims"] = "hedis"
    emit: list[Literal["claim", "measure-report", "gaps"]] = ["claim", "measure-report"]
    measures: list[str] | None = None
    rules: str | None = None
    valuesets: str | None = None
    """Folder of FHIR ValueSet expansions (e.g. from ``fhir-cat2 valuesets fetch``); --valuesets overrides."""
    report: Literal["individual", "summary", "both"] = "individual"
    quarantine_exit_zero: bool = False
    workers: int | None = Field(default=None, ge=1, le=64)
    """Processes that evaluate patients in replay (default: the machine's CPUs, at most 8)."""


class LogicConfig(_Section):
    deviations: list[str] = []
    """Named deviations from the published measure logic to turn on (``fhir_cat2.deviations``; ``all``)."""

    @field_validator("deviations")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        try:
            parse_deviations(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("logic.deviations: ")) from None
        return value


class TerminologyConfig(_Section):
    concept_maps: str | None = None
    """Folder of FHIR R4 ConceptMaps mapping local codes to standard ones; --concept-maps overrides."""


class AppConfig(BaseSettings):
    """The one configuration model: the file's values, environment overrides on top (see load_config)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    run: RunConfig = RunConfig()
    logic: LogicConfig = LogicConfig()
    terminology: TerminologyConfig = TerminologyConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    server: ServerConfig = ServerConfig()
    sync: SyncConfig = SyncConfig()
    source: SourceConfig = SourceConfig()
    write: WriteConfig = WriteConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_config merges the environment (through _Environment, from the environ it is given) over the
        # file itself; pydantic-settings must not read os.environ a second time with its own JSON decoding
        # (2.16 runs the sources on model_validate too, where '[claim]' is not JSON and failed the run).
        return (init_settings,)


class _Environment(EnvSettingsSource):
    """``FHIR_CAT2_<SECTION>__<KEY>`` from ``environ``. A list or mapping value is read as YAML (``[claim]``,
    JSON too); every other value goes to the model as the string it is, so a secret stays verbatim
    ("0123" is not a number, "yes" not True)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(AppConfig)
        self.env_vars = {name.lower(): value for name, value in environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value  # validation then says what the field expects, naming the variable


def _merged(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        below = out.get(key)
        out[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, Mapping) else value
    return out


def _where(loc: Path_, source: str, lines: LineMap | None, environ: Mapping[str, str]) -> str:
    """The environment variable that set ``loc`` (or a section above it), else the file and line."""
    names = {name.upper() for name in environ if name.upper().startswith(ENV_PREFIX)}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(str(part) for part in loc[:depth]).upper()
        if name in names:
            return name
    return f"{source}:{lines.line_of(loc)}" if lines is not None else source


def load_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate ``path`` (None: defaults only) with FHIR_CAT2_SECTION__KEY overrides from ``environ``
    (default: the process environment). Raises ConfigFileError naming file:line or the variable."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "environment"
    lines: LineMap | None = None
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"cannot read config file {path}: not UTF-8 text") from None
        try:
            loaded, lines = load_yaml(text, source)
        except RulesError as exc:
            raise ConfigFileError(exc.problems) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigFileError([f"{source}:1: (top level): expected a mapping (section: keys)"])
        data = loaded or {}
        refuse_secrets_in_file(data, source)
    unknown = sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and "__" in name
        and name[len(ENV_PREFIX) :].split("__")[0].lower() not in AppConfig.model_fields
    )
    if unknown:  # pydantic-settings skips a section it does not know: a typo would be silently ignored
        sections = ", ".join(AppConfig.model_fields)
        raise ConfigFileError(
            [f"{name}: no such configuration section (sections: {sections})" for name in unknown]
        )
    data = _merged(data, _Environment(environ)())
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, lambda loc: _where(loc, source, lines, environ))
        raise ConfigFileError(problems) from None
