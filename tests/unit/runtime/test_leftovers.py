"""Folders left by a killed Bastion process are swept; those of live processes are kept."""

from __future__ import annotations

import os
import subprocess

from bastion.runtime.leftovers import sweep_cgroups, sweep_egress_dirs


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_cgroups_of_dead_owners_are_removed(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    names = {
        f"bastion-time-{dead}-0123abcd": False,
        f"bastion-my-2-server-{dead}-0123abcd": False,
        f"bastion-time-{alive}-0123abcd": True,
        f"bastion-time-{os.getpid()}-0123abcd": True,
        "bastion-gateway": True,
        "system.slice": True,
    }
    for name in names:
        (tmp_path / name).mkdir()
    busy = tmp_path / f"bastion-busy-{dead}-0123abcd"
    (busy / "still-has-processes").mkdir(parents=True)  # rmdir fails, as on a non-empty cgroup
    sweep_cgroups(tmp_path)
    assert {name: (tmp_path / name).exists() for name in names} == names
    assert busy.exists()


def test_egress_folders_of_dead_owners_are_removed(tmp_path):
    dead = dead_pid()
    stale = tmp_path / f"bastion-egress-{dead}-x1y2"
    (stale / "egress.sock").parent.mkdir()
    (stale / "egress.sock").write_text("")
    mine = tmp_path / f"bastion-egress-{os.getpid()}-a1b2"
    mine.mkdir()
    sweep_egress_dirs(tmp_path)
    assert not stale.exists()
    assert mine.exists()
