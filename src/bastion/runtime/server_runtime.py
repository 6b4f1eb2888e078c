"""Everything Bastion runs around one stdio server: its sandbox, egress proxy and limits.

`ServerRuntime.launch()` prepares one start (cgroups, status file) and returns the stdio
parameters that run the server sandboxed, with a `ServerStart` handle that can kill it,
says why it ended and releases what it held. The egress proxy and the server's stderr
capture (`stderr`, see `server_log`) live as long as the runtime (`running()`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bastion.runtime.config import StdioLaunch
from bastion.runtime.egress.policy import EgressPolicy
from bastion.runtime.egress.proxy import EgressProxy, ResolverForTests
from bastion.runtime.events import LoggingSink, RuntimeEventSink, SandboxDisabled
from bastion.runtime.launch import LaunchSpec
from bastion.runtime.leftovers import egress_prefix, sweep_egress_dirs
from bastion.runtime.limits import AppliedLimits, apply_limits
from bastion.runtime.sandbox import SandboxPlan, SandboxUnavailable, bubblewrap_problem, build_bwrap_argv, sandbox_env
from bastion.runtime.sandbox_stderr import StderrTail
from bastion.runtime.server_command import ServerCommand
from bastion.runtime.server_log import RotatingLog, StderrCapture, server_log_path

__all__ = ["RuntimeSettings", "ServerRuntime", "ServerStart"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeSettings:
    """Gateway-wide facts every server's runtime needs."""

    data_dir: Path
    config_file: Path | None = None
    sink: RuntimeEventSink = field(default_factory=LoggingSink)
    test_resolver: ResolverForTests | None = None
    """FOR TESTS ONLY (see `ResolverForTests`); never set from configuration."""
    console: TextIO | None = field(default_factory=lambda: sys.stderr)
    """Where servers' stderr lines are echoed, prefixed `[server NAME]` (None: only to their log files)."""


