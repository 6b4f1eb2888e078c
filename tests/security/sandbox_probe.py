"""The probe server's report, and the invariant every sandboxed process must keep.

The probe (`servers/probe_server.py`) reports, from inside the sandbox, the descriptors it
was born with, those of every process it can see, what `pidfd_getfd` can take from them,
its environment and its mounts. Bastion's side is read on the host: every descriptor the
gateway (or `bastion wrap`) process holds.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError

from bastion.runtime.sandbox import BRIDGE_SCRIPT

PROBE = Path(__file__).parent / "servers" / "probe_server.py"
PROBE_COMMAND = [sys.executable, str(PROBE)]
SECRET_NAME = "BASTION_PROBE_SECRET"
SECRET = "s3cret-in-bastions-own-environment"

# What a sandboxed server's environment may hold (runtime/sandbox.py `sandbox_env`).
ALLOWED_ENV = {
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "npm_config_cache",
    "npm_config_update_notifier",
    "npm_config_logs_max",
    "UV_CACHE_DIR",
    "PYTHONDONTWRITEBYTECODE",
    "PWD",  # bubblewrap sets it (--chdir)
    *(name for proxy in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (proxy, proxy.upper())),
}


def held_by(pid: int) -> dict[str, str]:
    """What each descriptor of host process `pid` is (`socket:[inode]`, `pipe:[inode]`, a path)."""
    held: dict[str, str] = {}
    folder = Path(f"/proc/{pid}/fd")
    for entry in folder.iterdir():
        try:
            held[entry.name] = os.readlink(entry)
        except OSError:
            continue
    return held


def _shared(target: str) -> bool:
    """A descriptor that names a kernel object two processes could share (not /dev/null, not a listing)."""
    return target.startswith(("socket:", "pipe:", "/")) and target != "/dev/null"


@dataclass(frozen=True)
class ProbeReport:
    """One `probe` answer."""

    raw: dict[str, Any]

    @property
    def stdio(self) -> set[str]:
        return {self.raw["born_with"][fd] for fd in ("0", "1", "2") if fd in self.raw["born_with"]}

    def seen(self) -> dict[str, str]:
        """Every descriptor the sandbox can reach: where it was found, to what it is."""
        seen = {f"probe fd {fd}": target for fd, target in self.raw["born_with"].items()}
        for pid, process in self.raw["processes"].items():
            label = f"pid {pid} ({process['cmdline'][:60]})"
            if isinstance(process["fds"], dict):
                seen |= {f"{label} fd {fd}": target for fd, target in process["fds"].items()}
            for fd, outcome in process["getfd"].items():
                if outcome.startswith("taken: "):
                    seen[f"{label} pidfd_getfd {fd}"] = outcome.removeprefix("taken: ")
        return seen

    def check(self, bastion_pid: int, data_dir: Path) -> list[str]:
        """Every breach of the invariant in this report (empty when it holds)."""
        problems: list[str] = []
        extra = sorted(set(self.raw["born_with"]) - {"0", "1", "2"}, key=int)
        if extra:
            problems.append(f"the server was born with descriptors beyond stdio: {extra} {self.raw['born_with']}")
        ours = {target for target in held_by(bastion_pid).values() if _shared(target)} - self.stdio
        for where, target in self.seen().items():
            if target in ours:
                problems.append(f"{where} is one of Bastion's descriptors: {target}")
        for pid, process in self.raw["processes"].items():
            fds = process["fds"] if isinstance(process["fds"], dict) else {}
            stdio = {fds.get(fd) for fd in ("0", "1", "2")}
            strays = sorted((n for n, target in fds.items() if int(n) > 2 and target in stdio), key=int)
            if strays:
                problems.append(f"pid {pid} holds copies of its stdio at {strays}: {fds}")
            program = Path(process["cmdline"].split(" ", 1)[0]).name
            if program != "bwrap" and str(BRIDGE_SCRIPT) not in process["cmdline"]:
                problems.append(f"a process that is not the sandbox's own is visible: {pid} {process['cmdline']}")
        environ = self.raw["environ"]
        if set(environ) - ALLOWED_ENV:
            problems.append(f"unexpected environment variables: {sorted(set(environ) - ALLOWED_ENV)}")
        if any(SECRET in value for value in environ.values()):
            problems.append("Bastion's own environment reached the server")
        for line in self.raw["mounts"]:
            _, point, kind, *_ = line.split()
            inside = Path(point).is_relative_to(data_dir) and not Path(point).is_relative_to(data_dir / "sandbox")
            if inside and kind != "tmpfs":
                problems.append(f"Bastion's data folder is mounted in: {line}")
        return problems


async def probe(client: Client) -> ProbeReport:
    """Ask the probe what it sees."""
    result = await client.call_tool("probe", {})
    assert not result.is_error, result
    return ProbeReport(json.loads(result.content[0].text))  # type: ignore[union-attr]


async def crash(client: Client) -> None:
    """Make the probe exit; the call fails (the server stopped while handling it)."""
    with pytest.raises(MCPError, match="stopped"):
        await client.call_tool("crash", {})
