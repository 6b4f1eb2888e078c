"""Which limits are enforced by which mechanism: cgroup v2, v1, or rlimits.

The cgroup filesystems are laid out in a temporary folder with the files the kernel shows,
so each layout can be tested on any host; the real cgroups are exercised by the e2e tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.runtime import limits
from bastion.runtime.config import SandboxConfig

CONFIG = SandboxConfig(memory=64 << 20, cpu=0.5, pids=16, nofile=256)


@pytest.fixture
def own_cgroup(monkeypatch):
    monkeypatch.setattr(limits, "_own_cgroup", lambda controller: "bastion.service")


def v1_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    for controller in ("memory", "pids", "cpu"):
        (root / controller / "bastion.service").mkdir(parents=True)
    return root


def test_cgroup_v1_enforces_memory_pids_and_cpu(tmp_path, own_cgroup, monkeypatch):
    root = v1_root(tmp_path)
    real_mkdir = Path.mkdir

    def kernel_mkdir(self: Path, *args, **kwargs) -> None:
        real_mkdir(self, *args, **kwargs)
        controller = self.parent.parent.name
        names = {
            "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs", "memory.oom_control"],
            "pids": ["pids.max", "cgroup.procs"],
            "cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"],
        }[controller]
        for name in names:
            (self / name).write_text("")

    monkeypatch.setattr(Path, "mkdir", kernel_mkdir)
    applied = limits.apply_limits("srv", CONFIG, root=root)
    assert applied.in_force == {
        "memory": "64M (cgroup v1)",
        "pids": "16 (cgroup v1)",
        "cpu": "0.5 CPU (cgroup v1)",
        "nofile": "256 (rlimit)",
    }
    assert applied.rlimits == {"NOFILE": 256}
    [memory] = [d for d in applied.cgroup_dirs if d.parent.parent.name == "memory"]
    assert (memory / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(64 << 20)
    [cpu] = [d for d in applied.cgroup_dirs if d.parent.parent.name == "cpu"]
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert applied.oom_kills() == 2
    assert len(applied.cgroup_procs) == 3
    monkeypatch.setattr(Path, "mkdir", real_mkdir)
    for directory in applied.cgroup_dirs:
        for child in directory.iterdir():
            child.unlink()
    applied.release()
    assert not any(d.exists() for d in [memory, cpu])


def test_cgroup_v2_enforces_through_the_unified_files(tmp_path, own_cgroup):
    root = tmp_path / "cgroup"
    own = root / "bastion.service"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids")
    (own / "cgroup.subtree_control").write_text("")
    applied = limits.apply_limits("srv", CONFIG, root=root)
    [leaf] = applied.cgroup_dirs
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert (leaf / "pids.max").read_text() == "16"
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert applied.in_force["memory"] == "64M (cgroup v2)"
    assert applied.cgroup_procs == [str(leaf / "cgroup.procs")]


def test_without_writable_cgroups_rlimits_take_over(tmp_path, own_cgroup):
    root = tmp_path / "cgroup"  # nothing mounted
    root.mkdir()
    applied = limits.apply_limits("srv", CONFIG, root=root)
    assert applied.cgroup_procs == []
    assert applied.rlimits == {"AS": 64 << 20, "NPROC": 16, "NOFILE": 256}
    assert applied.in_force["memory"] == "64M address space (rlimit)"
    assert applied.in_force["pids"].startswith("16 (rlimit")
    assert "not enforced" in applied.in_force["cpu"]


def test_unset_limits_are_not_applied(tmp_path, own_cgroup):
    root = tmp_path / "cgroup"
    root.mkdir()
    applied = limits.apply_limits("srv", SandboxConfig(memory=None, cpu=None, pids=None, nofile=None), root=root)
    assert applied.in_force == {}
    assert applied.rlimits == {}
