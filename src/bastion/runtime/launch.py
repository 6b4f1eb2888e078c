"""The exec wrapper that starts a sandbox: `python -m bastion.runtime.launch SPEC_JSON`.

It runs between Bastion and bubblewrap, so that the sandbox is inside its limits before
it starts: it joins the server's cgroups, sets its rlimits, keeps only the environment
variables the spec names, opens the status file bubblewrap reports the exit code to, closes
every other descriptor it was handed, then replaces itself with bubblewrap. Nothing forked
before the limits apply can escape them.

Descriptors: the sandbox gets its stdio (0, 1, 2) and the status file (3, which bubblewrap
keeps outside the sandbox) and nothing else, whatever started the wrapper. uvloop's
process spawning (libuv) closes only close-on-exec descriptors, so an inheritable one in
Bastion (a listening socket, say) would otherwise reach the server.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUS_FD = 3
"""The descriptor bubblewrap writes the sandbox's status to (`--json-status-fd`)."""

_LAST_FD = 2**31 - 1

_RLIMITS = {
    "AS": resource.RLIMIT_AS,
    "NPROC": resource.RLIMIT_NPROC,
    "NOFILE": resource.RLIMIT_NOFILE,
    "CPU": resource.RLIMIT_CPU,
}


@dataclass(frozen=True)
class LaunchSpec:
    """What the wrapper does before it becomes bubblewrap. Holds no secrets (it is on the command line)."""

    argv: list[str]
    env_keys: list[str]
    status_file: str
    cgroup_procs: list[str] = field(default_factory=list)
    rlimits: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def command(self) -> list[str]:
        """The command line that runs this spec."""
        return [sys.executable, "-I", "-m", "bastion.runtime.launch", self.to_json()]


def main(argv: list[str]) -> None:
    spec = LaunchSpec(**json.loads(argv[1]))
    for procs in spec.cgroup_procs:
        Path(procs).write_text("0\n", encoding="ascii")  # "0" is the writing process itself
    for name, value in spec.rlimits.items():
        resource.setrlimit(_RLIMITS[name], (value, value))
    env = {key: os.environ[key] for key in spec.env_keys if key in os.environ}
    status = os.open(spec.status_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    if status != STATUS_FD:
        os.dup2(status, STATUS_FD, inheritable=True)
        os.close(status)
    os.set_inheritable(STATUS_FD, True)
    close_inherited()
    bwrap, *options = spec.argv
    os.execve(bwrap, [bwrap, "--json-status-fd", str(STATUS_FD), *options], env)


def close_inherited() -> None:
    """Close every descriptor but stdio and the status file (`close_range` on Linux: one call)."""
    os.closerange(STATUS_FD + 1, _LAST_FD)


if __name__ == "__main__":
    main(sys.argv)
