"""Configuration of logging and metrics (``log`` and ``metrics`` sections); flags win over both."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        """A section whose keys are all commented out (``tls:`` alone) reads as YAML null: its defaults."""
        return {} if value is None else value


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    format: Literal["text", "json"] = "text"


class MetricsConfig(_Section):
    file: str | None = None
    """Prometheus text file for a node-exporter textfile collector (flag --metrics-file)."""
