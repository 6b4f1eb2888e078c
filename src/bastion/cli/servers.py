"""`bastion servers`: the configured upstreams, and their state in the running gateway;
`bastion servers restart NAME` clears a crash-loop hold through the gateway's admin API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from bastion.cli.common import config_option, load_or_exit
from bastion.cli.running_gateway import admin_request, running_base_url
from bastion.cli.server_logs import server_logs
from bastion.config import StdioServerConfig
from bastion.front.status_key import read_status_key, status_key_file


@click.group(invoke_without_command=True)
@config_option
@click.pass_context
def servers(ctx: click.Context, config_path: Path) -> None:
    """List upstream servers, their state, sandbox, limits in force, restarts and last exit."""
    if ctx.invoked_subcommand is not None:
        return
    config = load_or_exit(config_path)
    base_url = running_base_url(config)
    report = _readiness(f"{base_url}/readyz", read_status_key(status_key_file(config)))
    if report is None:
        click.echo(f"The gateway is not running at {base_url} (start it with: bastion up).")
    states = _mapping(report, "servers")
    runtime = _mapping(report, "runtime")
    click.echo(f"{'NAME':16} {'STATE':11} {'KIND':6} {'SANDBOX':9} {'RESTARTS':8} TARGET")
    for name, server in config.servers.items():
        if isinstance(server, StdioServerConfig):
            kind, target = "stdio", " ".join([server.command, *server.args])
            sandbox = f"{server.sandbox.network}" if server.sandbox.enabled else "OFF"
        else:
            kind, target, sandbox = server.transport, server.url, "-"
        state = str(states.get(name, "unknown")) if report is not None else "-"
        facts: dict[str, Any] = runtime.get(name) or {}
        restarts = str(facts.get("restarts", "-"))
        click.echo(f"{name:16} {state:11} {kind:6} {sandbox:9} {restarts:8} {target}")
    for name, facts in runtime.items():
        if not isinstance(facts, dict) or not (facts.get("limits") or facts.get("last_exit")):
            continue
        limits = facts.get("limits") or {}
        in_force = ", ".join(f"{key} {value}" for key, value in sorted(limits.items())) or "none"
        click.echo(f"\n{name}:\n  limits:    {in_force}\n  last exit: {facts.get('last_exit') or '-'}")


@servers.command("restart")
@config_option
@click.option(
    "--admin-token",
    envvar="BASTION_ADMIN_TOKEN",
    required=True,
    help="An admin token (role admin) for the running gateway's admin API (or $BASTION_ADMIN_TOKEN).",
)
@click.argument("name")
def restart(config_path: Path, admin_token: str, name: str) -> None:
    """Clear NAME's crash-loop hold and start it now (a held server is otherwise not retried)."""
    config = load_or_exit(config_path)
    url = f"{running_base_url(config)}/admin/api/servers/{urllib.parse.quote(name, safe='')}/restart"
    body = admin_request(url, admin_token, method="POST", timeout=90)
    state = body.get("state")
    click.echo(f"{name}: hold cleared; state {state}")
    if state != "up":
        click.echo(f"it did not come up; see its last exit: bastion servers --config {config.source}")
        raise SystemExit(1)


def _mapping(report: dict[str, Any] | None, key: str) -> dict[str, Any]:
    value = report.get(key) if report is not None else None
    return value if isinstance(value, dict) else {}


def _readiness(url: str, status_key: str | None) -> dict[str, Any] | None:
    """The gateway's `/readyz` report: in full when the status key (data_dir/status.key) is readable."""
    headers = {"Authorization": f"Bearer {status_key}"} if status_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=3) as response:
            body: Any = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


servers.add_command(server_logs)
