"""`bastion limits`: each configured limit, and how much of it is used right now.

With Redis (`limits.storage: redis://...`) the counters are read from Redis itself, shared
by every replica. With memory counters they live inside the running gateway, so they are
read from its admin API (a viewer admin token: `--admin-token` or `$BASTION_ADMIN_TOKEN`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import click

from bastion.cli.common import config_option, load_or_exit
from bastion.cli.running_gateway import admin_request, running_base_url
from bastion.config import BastionConfig
from bastion.guard.ratelimit.config import LimitsConfig
from bastion.guard.ratelimit.counters import Counters, redacted_url
from bastion.guard.ratelimit.rules import describe, rate_rules
from bastion.guard.ratelimit.usage import snapshot


@click.command("limits")
@config_option
@click.option(
    "--admin-token",
    envvar="BASTION_ADMIN_TOKEN",
    default=None,
    help="A viewer admin token, to read memory counters from the running gateway (or $BASTION_ADMIN_TOKEN).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def limits_command(config_path: Path, admin_token: str | None, fmt: str) -> None:
    """Show each configured limit and its current use (per agent, server and tool)."""
    config = load_or_exit(config_path)
    limits = config.limits
    if not limits.any:
        click.echo(f"No limits are configured in {config.source} (see docs/limits.md).")
        return
    rows, source, note = _usage(config, admin_token)
    if fmt == "json":
        click.echo(json.dumps({"storage": source, "configured": configured(limits), "usage": rows}, indent=2))
        return
    click.echo(f"Limits in {config.source}")
    for line in configured(limits):
        click.echo(f"  {line}")
    click.echo("")
    if note:
        click.echo(note)
    if rows is None:
        return
    if not rows:
        click.echo(f"No calls counted yet ({source}).")
        return
    click.echo(f"Usage ({source}):")
    click.echo(f"  {'LIMIT':32} {'AGENT':20} {'SERVER':12} {'TOOL':14} {'USED':>6} {'LEFT':>6}  RESETS IN")
    for row in rows:
        resets = "-" if row.get("resets_in") is None else f"{row['resets_in']:.0f} s"
        click.echo(
            f"  {row['limit']:32} {row.get('agent') or '-':20} {row.get('server') or '-':12} "
            f"{row.get('tool') or '-':14} {row['used']:>6} {row['remaining']:>6}  {resets}"
        )


def configured(limits: LimitsConfig) -> list[str]:
    """The configured limits, one line each, as `bastion limits` prints them."""
    lines = []
    for rule in rate_rules(limits):
        rates = "; ".join(describe(item) for item in rule.items)
        whose = {"agent": "each agent", "agent-server": "each agent on each server", "all": "all agents together"}
        lines.append(f"{rule.name} {rates} ({whose[rule.scope]})")
    caps = {
        "concurrent_per_agent": limits.concurrent_per_agent,
        "concurrent_per_server": limits.concurrent_per_server,
        "max_request_bytes": limits.max_request_bytes,
        "max_response_bytes": limits.max_response_bytes,
    }
    lines += [f"{name} {value}" for name, value in caps.items() if value is not None]
    if limits.rate_limited:
        lines.append(
            f"counters: {redacted_url(limits.storage)} ({limits.strategy}); "
            f"when the storage fails: {limits.on_storage_failure}"
        )
    return lines


def _usage(config: BastionConfig, admin_token: str | None) -> tuple[list[dict[str, Any]] | None, str, str]:
    """(rows or None, where they came from, a note to print first)."""
    limits = config.limits
    if limits.shared:
        try:
            rows = anyio.run(_read_shared, limits)
        except Exception as exc:
            raise click.ClickException(
                f"cannot read the counters in {redacted_url(limits.storage)}: {type(exc).__name__}: {exc}"
            ) from exc
        note = "Calls in flight are counted by each gateway process: see its admin API (GET /admin/api/limits)."
        return rows, redacted_url(limits.storage), note if _caps_concurrency(limits) else ""
    base_url = running_base_url(config)
    if admin_token is None:
        return (
            None,
            "memory",
            "The counters live in the running gateway's memory (limits.storage: memory). To read them, pass "
            "--admin-token (or set $BASTION_ADMIN_TOKEN) with a viewer admin token: "
            f"bastion admin token create --name NAME --role viewer --config {config.source}",
        )
    found = admin_request(f"{base_url}/admin/api/limits", admin_token).get("limits")
    return (found if isinstance(found, list) else []), f"the gateway at {base_url}", ""


def _caps_concurrency(limits: LimitsConfig) -> bool:
    return limits.concurrent_per_agent is not None or limits.concurrent_per_server is not None


async def _read_shared(limits: LimitsConfig) -> list[dict[str, Any]]:
    # on_failure deny: a storage that cannot be read is an error here, never a silent local count.
    counters = Counters(limits.storage, strategy=limits.strategy, on_failure="deny")
    try:
        return [row.as_dict() for row in await snapshot(limits, counters)]
    finally:
        await counters.aclose()
