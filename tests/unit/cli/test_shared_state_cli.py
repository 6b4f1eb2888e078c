"""The CLI on a shared database it cannot reach: one clear line naming the URL (password hidden), no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli.main import main


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["admin", "token", "list"],
        ["approvals", "list"],
        ["tools", "list"],
    ],
)
def test_an_unreachable_database_is_one_clear_error(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "database_url: postgresql://u:secret@127.0.0.1:9/db?connect_timeout=2\n"
        "servers: {}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, [*command, "--config", str(config)])

    assert result.exit_code == 1
    assert "cannot connect to database_url postgresql://u:***@127.0.0.1:9/db" in result.output
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_doctor_reports_the_shared_database(tmp_path: Path) -> None:
    from bastion.auth.postgres_tokens import PostgresTokenStore
    from tests.unit.audit.postgres import postgres_schema

    with postgres_schema() as url:
        PostgresTokenStore(url).close()  # its tables exist now
        config = tmp_path / "bastion.yaml"
        config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase_url: '{url}'\nservers: {{}}\n", encoding="utf-8")
        result = CliRunner().invoke(main, ["doctor", "--config", str(config)])

    [line] = [line for line in result.output.splitlines() if line.startswith("database")]
    assert line.split()[1] == "ok"
    assert "tokens v1" in line


def test_doctor_fails_on_an_unreachable_database(tmp_path: Path) -> None:
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\ndatabase_url: postgresql://u:secret@127.0.0.1:9/db?connect_timeout=2\n"
        "servers: {}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["doctor", "--config", str(config)])

    assert result.exit_code == 1
    assert "database     FAIL  cannot connect to postgresql://u:***@127.0.0.1:9/db" in result.output


def test_audit_commands_read_the_log_that_follows_database_url(tmp_path: Path) -> None:
    """No `audit.url`: the gateway writes its audit log to `database_url`, so the CLI reads it there."""
    from tests.unit.audit.postgres import postgres_schema

    with postgres_schema() as url:
        config = tmp_path / "bastion.yaml"
        config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase_url: '{url}'\nservers: {{}}\n", encoding="utf-8")
        created = CliRunner().invoke(main, ["token", "create", "--agent", "pg-bot", "--config", str(config)])
        assert created.exit_code == 0, created.output
        exported = CliRunner().invoke(main, ["audit", "export", "--config", str(config)])
        verified = CliRunner().invoke(main, ["audit", "verify", "--config", str(config)])

    assert exported.exit_code == 0, exported.output
    assert '"agent": "pg-bot"' in exported.stdout or '"agent":"pg-bot"' in exported.stdout
    assert verified.exit_code == 0, verified.output
    assert "postgresql://" in verified.stdout
    assert not (tmp_path / "data" / "audit.db").exists()
