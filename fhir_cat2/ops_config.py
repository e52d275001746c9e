"""Configuration of logging and metrics (``log`` and ``metrics`` sections); flags win over both."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    format: Literal["text", "json"] = "text"


class MetricsConfig(_Section):
    file: str | None = None
    """OpenMetrics text file for a node-exporter textfile collector (flag --metrics-file)."""
