"""`bastion audit search` with every filter together with `--text`, on SQLite and PostgreSQL (issue 16)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import yaml
from click.testing import CliRunner

from bastion.audit import open_audit_store
from bastion.cli.main import main
from tests.unit.audit.test_filter_combinations import seed_events

OPTIONS = [
    (),
    ("--tool", "read_query"),
    ("--agent", "alice"),
    ("--server", "db"),
    ("--type", "call.verdict"),
    ("--verdict", "allow"),
    ("--rule", "big-reads"),
    ("--correlation-id", "c2"),
    ("--since", "2026-11-25T05:55:08+00:00"),
    ("--until", "2026-11-25T05:55:14+00:00"),
]


@contextlib.contextmanager
def audit_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite://{tmp_path / 'data' / 'audit.db'}"
        return
    from tests.unit.audit.postgres import postgres_schema

    with postgres_schema() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_search_with_text_and_any_other_filter(kind: str, tmp_path: Path) -> None:
    with audit_url(kind, tmp_path) as url:
        config = tmp_path / "bastion.yaml"
        settings = {"data_dir": str(tmp_path / "data"), "audit": {"url": url}, "servers": {"t": {"command": "true"}}}
        config.write_text(yaml.safe_dump(settings))

        async def seed() -> None:
            store = open_audit_store(tmp_path / "data", url=url)
            await store.open()
            for event in seed_events():
                await store.record(event, durable=False)
            await store.close()

        anyio.run(seed)
        for option in OPTIONS:
            args = ["audit", "search", "--config", str(config), "--format", "jsonl", "--text", "customers", *option]
            result = CliRunner().invoke(main, args, catch_exceptions=False)

            assert result.exit_code == 0, (option, result.stderr)
            records = [json.loads(line) for line in result.stdout.splitlines()]
            assert records or option[0] in ("--verdict", "--type"), option  # verdicts do not hold the text
            assert all("customers" in json.dumps(record) for record in records), option
