"""`bastion audit search`'s table names what each event is about: the tool, or the method of a non-tool request."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml
from click.testing import CliRunner

from bastion.audit import open_audit_store
from bastion.audit.events import AuditEvent, CallCompleted, CallRequested, EgressBlocked
from bastion.audit.subject import subject
from bastion.cli.main import main

AT = 1_795_586_105.0


@pytest.mark.parametrize(
    ("event_type", "details", "expected"),
    [
        ("call.requested", {"method": "tools/call", "tool": "read_query"}, "read_query"),
        ("call.requested", {"method": "initialize", "tool": None}, "initialize"),
        ("call.completed", {"method": "tools/list", "tool": None}, "tools/list"),
        ("call.verdict", {"tool": "read_query"}, "read_query"),
        ("egress.blocked", {"method": "CONNECT", "host": "evil.example"}, None),
        ("server.started", {}, None),
        ("call.requested", {"method": 7}, None),
    ],
)
def test_subject_is_the_tool_else_the_method_of_a_call(
    event_type: str, details: dict[str, object], expected: str | None
) -> None:
    assert subject(event_type, details) == expected


def test_the_search_table_shows_the_method_of_non_tool_calls(tmp_path: Path) -> None:
    config = tmp_path / "bastion.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "servers": {"time": {"command": "true"}}}))
    events: list[AuditEvent] = [
        CallRequested(time=AT, agent="bot", server="time", correlation_id="a", method="initialize"),
        CallCompleted(
            time=AT,
            agent="bot",
            server="time",
            correlation_id="a",
            method="initialize",
            outcome="allowed",
            latency_ms=1,
        ),
        CallRequested(time=AT, agent="bot", server="time", correlation_id="b", method="tools/list"),
        CallRequested(time=AT, agent="bot", server="time", correlation_id="c", method="tools/call", tool="now"),
        EgressBlocked(time=AT, server="time", host="evil.example", method="CONNECT"),
    ]

    async def write() -> None:
        store = open_audit_store(tmp_path / "data")
        await store.open()
        for event in events:
            await store.record(event, durable=False)
        await store.close()

    anyio.run(write)
    result = CliRunner().invoke(main, ["audit", "search", "--config", str(config)], catch_exceptions=False)

    assert result.exit_code == 0
    tool_column = [line.split()[5] for line in result.stdout.splitlines()[1:]]
    assert tool_column == ["-", "now", "tools/list", "initialize", "initialize"]
