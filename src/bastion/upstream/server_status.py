"""Each upstream server's state as the running gateway sees it: for `/readyz`, `bastion servers` and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.config import ServerConfig, StdioServerConfig
from bastion.runtime.supervisor import Supervisor
from bastion.upstream.upstream import Upstream


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """One server: `state` is the upstream's (`up`, `starting`, `restarting`, `crash-loop`, `down`, `failed`)."""

    name: str
    kind: str
    """`stdio`, or the remote transport."""
    target: str
    """The command line, or the URL."""
    state: str
    sandboxed: bool
    sandbox: str
    """The sandbox's network mode, `OFF`, or `-` for a remote server."""
    limits: Mapping[str, str] = field(default_factory=dict)
    restarts: int = 0
    last_exit: str | None = None

    def runtime_report(self) -> dict[str, Any]:
        """The `runtime` entry `/readyz` gives for this server."""
        return {
            "sandbox": self.sandboxed,
            "limits": dict(self.limits),
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


def server_status(
    name: str, config: ServerConfig, upstream: Upstream, supervisor: Supervisor | None = None
) -> ServerStatus:
    """The status of one running upstream."""
    if isinstance(config, StdioServerConfig):
        kind, target = "stdio", " ".join([config.command, *config.args])
        sandbox: str = config.sandbox.network if config.sandbox.enabled else "OFF"
    else:
        kind, target, sandbox = config.transport, str(config.url), "-"
    return ServerStatus(
        name=name,
        kind=kind,
        target=target,
        state=upstream.state,
        sandboxed=upstream.sandboxed,
        sandbox=str(sandbox),
        limits=upstream.limits_in_force(),
        restarts=supervisor.restarts if supervisor else 0,
        last_exit=(supervisor.last_exit_reason if supervisor else None) or upstream.last_error,
    )
