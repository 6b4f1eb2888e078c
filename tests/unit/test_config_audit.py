"""The `audit` section: modes, backend URL and retention are validated with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit.retention import Retention, parse_duration
from bastion.config import ConfigError, load_config


def write(tmp_path: Path, audit: str) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(f"servers:\n  t:\n    command: x\naudit:\n{audit}", encoding="utf-8")
    return path


def test_audit_defaults(tmp_path: Path) -> None:
    audit = load_config(write(tmp_path, "  on_failure: refuse\n")).audit

    assert (audit.mode, audit.url) == ("redacted", None)
    assert audit.retention.retention() == Retention()
    assert not audit.retention.retention().enabled


def test_audit_settings_load(tmp_path: Path) -> None:
    text = "  mode: shape\n  url: postgresql://u@h/db\n  retention:\n    max_age: 30d\n    max_events: 1000\n"

    audit = load_config(write(tmp_path, text)).audit

    assert audit.mode == "shape"
    assert audit.url == "postgresql://u@h/db"
    assert audit.retention.retention() == Retention(max_age_s=30 * 86400, max_events=1000)
    assert "postgresql" not in repr(audit), "the URL may hold a password"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("  mode: secret\n", "audit.mode"),
        ("  url: mysql://h/db\n", "`mysql` is not a supported audit store"),
        ("  retention:\n    max_age: soon\n", "`soon` is not a positive duration"),
        ("  retention:\n    max_events: 0\n", "audit.retention.max_events"),
        ("  retention:\n    max_events: true\n", "audit.retention.max_events"),
        ("  retention:\n    keep: 3\n", "audit.retention.keep"),
    ],
)
def test_bad_audit_settings_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))

    assert fragment in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 43200), ("2w", 1209600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
