"""`bastion approvals list|show|approve|deny|rules|revoke-rule`: decide held calls from a shell.

Works on the approval store directly (the gateway's waiting call wakes within a fraction of a
second). Decisions are recorded as `cli:<os user>`, in the approval store and in the audit
log (`approval.decided`). The audit store is checked writable before deciding, and the
decision is refused when it is not (fail closed); the event is committed right after.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from bastion.approvals.audit_events import approval_audit_event
from bastion.approvals.decisions import decide
from bastion.approvals.events import ListEventSink, LoggingEventSink
from bastion.approvals.model import Approval, ApprovalError, ApprovalState
from bastion.approvals.store import ApprovalStore
from bastion.audit.events import AuditEvent
from bastion.audit.store import AuditStoreError
from bastion.cli.audit_events import AuditNotWritable, audited
from bastion.cli.common import config_option, load_or_exit
from bastion.stores import open_approval_store


@contextmanager
def _store(config_path: Path) -> Iterator[ApprovalStore]:
    store = open_approval_store(load_or_exit(config_path))
    try:
        yield store
    finally:
        store.close()


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t is not None else "-"


def decider() -> str:
    """Who a CLI decision is recorded under."""
    return f"cli:{getpass.getuser()}"


@click.group("approvals")
def approvals_group() -> None:
    """List and decide tool calls held for human approval."""


@approvals_group.command("list")
@config_option
@click.option(
    "--state",
    type=click.Choice([s.value for s in ApprovalState]),
    default=None,
    help="Only approvals in this state (default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_approvals(config_path: Path, state: str | None, as_json: bool) -> None:
    """List approvals, oldest first."""
    with _store(config_path) as store:
        approvals = store.list(ApprovalState(state) if state else None)
    if as_json:
        for approval in approvals:
            click.echo(json.dumps(approval.as_dict(), sort_keys=True))
        return
    if not approvals:
        click.echo("no approvals")
        return
    click.echo(f"{'ID':10} {'STATE':9} {'CREATED':20} {'AGENT':20} {'CALL':32} RULE")
    for a in approvals:
        click.echo(
            f"{a.id:10} {a.state.value:9} {_when(a.created_at):20} {a.agent:20} {a.server + '/' + a.tool:32} {a.rule}"
        )


@approvals_group.command("show")
@config_option
@click.argument("approval_id")
def show(config_path: Path, approval_id: str) -> None:
    """Show one approval, with its arguments, as JSON."""
    with _store(config_path) as store:
        approval = store.get(approval_id)
    if approval is None:
        raise click.ClickException(f"no approval with id {approval_id!r}; see: bastion approvals list")
    click.echo(json.dumps(approval.as_dict(), indent=2, sort_keys=True))


def _decide(config_path: Path, approval_id: str, *, approve: bool, reason: str, always: bool) -> Approval:
    config = load_or_exit(config_path)
    events = ListEventSink(LoggingEventSink())

    async def act() -> Approval:
        with _store(config_path) as store:
            return decide(
                store,
                events,
                approval_id,
                approve=approve,
                decided_by=decider(),
                reason=reason,
                always=always,
                via="cli",
            )

    def audit_events(_: Approval) -> list[AuditEvent]:
        return [e for e in map(approval_audit_event, events.events) if e is not None]

    try:
        return audited(config, act, audit_events)
    except ApprovalError as exc:
        raise click.ClickException(str(exc)) from exc
    except AuditNotWritable as exc:
        raise click.ClickException(f"nothing decided: the audit log cannot be written ({exc})") from exc
    except AuditStoreError as exc:
        raise click.ClickException(f"{approval_id} was decided, but the audit log could not record it: {exc}") from exc


@approvals_group.command("approve")
@config_option
@click.argument("approval_id")
@click.option("--reason", default="", help="Why (recorded).")
@click.option("--always", is_flag=True, help="Also allow this agent's identical calls from now on (a recorded rule).")
def approve(config_path: Path, approval_id: str, reason: str, always: bool) -> None:
    """Approve a held call: it proceeds, or its identical retry is let through once."""
    decided = _decide(config_path, approval_id, approve=True, reason=reason, always=always)
    rule = " and recorded an always-allow rule" if always else ""
    click.echo(f"approved {decided.id} ({decided.agent} -> {decided.server}/{decided.tool}){rule}")


@approvals_group.command("deny")
@config_option
@click.argument("approval_id")
@click.option("--reason", default="", help="Why; the agent is told.")
def deny(config_path: Path, approval_id: str, reason: str) -> None:
    """Deny a held call: the agent gets a tool error with the reason."""
    decided = _decide(config_path, approval_id, approve=False, reason=reason, always=False)
    click.echo(f"denied {decided.id} ({decided.agent} -> {decided.server}/{decided.tool})")


@approvals_group.command("rules")
@config_option
def rules(config_path: Path) -> None:
    """List the active always-allow rules."""
    with _store(config_path) as store:
        found = store.rules()
    if not found:
        click.echo("no always-allow rules")
        return
    for rule in found:
        arguments = json.dumps(dict(rule.arguments), sort_keys=True)
        click.echo(f"{rule.id}  {rule.agent} -> {rule.server}/{rule.tool} {arguments}  (by {rule.created_by})")


@approvals_group.command("revoke-rule")
@config_option
@click.argument("rule_id")
def revoke_rule(config_path: Path, rule_id: str) -> None:
    """Revoke an always-allow rule: identical calls are held again."""
    with _store(config_path) as store:
        if not store.revoke_rule(rule_id):
            raise click.ClickException(f"no active rule with id {rule_id!r}; see: bastion approvals rules")
    click.echo(f"revoked rule {rule_id}")
