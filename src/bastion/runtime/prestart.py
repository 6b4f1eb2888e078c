"""`bastion wrap`'s server, started while Bastion is still loading.

An agent waits for `bastion wrap` to answer `initialize`, and that answer needs the server
up. The server's own start (its interpreter, its MCP SDK) and Bastion's (the gateway, the
SDK, the stores) took turns; now the sandbox is started as soon as the configuration is
read, before the gateway is imported, and its upstream adopts the running process. It is
the same start as any other (same sandbox, limits and status file, `ServerRuntime`); only
its pipes are opened here. Nothing reaches it before the gateway serves: it waits for its
own `initialize` like any server. A sandbox with egress (`network: allowlist`) needs its
proxy first and is started by the gateway as usual.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from typing import TextIO

from bastion.runtime.config import StdioLaunch
from bastion.runtime.sandbox import SandboxUnavailable
from bastion.runtime.server_log import RotatingLog, StderrCapture, server_log_path
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime, ServerStart

__all__ = ["PrestartedServer", "prestart"]

logger = logging.getLogger(__name__)


@dataclass
class PrestartedServer:
    """A sandboxed server process started ahead of its upstream, with its start handle."""

    process: subprocess.Popen[bytes]
    start: ServerStart
    limits: dict[str, str]
    stderr: StderrCapture
    """Its stderr's way into its log (and, prefixed, the console), as for any start."""
    adopted: bool = False

    def discard(self) -> None:
        """Stop it and release what it holds, unless an upstream adopted it (which then does)."""
        if self.adopted:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.start.release()
        self.stderr.close()


def prestart(
    name: str, config: StdioLaunch, settings: RuntimeSettings, command: str, errlog: TextIO
) -> PrestartedServer | None:
    """Start server `name`'s sandbox now; None when it is left to the gateway (no sandbox, egress,
    or bubblewrap cannot run: the gateway then says why)."""
    if not config.sandbox.enabled or config.sandbox.network == "allowlist":
        return None
    runtime = ServerRuntime(name, config, settings)
    try:
        argv, env, start = runtime.sandboxed_start(command)
    except SandboxUnavailable:
        return None
    # Its stderr goes where every start's goes: the server's own log, and the console only
    # prefixed and cleaned (a server must not write lines that pass for Bastion's).
    capture = StderrCapture(name, RotatingLog(server_log_path(settings.data_dir, name)), errlog)
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=start.stderr(capture.stream), env=env
        )
    except OSError as exc:
        logger.debug("could not start %s ahead of the gateway (%s); it starts it", name, exc)
        start.release()
        capture.close()
        return None
    return PrestartedServer(process, start, dict(runtime.limits), capture)
