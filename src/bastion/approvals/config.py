"""The `approvals:` section of bastion.yaml."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bastion.config_errors import config_problem


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a number of seconds, not true/false", "write a number, e.g. 30")
    return value


class ApprovalsConfig(BaseModel):
    """How long a held call waits, and how long approvals and their retries stay valid (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait: Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)] = 30.0
    retry_window: Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)] = 3600.0
    expire_after: Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)] = 86400.0
