"""`bastion audit verify|search|export|prune` and the token events, through the real command."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import anyio
import pytest
import yaml
from click.testing import CliRunner

from bastion.audit import open_audit_store
from bastion.audit.anchor import anchor_at
from bastion.audit.chain import encode_event
from bastion.audit.events import CallRequested
from bastion.audit.redact import PayloadPolicy
from bastion.audit.sqlite_store import SqliteBackend
from bastion.cli.main import main

AT = 1_795_586_105.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "servers": {"time": {"command": "true"}}}))
    return path


def seed(config: Path, count: int = 5, url: str | None = None) -> Path:
    data = config.parent / "data"

    async def write() -> None:
        store = open_audit_store(data, url=url, anchor=anchor_at(data))  # as the gateway opens it
        await store.open()
        for n in range(count):
            agent = "alice" if n % 2 else "bob"
            arguments = {"q": f"report number {n}"}
            event = CallRequested(time=AT + n, agent=agent, server="time", correlation_id=f"c{n}",
                                  method="tools/call", tool="get_current_time", arguments=arguments)  # fmt: skip
            await store.record(event, durable=False)
        await store.close()

    anyio.run(write)
    return data / "audit.db"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_verify_passes_on_an_intact_log(config: Path) -> None:
    seed(config)

    code, out, _ = run("audit", "verify", "--config", str(config))

    assert code == 0
    assert "OK, 5 event(s) verified" in out


def test_verify_and_export_tell_of_write_ahead_records_not_yet_chained(config: Path) -> None:
    """A gateway killed right after a lone call's record was committed to `audit_pending`
    leaves it there until the next start: verify passes on the chain, and says so."""
    db = seed(config)
    data = config.parent / "data"
    backend = SqliteBackend(db, fsync=True, anchor=anchor_at(data))
    conn = backend.connect()
    try:
        event = CallRequested(correlation_id="c9", method="tools/call", tool="get_current_time", arguments={})
        assert backend.append_if_free(conn, [encode_event(event, PayloadPolicy())])
    finally:
        conn.close()  # and nothing chains it: as if the process had died here

    code, out, err = run("audit", "verify", "--config", str(config))

    assert code == 0
    assert "OK, 5 event(s) verified" in out
    assert "1 write-ahead record(s) wait in audit_pending" in err

    code, out, err = run("audit", "export", "--config", str(config))  # the chain only, and it says so
    assert code == 0
    assert len(out.splitlines()) == 5
    assert "1 write-ahead record(s) wait in audit_pending" in err


@pytest.mark.parametrize(
    ("tamper", "seq"),
    [
        ("UPDATE events SET data = replace(data, 'number 2', 'number 9') WHERE seq = 3", 3),
        ("DELETE FROM events WHERE seq = 2", 2),
        ("UPDATE events SET seq = -seq WHERE seq IN (4, 5); UPDATE events SET seq = 9 + seq WHERE seq IN (-4, -5)", 4),
    ],
    ids=["edit", "delete", "reorder"],
)
def test_verify_fails_naming_the_first_bad_sequence_number(config: Path, tamper: str, seq: int) -> None:
    db = seed(config)
    conn = sqlite3.connect(db)
    conn.executescript(tamper)
    conn.commit()
    conn.close()

    code, _, err = run("audit", "verify", "--config", str(config))

    assert code == 1
    assert f"BROKEN at sequence number {seq}:" in err


def test_search_filters_and_pages(config: Path) -> None:
    seed(config)

    code, out, err = run(
        "audit", "search", "--config", str(config), "--agent", "bob", "--limit", "2", "--format", "jsonl"
    )
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [5, 3]
    assert "--cursor 3" in err

    code, out, err = run(
        "audit", "search", "--config", str(config), "--agent", "bob", "--cursor", "3", "--format", "jsonl"
    )
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1]
    assert "--cursor" not in err


def test_search_full_text_and_table(config: Path) -> None:
    seed(config)

    code, out, _ = run("audit", "search", "--config", str(config), "--text", "number 3")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("SEQ")
    assert len(lines) == 2
    assert "get_current_time" in lines[1]


def test_search_rejects_a_bad_time(config: Path) -> None:
    seed(config)

    code, _, err = run("audit", "search", "--config", str(config), "--since", "yesterday-ish")

    assert code == 2
    assert "neither a time" in err


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_to_a_file(config: Path, tmp_path: Path, fmt: str) -> None:
    seed(config)
    target = tmp_path / f"out.{fmt}"

    code, out, err = run("audit", "export", "--config", str(config), "--format", fmt, "--output", str(target))

    assert code == 0
    assert out == ""
    assert "exported 5 event(s)" in err
    text = target.read_text(encoding="utf-8")
    if fmt == "csv":
        seqs = [int(row["seq"]) for row in csv.DictReader(io.StringIO(text, newline=""))]
    elif fmt == "json":
        seqs = [record["seq"] for record in json.loads(text)]
    else:
        seqs = [json.loads(line)["seq"] for line in text.splitlines()]
    assert seqs == [1, 2, 3, 4, 5]


def test_export_with_filters(config: Path) -> None:
    seed(config)

    code, out, _ = run(
        "audit", "export", "--config", str(config), "--agent", "alice", "--since", "2026-11-25T05:55:06Z"
    )

    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [2, 4]


def test_token_create_and_revoke_are_audited(config: Path) -> None:
    code, out, _ = run("token", "create", "--config", str(config), "--agent", "ci-bot", "--servers", "time")
    assert code == 0
    token = out.strip().splitlines()[-1]
    token_id = token.split("_")[1]
    code, _, _ = run("token", "revoke", "--config", str(config), token_id)
    assert code == 0

    code, out, _ = run("audit", "export", "--config", str(config))
    events = [json.loads(line) for line in out.splitlines()]

    assert [(e["type"], e["agent"], e["token_id"]) for e in events] == [
        ("token.created", "ci-bot", token_id),
        ("token.revoked", "ci-bot", token_id),
    ]
    assert events[0]["servers"] == ["time"]
    assert token.split("_", 2)[2] not in out, "the secret is never recorded"  # the whole secret: it may hold '_'


def test_prune_applies_retention(config: Path) -> None:
    seed(config, 10)
    config.write_text(config.read_text() + "audit:\n  retention:\n    max_events: 3\n")

    code, out, _ = run("audit", "prune", "--config", str(config))
    assert code == 0
    code, out, _ = run("audit", "export", "--config", str(config), "--type", "call.requested")
    assert [json.loads(line)["correlation_id"] for line in out.splitlines()] == ["c8", "c9"]
    code, out, _ = run("audit", "verify", "--config", str(config))
    assert code == 0
    assert "since retention checkpoint" in out


def test_search_export_verify_and_prune_on_postgres(tmp_path: Path) -> None:
    from tests.unit.audit.postgres import postgres_schema

    with postgres_schema() as url:
        config = tmp_path / "bastion.yaml"
        settings = {"data_dir": str(tmp_path / "data"), "audit": {"url": url, "retention": {"max_events": 3}}}
        config.write_text(yaml.safe_dump(settings))
        seed(config, 6, url=url)

        searched = run("audit", "search", "--config", str(config), "--agent", "alice", "--format", "jsonl")
        exported = run("audit", "export", "--config", str(config), "--format", "csv")
        verified = run("audit", "verify", "--config", str(config))
        pruned = run("audit", "prune", "--config", str(config))
        after = run("audit", "verify", "--config", str(config))

    assert [json.loads(line)["seq"] for line in searched[1].splitlines()] == [6, 4, 2]
    assert [row["seq"] for row in csv.DictReader(io.StringIO(exported[1], newline=""))] == [str(n) for n in range(1, 7)]
    assert verified[0] == 0
    assert "postgresql://" in verified[1]
    assert "OK, 6 event(s) verified" in verified[1]
    assert pruned[0] == 0
    assert after[0] == 0, after[2]
    assert "since retention checkpoint 4" in after[1]
