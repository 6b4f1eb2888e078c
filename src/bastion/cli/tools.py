"""`bastion tools list|show|accept|history`: review pinned tool definitions and accept changes."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click

from bastion.audit.store import AuditStoreError
from bastion.cli.audit_events import AuditNotWritable, audited
from bastion.cli.common import config_option, load_or_exit
from bastion.guard.pinning import (
    LoggingPinEventSink,
    PinEvent,
    PinRecord,
    PinStore,
    PinStoreError,
    accept_tools,
)
from bastion.guard.pinning.accept import definition_diff, pretty_definition
from bastion.guard.pinning.audit_events import pin_audit_event
from bastion.stores import open_pin_store

T = TypeVar("T")


def _with_store(config_path: Path, action: Callable[[PinStore], Awaitable[T]]) -> T:
    config = load_or_exit(config_path)
    store = open_pin_store(config)
    try:
        return anyio.run(action, store)
    finally:
        store.close()


@click.group("tools")
def tools_group() -> None:
    """Review pinned tool definitions: list them, see what changed, accept a change."""


@tools_group.command("list")
@config_option
@click.option("--server", default=None, help="Only this server's tools.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def list_tools(config_path: Path, server: str | None, as_json: bool) -> None:
    """List pinned tools and their state: pinned, changed, held-for-review or removed."""

    async def run(store: PinStore) -> list[PinRecord]:
        return await store.list(server)

    records = _with_store(config_path, run)
    if as_json:
        for record in records:
            click.echo(json.dumps(_as_dict(record)))
        return
    if not records:
        click.echo("no pinned tools yet; tools are pinned when an agent first lists or calls them")
        return
    click.echo(f"{'SERVER':16} {'TOOL':28} {'STATUS':16} {'HASH':14} {'SINCE':20} DETAIL")
    for record in records:
        since = record.removed_at or record.changed_at or record.accepted_at or record.first_seen
        click.echo(
            f"{record.server:16} {record.tool:28} {record.status:16} {_short(record.current_hash):14} "
            f"{_when(since):20} {_detail(record)}"
        )
    blocked = [r for r in records if r.blocked]
    if blocked:
        click.echo(f"\n{len(blocked)} tool(s) blocked. Review one with: bastion tools show SERVER TOOL")


@tools_group.command("show")
@config_option
@click.argument("server")
@click.argument("tool")
def show(config_path: Path, server: str, tool: str) -> None:
    """Show a pinned tool: its state, findings, and what changed since it was trusted."""

    async def run(store: PinStore) -> list[PinRecord]:
        return [r for r in await store.list(server) if r.tool == tool]

    found = _with_store(config_path, run)
    if not found:
        raise click.ClickException(f"no pinned tool {tool!r} on server {server!r}; see: bastion tools list")
    record = found[0]
    click.echo(f"{server}/{tool}: {record.status}")
    click.echo(f"  current  {record.current_hash}")
    click.echo(f"  trusted  {record.trusted_hash or '(nothing trusted yet: held on first sight)'}")
    if record.accepted_by:
        click.echo(f"  accepted by {record.accepted_by} at {_when(record.accepted_at)}")
    for finding in record.findings:
        click.echo(f"  finding: {finding}")
    diff = definition_diff(record)
    if diff is not None:
        click.echo("\nChange since it was trusted:")
        click.echo("\n".join(diff))
    else:
        click.echo("\nCurrent definition:")
        click.echo(pretty_definition(record.current_definition))
    if record.blocked:
        click.echo(f"\nTo accept it: bastion tools accept {server} {tool} --hash {_short(record.current_hash)}")


@tools_group.command("accept")
@config_option
@click.argument("server")
@click.argument("tool", required=False)
@click.option("--all", "accept_all", is_flag=True, help="Accept every changed or held tool of SERVER.")
@click.option("--hash", "expected_hash", default=None, help="Accept only if the definition still has this hash.")
@click.option("--by", "actor", default=None, help="Who accepts (recorded). Default: the local user.")
def accept(
    config_path: Path, server: str, tool: str | None, accept_all: bool, expected_hash: str | None, actor: str | None
) -> None:
    """Trust the current definition of SERVER's TOOL; a running gateway unblocks it within a second."""
    if (tool is None) == (not accept_all):
        raise click.UsageError("give a TOOL or --all (one of them)")
    if accept_all and expected_hash is not None:
        raise click.UsageError("--hash applies to one tool; leave it out with --all")
    who = actor or f"local:{getpass.getuser()}"
    sink = LoggingPinEventSink()
    config = load_or_exit(config_path)
    events: list[PinEvent] = []

    async def run() -> list[PinRecord]:
        store = open_pin_store(config)
        try:
            accepted = await accept_tools(store, server, tool, actor=who, expected_hash=expected_hash, sink=sink)
            events.extend(event for _, event in accepted)
            return [record for record, _ in accepted]
        finally:
            store.close()

    def audit_events(_: list[PinRecord]) -> list[Any]:
        return [e for e in map(pin_audit_event, events) if e is not None]

    # The audit store is checked writable first (nothing is accepted otherwise); events are committed after.
    try:
        records = audited(config, run, audit_events)
    except PinStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    except AuditNotWritable as exc:
        raise click.ClickException(f"nothing accepted: the audit log cannot be written ({exc})") from exc
    except AuditStoreError as exc:
        done = ", ".join(f"{e.server}/{e.tool}" for e in events)
        raise click.ClickException(f"accepted {done}, but the audit log could not record it: {exc}") from exc
    if not records:
        click.echo(f"nothing to accept: no tool of server {server!r} is changed or held")
    for record in records:
        click.echo(f"accepted {record.server}/{record.tool} ({_short(record.current_hash)}) as {who}")


@tools_group.command("history")
@config_option
@click.option("--server", default=None, help="Only this server's events.")
@click.option("--tool", default=None, help="Only this tool's events.")
@click.option("--limit", default=100, show_default=True, help="How many of the latest events.")
def history(config_path: Path, server: str | None, tool: str | None, limit: int) -> None:
    """Pin events, oldest first: pinned, held, changed, removed, restored, accepted."""

    async def run(store: PinStore) -> list[Any]:
        return await store.events(server, tool, limit)

    for event in _with_store(config_path, run):
        click.echo(f"{_when(event.time)}  {event.describe()}")


def _as_dict(record: PinRecord) -> dict[str, Any]:
    return {
        "server": record.server,
        "tool": record.tool,
        "status": record.status,
        "current_hash": record.current_hash,
        "trusted_hash": record.trusted_hash,
        "findings": [str(f) for f in record.findings],
        "first_seen": record.first_seen,
        "changed_at": record.changed_at,
        "removed_at": record.removed_at,
        "accepted_by": record.accepted_by,
        "accepted_at": record.accepted_at,
    }


def _detail(record: PinRecord) -> str:
    if record.state == "held" and record.findings:
        more = f" (+{len(record.findings) - 1} more)" if len(record.findings) > 1 else ""
        return f"{record.findings[0].kind} in {record.findings[0].where}{more}"
    if record.accepted_by:
        return f"accepted by {record.accepted_by}"
    return ""


def _short(fingerprint: str | None) -> str:
    return fingerprint.removeprefix("sha256:")[:12] if fingerprint else "-"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t is not None else "-"
