"""Issuing agent tokens from a request (the CLI's `bastion token create`, the dashboard's form).

One set of checks and one audit event, so every front end refuses the same requests with the
same words and records the same `token.created` / `token.revoked` events.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.audit.events import TokenCreated, TokenRevoked
from bastion.audit.retention import parse_duration
from bastion.auth.tokens import TokenInfo
from bastion.config import BastionConfig


def parse_lifetime(text: str | None) -> float | None:
    """A token lifetime (`3600`, `90m`, `12h`, `30d`, `2w`) in seconds; None or blank: it never expires.

    Raises ValueError for text that is not a positive duration.
    """
    if text is None or not text.strip():
        return None
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def parse_servers(text: str | None) -> list[str] | None:
    """A comma-separated server list; None (or blank) means every server."""
    if text is None or not text.strip():
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def check_token_request(config: BastionConfig, agent: str, servers: Iterable[str] | None) -> None:
    """Refuse a token for an unknown server (or virtual server), or for an agent the configuration does not list.

    Raises ValueError naming the problem and what is configured.
    """
    known = [*config.servers, *config.virtual_servers]
    unknown = [name for name in servers or () if name not in known]
    if unknown:
        raise ValueError(f"no server named {', '.join(unknown)} in {config.source}; configured: {', '.join(known)}")
    if config.agents and agent not in config.agents:
        raise ValueError(f"{config.source} lists the agents allowed in, and {agent!r} is not one of them")


def token_created(info: TokenInfo) -> TokenCreated:
    """The `token.created` event for `info` (never the secret)."""
    return TokenCreated(
        time=info.created_at,
        agent=info.agent,
        token_id=info.id,
        servers=tuple(sorted(info.servers)) if info.servers is not None else None,
        expires_at=info.expires_at,
    )


def token_revoked(info: TokenInfo) -> TokenRevoked:
    """The `token.revoked` event for `info`."""
    return TokenRevoked(agent=info.agent, token_id=info.id)
