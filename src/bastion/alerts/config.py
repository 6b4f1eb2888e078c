"""The `alerts:` section of bastion.yaml: webhook sinks and delivery settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bastion.alerts.model import AlertKind, Severity
from bastion.config_errors import check_http_url, config_problem


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a number, not true/false", "write a number")
    return value


Positive = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Frozen):
    """One webhook: where to POST, which alerts, how to sign and shape them."""

    url: Annotated[str, AfterValidator(check_http_url)]
    events: tuple[AlertKind, ...] | None = None
    """None: every kind."""
    min_severity: Literal["info", "warning", "critical"] = "info"
    secret: str | None = Field(default=None, repr=False)
    style: Literal["json", "slack"] = "json"

    @property
    def threshold(self) -> Severity:
        return Severity[self.min_severity.upper()]

    def wants(self, kind: AlertKind, severity: Severity) -> bool:
        return severity >= self.threshold and (self.events is None or kind in self.events)


class AlertsConfig(_Frozen):
    webhooks: tuple[WebhookConfig, ...] = ()
    call_flagged: Literal["findings", "all", "off"] = "findings"
    """Which allowed calls marked `log` raise `call_flagged`: those a catalogue finding or the audit-only
    profile marked (`findings`), also those a rule's `log: true` marked (`all`), or none (`off`)."""
    queue_size: Annotated[int, BeforeValidator(_number), Field(gt=0)] = 1000
    coalesce_window: Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)] = 60.0
    max_attempts: Annotated[int, BeforeValidator(_number), Field(gt=0)] = 5
    backoff: Positive = 1.0
    max_backoff: Positive = 60.0
    timeout: Positive = 10.0
