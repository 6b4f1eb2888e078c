"""`bastion policy lint | check | explain`: the policy, checked and tried without serving anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bastion.cli.common import config_option, load_or_exit
from bastion.guard.policy.dryrun import DRY_RUN_AGENT, CallLineError, DryRunCall, check_lines, decide, engine_for
from bastion.guard.policy.dryrun import explanation as explain_lines
from bastion.guard.policy.lint import policy_of


@click.group("policy")
def policy_group() -> None:
    """Check the policy and try it on calls, without starting any server."""


@policy_group.command("lint")
@config_option
def lint(config_path: Path) -> None:
    """Check the policy: unknown keys, bad globs and regexes, unreachable rules (exit code 2 if any)."""
    config = load_or_exit(config_path)
    policy = policy_of(config)
    included = sum(1 for rule in policy.rules if rule.file != config.source)
    sinks = f", {len(policy.sinks)} setting `sink`" if policy.sinks else ""
    click.echo(
        f"{config.source}: policy OK (profile {policy.profile}, {len(policy.rules)} rule(s)"
        f"{f', {included} from included files' if included else ''}{sinks}, "
        f"{len(policy.catalogue)} catalogue setting(s))"
    )


@policy_group.command("check")
@config_option
@click.option(
    "--calls",
    "calls_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help='JSON Lines of calls: {"id", "server", "tool", "arguments", "context"?} ("-": stdin).',
)
def check(config_path: Path, calls_path: Path) -> None:
    """Decide every call of a file; print one JSON line per call, in order: {id, decision, rule, reason, ...}."""
    config = load_or_exit(config_path)
    policy = policy_of(config)
    engine = engine_for(policy)
    bad = 0
    stream = click.open_file(str(calls_path), encoding="utf-8")
    with stream:
        for result in check_lines(engine, policy, stream):
            bad += "error" in result
            click.echo(json.dumps(result, ensure_ascii=False))
    if bad:
        click.echo(f"error: {bad} line(s) of {calls_path} are not calls (see their `error`)", err=True)
        sys.exit(1)


@policy_group.command("explain")
@config_option
@click.option("--server", required=True, help="The server the call goes to (need not be configured).")
@click.option("--tool", required=True, help="The tool name.")
@click.option("--args", "arguments", default="{}", show_default=True, help="The call's arguments, as a JSON object.")
@click.option("--agent", default=DRY_RUN_AGENT, show_default=True, help="The calling agent (its roles apply).")
@click.option("--context", "context", default=None, help='JSON: {"allowed_roots": [...], "allowed_domains": [...]}.')
@click.option(
    "--annotations", default=None, help='JSON: the tool\'s declared annotations, e.g. {"readOnlyHint": true}.'
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as one JSON object.")
def explain(
    config_path: Path,
    server: str,
    tool: str,
    arguments: str,
    agent: str,
    context: str | None,
    annotations: str | None,
    as_json: bool,
) -> None:
    """Show every rule and catalogue entry considered for one call, and why the verdict is what it is."""
    config = load_or_exit(config_path)
    policy = policy_of(config)
    data: dict[str, Any] = {"server": server, "tool": tool, "agent": agent}
    for key, text in (("arguments", arguments), ("context", context), ("annotations", annotations)):
        if text is not None:
            try:
                data[key] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise click.UsageError(f"--{'args' if key == 'arguments' else key} is not JSON: {exc}") from None
    try:
        call = DryRunCall.from_json(data)
        decision = decide(engine_for(policy), policy, call, explain=True)
    except CallLineError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        verdict = decision.verdict
        out = {
            "decision": str(verdict.decision),
            "rule": decision.decided_by,
            "reason": verdict.reason,
            "log": verdict.log,
            "considered": [
                {"kind": c.kind, "id": c.id, "applies": c.applies, "why": c.why, "decision": c.decision}
                for c in decision.considered
            ],
        }
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    for line in explain_lines(decision, call):
        click.echo(line)
