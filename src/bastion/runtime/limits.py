"""Memory, CPU, process and file limits for one sandboxed server.

cgroups where this host lets Bastion write them (v2, else v1), rlimits otherwise. The
cgroups are created under Bastion's own cgroup (so the host's limits on Bastion still
hold), joined by the launch wrapper before bubblewrap starts, and removed after the
server exits. `AppliedLimits.in_force` says which limit is enforced by which mechanism.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bastion.runtime.config import SandboxConfig
from bastion.runtime.leftovers import cgroup_leaf_name, sweep_cgroups

__all__ = ["AppliedLimits", "apply_limits"]

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CPU_PERIOD_US = 100_000


@dataclass
class AppliedLimits:
    """The limits one server start runs under."""

    in_force: dict[str, str] = field(default_factory=dict)
    """Limit name to how it is enforced, e.g. `{"memory": "512M (cgroup v1)"}`."""
    cgroup_procs: list[str] = field(default_factory=list)
    rlimits: dict[str, int] = field(default_factory=dict)
    cgroup_dirs: list[Path] = field(default_factory=list)
    _oom_files: list[Path] = field(default_factory=list)

    def oom_kills(self) -> int:
        """How many times the kernel killed a process of this server for exceeding its memory limit."""
        total = 0
        for path in self._oom_files:
            with contextlib.suppress(OSError, ValueError):
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        total += int(value)
        return total

    def release(self) -> None:
        """Remove the server's cgroups, killing any process of the sandbox still in them.

        A cgroup whose last processes are still being reaped cannot be removed yet: it is
        retried at the next server start.
        """
        for directory in reversed(self.cgroup_dirs):
            _kill_members(directory)
            try:
                directory.rmdir()
            except OSError:
                _RETRY.add(directory)
        self.cgroup_dirs.clear()


_RETRY: set[Path] = set()
"""Cgroups of this process that were still busy when released."""


def _kill_members(directory: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        for pid in (directory / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)


def _retry_releases() -> None:
    for directory in list(_RETRY):
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        _RETRY.discard(directory)


def apply_limits(server: str, config: SandboxConfig, root: Path = CGROUP_ROOT) -> AppliedLimits:
    """Create the cgroups for one server start and work out the rlimits for what they cannot cover."""
    _retry_releases()
    applied = AppliedLimits()
    leaf = cgroup_leaf_name(server, uuid.uuid4().hex[:8])
    if (root / "cgroup.controllers").exists():
        _cgroup_v2(applied, config, root, leaf)
    else:
        _cgroup_v1(applied, config, root, leaf)
    if config.memory is not None and "memory" not in applied.in_force:
        applied.rlimits["AS"] = config.memory
        applied.in_force["memory"] = f"{_size(config.memory)} address space (rlimit)"
    if config.pids is not None and "pids" not in applied.in_force:
        # RLIMIT_NPROC counts every task of the user, not of the sandbox: allow what the
        # user already runs plus `pids` more, so the server cannot fork more than that.
        applied.rlimits["NPROC"] = _user_tasks(os.getuid()) + config.pids
        note = "; not enforced for root" if os.geteuid() == 0 else ""
        applied.in_force["pids"] = f"{config.pids} more than the user runs (rlimit{note})"
    if config.cpu is not None and "cpu" not in applied.in_force:
        applied.in_force["cpu"] = f"{config.cpu:g} not enforced (no writable cpu cgroup)"
    if config.nofile is not None:
        applied.rlimits["NOFILE"] = config.nofile
        applied.in_force["nofile"] = f"{config.nofile} (rlimit)"
    return applied


def _user_tasks(uid: int, proc: Path = Path("/proc")) -> int:
    """How many tasks (threads) `uid` runs now: what RLIMIT_NPROC counts."""
    total = 0
    for status in proc.glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields.get("Threads", "1"))
    return total


def _own_cgroup(controller: str) -> str | None:
    """Bastion's own cgroup path for `controller` (v1), or the unified one (`""`)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path.lstrip("/")
    return None


