"""What starts one stdio server: the command line, its environment and folder.

Bastion's own upstream client spawns it (`bastion.upstream.stdio_wire.spawn`); the SDK's
`stdio_client` (the reference path) gets it as the SDK's `StdioServerParameters`, built there,
so that starting a server does not import the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerCommand"]


@dataclass(frozen=True)
class ServerCommand:
    """One server's start: `command` with `args`, `env` added to the safe default environment."""

    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | Path | None = None
