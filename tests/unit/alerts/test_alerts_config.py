from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.alerts.model import AlertKind, Severity
from bastion.config import ConfigError, load_config


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "bastion.yaml"
    path.write_text("servers: {time: {command: mcp-server-time}}\n" + textwrap.dedent(text), encoding="utf-8")
    return load_config(path, environ={"HOOK_SECRET": "s3cret"})


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert (config.approvals.wait, config.approvals.retry_window, config.approvals.expire_after) == (30, 3600, 86400)
    assert config.alerts.webhooks == ()
    assert (config.alerts.queue_size, config.alerts.coalesce_window, config.alerts.max_attempts) == (1000, 60, 5)


def test_webhook_filters_by_kind_and_severity(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        alerts:
          webhooks:
            - url: https://hooks.example.com/x
              events: [call_denied, server_crashed]
              min_severity: warning
              secret: ${HOOK_SECRET}
        """,
    )
    [hook] = config.alerts.webhooks
    assert hook.secret == "s3cret"
    assert "s3cret" not in repr(hook)
    assert hook.wants(AlertKind.CALL_DENIED, Severity.WARNING)
    assert hook.wants(AlertKind.SERVER_CRASHED, Severity.CRITICAL)
    assert not hook.wants(AlertKind.CALL_DENIED, Severity.INFO)
    assert not hook.wants(AlertKind.APPROVAL_REQUESTED, Severity.CRITICAL)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("approvals: {wait: -1}", "approvals.wait"),
        ("approvals: {expire_after: true}", "approvals.expire_after: must be a number of seconds"),
        ("alerts: {webhooks: [{url: 'ftp://x'}]}", "alerts.webhooks[0].url"),
        ("alerts: {webhooks: [{url: 'https://x', style: teams}]}", "alerts.webhooks[0].style"),
        ("alerts: {webhooks: [{url: 'https://x', events: [everything]}]}", "alerts.webhooks[0].events[0]"),
        ("alerts: {queue_size: 0}", "alerts.queue_size"),
        ("alerts: {retries: 3}", "alerts.retries"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert fragment in str(info.value)
