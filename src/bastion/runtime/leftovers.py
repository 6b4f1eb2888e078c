"""Sweep what a Bastion process that was killed without cleaning up left behind.

Each server start creates cgroups named `bastion-<server>-<pid>-<id>` and each sandbox
with egress a socket folder `bastion-egress-<pid>-...`, where `<pid>` is the Bastion
process that owns them. When that process is gone, they are removed (a cgroup only once it
is empty, which the kernel enforces).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

__all__ = ["cgroup_leaf_name", "egress_prefix", "sweep_cgroups", "sweep_egress_dirs"]

_CGROUP = re.compile(r"bastion-.+-(\d+)-[0-9a-f]{8}")
_EGRESS = re.compile(r"bastion-egress-(\d+)-.+")


def cgroup_leaf_name(server: str, token: str) -> str:
    return f"bastion-{server}-{os.getpid()}-{token}"


def egress_prefix() -> str:
    return f"bastion-egress-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans(parent: Path, pattern: re.Pattern[str]) -> list[Path]:
    found = []
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match and int(match[1]) != os.getpid() and not _alive(int(match[1])) and entry.is_dir():
                found.append(entry)
    return found


def sweep_cgroups(parent: Path) -> None:
    """Remove the empty cgroups of dead Bastion processes under `parent`."""
    for leaf in _orphans(parent, _CGROUP):
        with contextlib.suppress(OSError):
            leaf.rmdir()


def sweep_egress_dirs(parent: Path) -> None:
    """Remove the egress socket folders of dead Bastion processes under `parent`."""
    for folder in _orphans(parent, _EGRESS):
        shutil.rmtree(folder, ignore_errors=True)
