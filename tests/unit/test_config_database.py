"""`database_url`: where tokens, approvals and pins live, and where the audit log goes by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, load_config
from bastion.stores import audit_url


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(f"servers:\n  t:\n    command: x\n{extra}", encoding="utf-8")
    return path


@pytest.mark.parametrize("url", ["postgresql://u:pw@h:5432/db", "postgres://u@h/db?options=-csearch_path%3Ds"])
def test_postgresql_urls_are_accepted_and_kept_out_of_repr(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f"database_url: '{url}'\n"))

    assert config.database_url == url
    assert "pw" not in repr(config)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://h/db", "`mysql` is not a supported shared database"),
        ("sqlite:///tmp/state.db", "`sqlite` is not a supported shared database"),
        ("db.internal", "is not a database URL"),
    ],
)
def test_other_schemes_are_a_config_error(tmp_path: Path, url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"database_url: '{url}'\n"))

    message = str(caught.value)
    assert "database_url" in message
    assert fragment in message
    assert "postgresql://" in message  # the fix


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", None),
        ("database_url: postgresql://h/shared\n", "postgresql://h/shared"),
        ("database_url: postgresql://h/shared\naudit:\n  url: postgresql://h/audit\n", "postgresql://h/audit"),
        ("audit:\n  url: sqlite:///tmp/a.db\n", "sqlite:///tmp/a.db"),
    ],
)
def test_the_audit_log_follows_database_url_unless_audit_url_is_set(
    tmp_path: Path, extra: str, expected: str | None
) -> None:
    assert audit_url(load_config(write(tmp_path, extra))) == expected