def _cgroup_v1(applied: AppliedLimits, config: SandboxConfig, root: Path, leaf: str) -> None:
    wanted: dict[str, dict[str, int]] = {}
    if config.memory is not None:
        wanted["memory"] = {"memory.limit_in_bytes": config.memory, "memory.memsw.limit_in_bytes": config.memory}
    if config.pids is not None:
        wanted["pids"] = {"pids.max": config.pids}
    if config.cpu is not None:
        wanted["cpu"] = {"cpu.cfs_period_us": _CPU_PERIOD_US, "cpu.cfs_quota_us": int(config.cpu * _CPU_PERIOD_US)}
    for controller, files in wanted.items():
        own = _own_cgroup(controller)
        if own is None or not (root / controller).is_dir():
            continue
        directory = root / controller / own / leaf
        sweep_cgroups(directory.parent)
        try:
            directory.mkdir()
        except OSError:
            continue
        applied.cgroup_dirs.append(directory)
        try:
            for name, value in files.items():
                if (directory / name).exists():
                    (directory / name).write_text(str(value))
        except OSError as exc:
            logger.debug("cgroup v1 %s not writable: %s", controller, exc)
            continue
        applied.cgroup_procs.append(str(directory / "cgroup.procs"))
        applied.in_force[controller] = _describe(controller, config) + " (cgroup v1)"
        if controller == "memory":
            applied._oom_files.append(directory / "memory.oom_control")


_GATEWAY_LEAF = "bastion-gateway"


def _cgroup_v2(applied: AppliedLimits, config: SandboxConfig, root: Path, leaf: str) -> None:
    own = _own_cgroup("")
    if own is None:
        return
    parent = root / own
    if parent.name == _GATEWAY_LEAF:  # Bastion already moved itself into a leaf (below)
        parent = parent.parent
    directory = parent / leaf
    sweep_cgroups(parent)
    try:
        _enable_controllers(parent)
        directory.mkdir()
    except OSError as exc:
        logger.debug("cgroup v2 not usable under %s: %s", parent, exc)
        return
    applied.cgroup_dirs.append(directory)
    files: dict[str, tuple[str, str]] = {}
    if config.memory is not None:
        files["memory"] = ("memory.max", str(config.memory))
    if config.pids is not None:
        files["pids"] = ("pids.max", str(config.pids))
    if config.cpu is not None:
        files["cpu"] = ("cpu.max", f"{int(config.cpu * _CPU_PERIOD_US)} {_CPU_PERIOD_US}")
    for controller, (name, value) in files.items():
        try:  # the file exists only when the controller is delegated to this cgroup
            if not (directory / name).exists():
                continue
            (directory / name).write_text(value)
        except OSError:
            continue
        applied.in_force[controller] = _describe(controller, config) + " (cgroup v2)"
    if config.memory is not None and "memory" in applied.in_force:
        with contextlib.suppress(OSError):
            (directory / "memory.swap.max").write_text("0")
        applied._oom_files.append(directory / "memory.events")
    applied.cgroup_procs.append(str(directory / "cgroup.procs"))


def _enable_controllers(parent: Path) -> None:
    """Delegate memory, pids and cpu (those the parent has) to the cgroups Bastion creates under `parent`."""
    control = parent / "cgroup.subtree_control"
    offered = (
        set((parent / "cgroup.controllers").read_text().split()) if (parent / "cgroup.controllers").exists() else set()
    )
    missing = ({"memory", "pids", "cpu"} & offered) - set(control.read_text().split())
    if not missing:
        return
    line = " ".join(f"+{c}" for c in sorted(missing))
    try:
        control.write_text(line)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        # cgroup v2 lets only a cgroup without processes delegate controllers: move
        # Bastion's own processes into a leaf first (what systemd's Delegate=yes expects).
        gateway = parent / _GATEWAY_LEAF
        gateway.mkdir(exist_ok=True)
        for pid in (parent / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (gateway / "cgroup.procs").write_text(pid)
        control.write_text(line)


def _describe(controller: str, config: SandboxConfig) -> str:
    if controller == "memory" and config.memory is not None:
        return _size(config.memory)
    if controller == "cpu":
        return f"{config.cpu:g} CPU"
    return str(config.pids)


def _size(size: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return str(size)