class ServerRuntime:
    """The sandbox, egress proxy and limits of one configured stdio server."""

    def __init__(self, name: str, config: StdioLaunch, settings: RuntimeSettings) -> None:
        self.name = name
        self.config = config
        self.settings = settings
        self.sandboxed = config.sandbox.enabled
        self.state_dir = settings.data_dir / "sandbox" / name
        self.limits: dict[str, str] = {}
        self._egress_dir: Path | None = None
        self._proxy: EgressProxy | None = None
        self._stderr: StderrCapture | None = None

    @property
    def stderr(self) -> TextIO | None:
        """The stderr every start of this server gets (its log file's pipe), while `running()`."""
        return self._stderr.stream if self._stderr is not None else None

    def adopt_stderr(self, capture: StderrCapture) -> None:
        """Take `capture` (a prestarted process's, on the same log) as the server's stderr from now
        on, for every later start too, closing the one `running()` opened: one reader per server."""
        if self._stderr is not None and self._stderr is not capture:
            self._stderr.close()
        self._stderr = capture

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ServerRuntime]:
        """Capture the server's stderr into its log; hold the egress proxy (`network: allowlist`) open."""
        log = RotatingLog(server_log_path(self.settings.data_dir, self.name))
        self._stderr = StderrCapture(self.name, log, self.settings.console)
        try:
            async with self._egress():
                yield self
        finally:
            self._stderr.close()
            self._stderr = None

    @asynccontextmanager
    async def _egress(self) -> AsyncIterator[None]:
        """Hold the egress proxy (for `network: allowlist`) open; remove it on exit."""
        if not self.sandboxed:
            logger.warning("server %s runs WITHOUT a sandbox (sandbox: off in its config)", self.name)
            self.settings.sink.emit(SandboxDisabled(self.name))
        if not self.sandboxed or self.config.sandbox.network != "allowlist":
            yield
            return
        sweep_egress_dirs(Path(tempfile.gettempdir()))
        self._egress_dir = Path(tempfile.mkdtemp(prefix=egress_prefix()))
        policy = EgressPolicy.from_domains(self.config.sandbox.allow_domains)
        sock = self._egress_dir / "egress.sock"
        self._proxy = EgressProxy(self.name, policy, self.settings.sink, sock, resolver=self.settings.test_resolver)
        await self._proxy.start()
        try:
            yield
        finally:
            await self._proxy.close()
            shutil.rmtree(self._egress_dir, ignore_errors=True)

    def sandbox_plan(self, command: str, egress_dir: Path | None) -> SandboxPlan:
        """The sandbox of one start of `command` (its state folder is created)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        hidden = [self.settings.data_dir]
        if self.settings.config_file is not None:
            hidden.append(self.settings.config_file)
        return SandboxPlan(
            command=command,
            args=self.config.args,
            config=self.config.sandbox,
            state_dir=self.state_dir,
            cwd=self.config.cwd,
            hidden=hidden,
            egress_dir=egress_dir,
        )

    def launch(self, command: str) -> tuple[ServerCommand, ServerStart | None]:
        """The parameters of one start and its handle (None unsandboxed); `command` is already resolved.

        Raises `SandboxUnavailable` when bubblewrap cannot run here.
        """
        config = self.config
        if not self.sandboxed:
            env = dict(config.env) or None
            return ServerCommand(command=command, args=list(config.args), env=env, cwd=config.cwd), None
        argv, env, start = self.sandboxed_start(command)
        python, *args = argv
        return ServerCommand(command=python, args=args, env=env), start

    def sandboxed_start(self, command: str) -> tuple[list[str], dict[str, str], ServerStart]:
        """The command line and whole environment of one sandboxed start, and its handle.

        Raises `SandboxUnavailable` when bubblewrap cannot run here.
        """
        config = self.config
        problem = bubblewrap_problem()
        if problem is not None:
            raise SandboxUnavailable(f"server {self.name!r} refused: {problem}")
        plan = self.sandbox_plan(command, self._egress_dir)
        env = sandbox_env(plan, config.env, os.environ)
        applied = apply_limits(self.name, config.sandbox)
        self.limits = dict(applied.in_force)
        # Outside the server's own writable folder (it must not forge its status), and unique
        # per start (`bastion wrap` may run the same server beside `bastion up`).
        status_file = self.settings.data_dir / "run" / f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.status"
        status_file.parent.mkdir(parents=True, exist_ok=True)
        spec = LaunchSpec(
            argv=build_bwrap_argv(plan, bwrap=shutil.which("bwrap") or "bwrap"),
            env_keys=sorted(env),
            status_file=str(status_file),
            cgroup_procs=applied.cgroup_procs,
            rlimits=applied.rlimits,
        )
        return spec.command(), env, ServerStart(applied, status_file)


class ServerStart:
    """One sandboxed run of a server: its limits and the status bubblewrap reports."""

    def __init__(self, applied: AppliedLimits, status_file: Path) -> None:
        self._applied = applied
        self._status_file = status_file
        self._stderr: StderrTail | None = None
        self.killed_because: str | None = None

    def stderr(self, target: TextIO) -> TextIO:
        """The stderr to start the sandbox with: copied to `target`, read for the sandbox's own errors."""
        self._stderr = StderrTail(target)
        return self._stderr.writer

    def spoke(self) -> None:
        """The server answered its handshake: the sandbox started it."""
        if self._stderr is not None:
            self._stderr.spoke()
            self._stderr.started()

    def sandbox_error(self) -> str | None:
        """Why the sandbox could not start the server, in bubblewrap's words (once it has exited), or None."""
        cause = self._stderr.cause() if self._stderr is not None else None
        return f"the sandbox could not start it: {cause}" if cause is not None else None

    def kill(self, reason: str) -> bool:
        """Kill the sandbox (everything in it dies with its first process). False if it is not running."""
        pid = self._status().get("child-pid")
        if not isinstance(pid, int) or "exit-code" in self._status():
            return False
        self.killed_because = reason
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def exit_reason(self) -> tuple[str, int | None]:
        """Why this run ended, and its exit code when known."""
        code = self._status().get("exit-code")
        exit_code = code if isinstance(code, int) else None
        if self.killed_because is not None:
            return self.killed_because, exit_code
        if self._applied.oom_kills() > 0:
            return "killed for exceeding its memory limit", exit_code
        if exit_code is None:
            return "connection closed", None
        sandbox_error = self.sandbox_error() if exit_code != 0 else None
        if sandbox_error is not None:
            return sandbox_error, exit_code
        if exit_code > 128:
            name = _signal_name(exit_code - 128)
            if name == "SIGXCPU":
                return "killed for exceeding its CPU time limit", exit_code
            return f"killed by {name}", exit_code
        return f"exited with code {exit_code}", exit_code

    def release(self) -> None:
        """Remove this run's cgroups and status file (once it has exited)."""
        self._applied.release()
        self._status_file.unlink(missing_ok=True)
        if self._stderr is not None:
            self._stderr.started()

    def _status(self) -> dict[str, object]:
        status: dict[str, object] = {}
        try:
            text = self._status_file.read_text()
        except OSError:
            return status
        for line in text.splitlines():
            try:
                status.update(json.loads(line))
            except ValueError:
                continue
        return status


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
