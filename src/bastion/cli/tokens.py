"""`bastion token create|list|revoke`: agent credentials. Only a hash of each token is kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import click

from bastion.audit.events import TokenRevoked
from bastion.audit.store import AuditStoreError
from bastion.auth.token_requests import check_token_request, parse_lifetime, parse_servers, token_created
from bastion.auth.tokens import TokenInfo
from bastion.cli.audit_events import record_events
from bastion.cli.common import config_option, load_or_exit
from bastion.config import BastionConfig
from bastion.stores import open_token_store


def _duration(text: str | None) -> float | None:
    try:
        return parse_lifetime(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def issue_token(
    config: BastionConfig, agent: str, servers: Sequence[str] | None, expires_in: float | None
) -> tuple[TokenInfo, str]:
    """A new token for `agent` reaching `servers` (None: all), recorded in the audit log first.

    Fails closed: a token whose `token.created` event cannot be written is revoked at once.
    """
    try:
        check_token_request(config, agent, servers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--servers" if "server" in str(exc) else "--agent") from None
    store = open_token_store(config)
    try:
        info, token = store.create(agent, servers, expires_in=expires_in)
        try:
            record_events(config, token_created(info))
        except AuditStoreError as exc:
            store.revoke(info.id)  # fail closed: no token exists without its audit record
            raise click.ClickException(f"token not created: the audit log cannot be written ({exc})") from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    finally:
        store.close()
    return info, token


@click.group("token")
def token_group() -> None:
    """Create, list and revoke agent tokens."""


@token_group.command("create")
@config_option
@click.option("--agent", required=True, help="The agent's name, as it appears in the audit log.")
@click.option("--servers", default=None, help="Comma-separated servers the token may reach (default: all).")
@click.option("--expires", default=None, help="Lifetime, e.g. 3600, 90m, 12h, 30d (default: never).")
def create(config_path: Path, agent: str, servers: str | None, expires: str | None) -> None:
    """Create a token and print it once, alone on the last line."""
    config = load_or_exit(config_path)
    info, token = issue_token(config, agent, parse_servers(servers), _duration(expires))
    reach = ", ".join(sorted(info.servers)) if info.servers is not None else "all servers"
    click.echo(f"Created token {info.id} for agent {agent!r} ({reach}). It is shown only now:", err=False)
    click.echo(token)


@token_group.command("list")
@config_option
def list_tokens(config_path: Path) -> None:
    """List tokens (never the secrets)."""
    config = load_or_exit(config_path)
    store = open_token_store(config)
    try:
        infos = store.list()
    finally:
        store.close()
    if not infos:
        click.echo("no tokens; create one with: bastion token create --agent NAME")
        return
    click.echo(f"{'ID':10} {'AGENT':24} {'STATE':8} {'CREATED':20} {'EXPIRES':20} SERVERS")
    for info in infos:
        reach = ",".join(sorted(info.servers)) if info.servers is not None else "*"
        click.echo(
            f"{info.id:10} {info.agent:24} {info.state:8} {_when(info.created_at):20} "
            f"{_when(info.expires_at):20} {reach}"
        )


@token_group.command("revoke")
@config_option
@click.argument("token_id", required=False)
@click.option("--agent", default=None, help="Revoke every token of this agent instead.")
def revoke(config_path: Path, token_id: str | None, agent: str | None) -> None:
    """Revoke one token by id, or all of an agent's tokens. Takes effect within a second."""
    if (token_id is None) == (agent is None):
        raise click.UsageError("give a token id or --agent NAME (one of them)")
    config = load_or_exit(config_path)
    store = open_token_store(config)
    try:
        if agent is not None:
            ids = [info.id for info in store.list() if info.agent == agent and info.revoked_at is None]
            count = store.revoke_agent(agent)
            _record_revoked(config, [(token, agent) for token in ids])
            click.echo(f"revoked {count} token(s) of agent {agent!r}")
            return
        assert token_id is not None
        owner = next((info.agent for info in store.list() if info.id == token_id), None)
        if not store.revoke(token_id):
            raise click.ClickException(f"no token with id {token_id!r}; see: bastion token list")
        _record_revoked(config, [(token_id, owner)])
        click.echo(f"revoked token {token_id}")
    finally:
        store.close()


def _record_revoked(config: BastionConfig, tokens: list[tuple[str, str | None]]) -> None:
    """Record `token.revoked` events. The revocation stands even if this fails (it only removes access)."""
    try:
        record_events(config, *(TokenRevoked(agent=agent, token_id=token) for token, agent in tokens))
    except AuditStoreError as exc:
        click.echo(f"warning: the revocation is in force but could not be audited: {exc}", err=True)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t is not None else "-"
