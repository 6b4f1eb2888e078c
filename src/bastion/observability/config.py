"""The `metrics`, `log_format` and `observability` settings of bastion.yaml.

Referenced from `bastion.config.BastionConfig`; documented in docs/configuration.md and
docs/observability.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.config_errors import config_problem, split_listen

__all__ = ["LogFormat", "MetricsConfig", "ObservabilityConfig", "TracingConfig"]

LogFormat = Literal["text", "json"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricsConfig(_Frozen):
    """`GET /metrics` on the gateway (admin tokens), and optionally on a listener of its own."""

    enabled: bool = True
    listen: str | None = None
    """`HOST:PORT` of a separate, unauthenticated listener for Prometheus (e.g. a loopback or
    pod-internal port). Unset: metrics are served only at `/metrics` to admin tokens."""
    per_agent: bool = False
    """Label tool-call counts with the agent name (more series; off by default)."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, listen: str | None) -> str | None:
        if listen is None:
            return None
        split_listen(listen.strip())
        return listen.strip()


class TracingConfig(_Frozen):
    """OpenTelemetry traces. Off unless enabled here or by `OTEL_TRACES_EXPORTER`/`OTEL_EXPORTER_OTLP_*`."""

    enabled: bool | None = None
    """None: on when the standard `OTEL_*` variables name an exporter or endpoint."""
    exporter: Literal["otlp", "console", "none"] = "otlp"
    protocol: Literal["http/protobuf", "grpc"] | None = None
    """None: `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`."""
    endpoint: str | None = None
    """None: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific one), else the exporter's default."""
    service_name: str = Field(default="bastion", min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise config_problem(
                f"`{endpoint}` is not an http(s) URL", "write e.g. http://127.0.0.1:4318 (OTLP/HTTP) or :4317 (gRPC)"
            )
        return endpoint


def tracing_wanted(config: TracingConfig, environ: Mapping[str, str]) -> bool:
    """Whether traces are on: `enabled`, else whether the `OTEL_*` variables name an exporter."""
    if config.enabled is not None:
        return config.enabled
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter and exporter != "none":
        return True
    return any(environ.get(name) for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class ObservabilityConfig(_Frozen):
    tracing: TracingConfig = Field(default_factory=TracingConfig)


class ObservedConfig(Protocol):
    """What observability reads of a loaded bastion.yaml (`bastion.config.BastionConfig`)."""

    @property
    def metrics(self) -> MetricsConfig: ...

    @property
    def observability(self) -> ObservabilityConfig: ...

    @property
    def servers(self) -> Mapping[str, object]:
        """The configured servers, by name (the metrics' `server` label values)."""

    @property
    def source(self) -> Path:
        """The file the configuration came from, for error messages."""
