"""How an alert looks on the wire: the JSON or Slack payload and its HMAC signature."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from typing import Any

from bastion.alerts.config import WebhookConfig
from bastion.alerts.model import Alert

SIGNATURE_HEADER = "X-Bastion-Signature"
EVENT_HEADER = "X-Bastion-Event"


def payload(alert: Alert, count: int, style: str) -> dict[str, Any]:
    """The body for a webhook of `style`. `count` is how many identical alerts this one stands for."""
    when = datetime.datetime.fromtimestamp(alert.time, datetime.UTC).isoformat()
    if style == "slack":
        times = f" (x{count})" if count > 1 else ""
        return {"text": f"[Bastion {alert.level.label}] {alert.summary}{times}"}
    return {
        "source": "bastion",
        "kind": alert.kind.value,
        "severity": alert.level.label,
        "summary": alert.summary,
        "details": dict(alert.details),
        "time": when,
        "count": count,
    }


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes>`, the value of X-Bastion-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_parts(hook: WebhookConfig, alert: Alert, count: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers to POST to `hook`."""
    body = json.dumps(payload(alert, count, hook.style), separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", EVENT_HEADER: alert.kind.value}
    if hook.secret is not None:
        headers[SIGNATURE_HEADER] = signature(hook.secret, body)
    return body, headers
