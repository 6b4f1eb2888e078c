"""`SettingsMemo` answers what `ResultsConfig.settings` answers, for the config it is given."""

from __future__ import annotations

import pytest

from bastion.guard.results import config as results_config
from bastion.guard.results.config import ResultsConfig, SettingsMemo

CONFIG = ResultsConfig.model_validate(
    {
        "on_injection": "sanitize",
        "servers": {"mail": {"on_injection": "deny", "trusted_values": ["ops@example.com"]}},
        "tools": {"send_*": {"sink": True}, "mail/read_*": {"max_records": 5, "trusted_values": ["x"]}},
    }
)


@pytest.mark.parametrize("server", ["mail", "web"])
@pytest.mark.parametrize("tool", ["send_mail", "read_inbox", "search", None])
@pytest.mark.parametrize("untrusted", [False, True])
def test_the_memo_gives_the_resolved_settings(server: str, tool: str | None, untrusted: bool) -> None:
    memo = SettingsMemo()
    first = memo(CONFIG, server, tool, untrusted=untrusted)
    assert first == CONFIG.settings(server, tool, untrusted=untrusted)
    assert memo(CONFIG, server, tool, untrusted=untrusted) is first


def test_another_config_is_resolved_afresh() -> None:
    memo = SettingsMemo()
    assert memo(CONFIG, "web", "send_mail").sink is True
    other = CONFIG.model_copy(update={"tools": {}})
    assert memo(other, "web", "send_mail").sink is None
    assert memo(CONFIG, "web", "send_mail").sink is True


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_config, "MAX_SETTINGS_KEPT", 3)
    memo = SettingsMemo()
    for index in range(10):
        assert memo(CONFIG, "web", f"tool{index}") == CONFIG.settings("web", f"tool{index}")
    assert len(memo._made) <= 3
