"""`bastion audit search|export|verify|prune`: read, hand over and check the audit log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import anyio
import click

from bastion.audit import open_audit_store
from bastion.audit.anchor_check import UNANCHORED
from bastion.audit.events import EVENT_TYPES
from bastion.audit.export import EXPORT_FORMATS, ExportFormat, event_record, export_events, write_jsonl
from bastion.audit.head import SignedHead
from bastion.audit.query import EventQuery
from bastion.audit.retention import parse_duration
from bastion.audit.search import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, search, verify_log
from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.audit.store import AuditStore, AuditStoreError
from bastion.audit.subject import subject
from bastion.cli.common import config_option, load_or_exit
from bastion.stores import audit_url


@click.group("audit")
def audit_group() -> None:
    """Search, export and verify the audit log."""


def _when(text: str | None) -> float | None:
    """A Unix time from ISO 8601 (`2026-11-25T06:00:00Z`, a date) or a duration ago (`15m`, `2d`)."""
    if text is None:
        return None
    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a time (2026-11-25T06:00:00Z) nor a duration (15m, 2d)"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{text!r} has no time zone; add Z for UTC or an offset like +01:00")
    return moment.timestamp()


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filters `search` and `export` share."""
    options = [
        click.option("--since", default=None, help="From this time (ISO 8601 with zone) or this long ago (15m, 2d)."),
        click.option("--until", default=None, help="Before this time, or this long ago."),
        click.option("--agent", default=None, help="Only this agent's events."),
        click.option("--server", default=None, help="Only events about this server."),
        click.option("--tool", default=None, help="Only events about this tool."),
        click.option(
            "--type",
            "types",
            multiple=True,
            type=click.Choice(sorted(EVENT_TYPES)),
            help="Only events of this type (repeatable).",
        ),
        click.option(
            "--verdict", default=None, help="allow, deny, ask (verdicts) or allowed, denied, error (outcomes)."
        ),
        click.option("--rule", default=None, help="Only events naming this check or policy rule."),
        click.option("--correlation-id", default=None, help="Only the events of this call."),
        click.option("--text", default=None, help="Full-text search: every word must occur in the event."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _query(options: dict[str, Any]) -> EventQuery:
    return EventQuery(
        since=_when(options["since"]),
        until=_when(options["until"]),
        agent=options["agent"],
        server=options["server"],
        tool=options["tool"],
        types=tuple(options["types"]),
        verdict=options["verdict"],
        rule=options["rule"],
        correlation_id=options["correlation_id"],
        text=options["text"],
    )


def _reader(config_path: Path) -> AuditStore:
    """The configured log, to read (its payload policy does not matter to a reader).

    `audit.url`, else `database_url` (the log follows the shared state), as the gateway writes it.
    """
    config = load_or_exit(config_path)
    return open_audit_store(config.data_dir, url=audit_url(config))


@audit_group.command("search")
@config_option
@filter_options
@click.option("--limit", type=click.IntRange(1, MAX_PAGE_SIZE), default=DEFAULT_PAGE_SIZE, show_default=True)
@click.option("--cursor", default=None, help="Continue from a previous page (printed at its end).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def search_command(config_path: Path, limit: int, cursor: str | None, fmt: str, **filters: Any) -> None:
    """Find events, newest first, one page at a time."""
    reader = _reader(config_path)
    try:
        page = search(reader, _query(filters), limit=limit, cursor=cursor)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    except AuditStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "jsonl":
        write_jsonl((event_record(event) for event in page.events), sys.stdout)
    else:
        _table([event_record(event) for event in page.events], sys.stdout)
    if page.next_cursor is not None:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


_TABLE_COLUMNS = (("seq", 8), ("time", 27), ("type", 18), ("agent", 16), ("server", 12), ("tool", 20))


def _table(records: list[dict[str, Any]], out: TextIO) -> None:
    header = " ".join(name.upper().ljust(width) for name, width in _TABLE_COLUMNS) + " VERDICT/RULE"
    out.write(header + "\n")
    for record in records:
        shown = {**record, "tool": subject(str(record.get("type", "")), record)}
        cells = [
            str(shown.get(name) if shown.get(name) is not None else "-").ljust(width) for name, width in _TABLE_COLUMNS
        ]
        decided = record.get("verdict") or record.get("outcome") or ""
        rule = record.get("rule")
        out.write(" ".join(cells) + f" {decided}{' (' + rule + ')' if rule else ''}\n")


@audit_group.command("export")
@config_option
@filter_options
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default: stdout).")
def export(config_path: Path, fmt: ExportFormat, output: Path | None, **filters: Any) -> None:
    """Write matching events, oldest first, as JSON Lines, one JSON array, or CSV."""
    reader = _reader(config_path)
    query = _query(filters)
    try:
        if output is None:
            count = _export(reader, query, fmt, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = _export(reader, query, fmt, out)
    except AuditStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count} event(s)", err=True)
    _note_pending(reader)


def _export(reader: AuditStore, query: EventQuery, fmt: ExportFormat, out: TextIO) -> int:
    if not sys.stderr.isatty():
        return export_events(reader, query, fmt, out)
    with click.progressbar(length=reader.count(query), label="exporting", file=sys.stderr) as bar:
        return export_events(reader, query, fmt, out, on_progress=bar.update)


@audit_group.command("verify")
@config_option
@click.option(
    "--expect",
    default=None,
    metavar="HEAD",
    help="A head `bastion audit head` printed earlier: the log must still contain it.",
)
def verify(config_path: Path, expect: str | None) -> None:
    """Walk the hash chain and check its signed head and head file; exit 1 naming the first bad
    sequence number if anything was altered, removed or rolled back."""
    try:
        expected = SignedHead.parse(expect) if expect is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from exc
    config = load_or_exit(config_path)
    url = audit_url(config)
    reader = open_audit_store(config.data_dir, url=url)
    anchor = config.audit.anchor(config.data_dir, url)
    try:
        report = verify_log(reader, anchor, expected)
    except AuditStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if anchor is None:
        click.echo(f"warning: {UNANCHORED}", err=True)
    if not report.ok:
        click.echo(
            f"audit log {reader.description}: BROKEN at sequence number {report.first_bad_seq}: "
            f"{report.problem} ({report.checked} event(s) verified before it)",
            err=True,
        )
        sys.exit(1)
    start, _ = reader.chain_ends()
    since = f" since retention checkpoint {start.seq}" if start is not None else ""
    anchored = ["signed"] if anchor is not None else []
    if anchor is not None and anchor.head_file.exists():
        anchored.append(f"holds the head in {anchor.head_file.name}")
    if expected is not None:
        anchored.append(f"holds the expected head {expected.seq}")
    checked = f" ({'; '.join(anchored)})" if anchored else ""
    verified = f"{report.checked} event(s) verified{since}, head {report.last_seq}{checked}"
    click.echo(f"audit log {reader.description}: OK, {verified}")
    _note_pending(reader)


def _note_pending(reader: AuditStore) -> None:
    """Say on stderr how many write-ahead records wait to be chained (not in the chain's output yet)."""
    pending = reader.pending_count() if isinstance(reader, SqliteAuditStore) else 0
    if pending:
        click.echo(
            f"note: {pending} write-ahead record(s) wait in audit_pending, not yet chained: calls in "
            "flight (a running gateway chains them within 20 ms), or left by a Bastion that stopped "
            "before chaining them (the next `bastion up` or `bastion wrap` on this log does)",
            err=True,
        )


@audit_group.command("head")
@config_option
def head(config_path: Path) -> None:
    """Print the log's signed head (seq:hash:signature), to keep elsewhere and pass to `verify --expect`."""
    config = load_or_exit(config_path)
    url = audit_url(config)
    reader = open_audit_store(config.data_dir, url=url)
    anchor = config.audit.anchor(config.data_dir, url)
    try:
        signed = reader.signed_head()
        key = anchor.key() if anchor is not None else None
    except AuditStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if signed is None or (key is not None and not key.signs(signed)):
        raise click.ClickException(
            f"audit log {reader.description}: the head is not signed by the audit key; run `bastion audit verify`"
        )
    if key is None:
        click.echo(f"warning: {UNANCHORED}", err=True)
        signed = signed._replace(mac="")
    click.echo(signed.token().rstrip(":"))


@audit_group.command("prune")
@config_option
def prune(config_path: Path) -> None:
    """Apply `audit.retention` now (a running gateway also applies it hourly)."""
    from bastion.gateway.gateway import open_audit  # writes: the configured policy and retention

    reader = open_audit(load_or_exit(config_path))

    async def run() -> None:
        await reader.open()
        try:
            await reader.prune_now()
        finally:
            await reader.close()

    try:
        anyio.run(run)
    except AuditStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    start, _ = reader.chain_ends()
    click.echo(f"retention applied; the log now starts after {start.seq if start is not None else 0}")
