"""`bastion admin token create|list|revoke`: credentials for the admin API (not for agents)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bastion.admin.tokens import Role
from bastion.cli.common import config_option, load_or_exit
from bastion.stores import open_admin_token_store


@click.group("admin")
def admin_group() -> None:
    """Administer Bastion: admin API credentials."""


@admin_group.group("token")
def admin_token_group() -> None:
    """Create, list and revoke admin tokens (separate from agent tokens)."""


@admin_token_group.command("create")
@config_option
@click.option("--name", required=True, help="Who holds it; decisions are recorded as api:<name>.")
@click.option(
    "--role",
    type=click.Choice(["admin", "approver", "viewer"]),
    default="approver",
    show_default=True,
    help="viewer reads; approver also decides approvals; admin may do everything.",
)
def create(config_path: Path, name: str, role: str) -> None:
    """Create an admin token and print it once, alone on the last line."""
    store = open_admin_token_store(load_or_exit(config_path))
    try:
        identity, token = store.create(name, Role.parse(role))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    finally:
        store.close()
    click.echo(f"Created admin token {identity.id} for {name!r} (role {role}). It is shown only now:")
    click.echo(token)


@admin_token_group.command("list")
@config_option
def list_tokens(config_path: Path) -> None:
    """List admin tokens (never the secrets)."""
    store = open_admin_token_store(load_or_exit(config_path))
    try:
        identities = store.list()
    finally:
        store.close()
    if not identities:
        click.echo("no admin tokens; create one with: bastion admin token create --name NAME --role approver")
        return
    click.echo(f"{'ID':10} {'NAME':24} {'ROLE':9} {'CREATED':20} STATE")
    for i in identities:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i.created_at))
        click.echo(f"{i.id:10} {i.name:24} {i.role.label:9} {created:20} {'revoked' if i.revoked_at else 'active'}")


@admin_token_group.command("revoke")
@config_option
@click.argument("token_id")
def revoke(config_path: Path, token_id: str) -> None:
    """Revoke an admin token; it is refused from the next request on."""
    store = open_admin_token_store(load_or_exit(config_path))
    try:
        if not store.revoke(token_id):
            raise click.ClickException(f"no active admin token with id {token_id!r}")
    finally:
        store.close()
    click.echo(f"revoked admin token {token_id}")
