"""Which limits are enforced by which mechanism: cgroup v2, v1, or rlimits.

The cgroup filesystems are laid out in a temporary folder with the files the kernel shows,
so each layout can be tested on any host; the real cgroups are exercised by the e2e tests.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bastion.runtime import limits
from bastion.runtime.config import SandboxConfig

CONFIG = SandboxConfig(memory=64 << 20, cpu=0.5, pids=16, nofile=256)


@pytest.fixture
def own_cgroup(monkeypatch):
    monkeypatch.setattr(limits, "_own_cgroup", lambda controller: "bastion.service")


V1_FILES = {
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs", "memory.oom_control"],
    "pids": ["pids.max", "cgroup.procs"],
    "cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"],
}
V2_FILES = {"memory": ["memory.max", "memory.swap.max", "memory.events"], "pids": ["pids.max"], "cpu": ["cpu.max"]}


@pytest.fixture
def cgroupfs(monkeypatch):
    """mkdir in a cgroup folder shows the files the kernel would: per controller (v1) or delegated (v2)."""
    real_mkdir = Path.mkdir

    def kernel_mkdir(self: Path, *args, **kwargs) -> None:
        real_mkdir(self, *args, **kwargs)
        delegated = self.parent / "cgroup.subtree_control"
        if delegated.exists():
            names = ["cgroup.procs"]
            for controller in delegated.read_text().replace("+", "").split():
                names += V2_FILES.get(controller, [])
        else:
            names = V1_FILES.get(self.parent.parent.name, [])
        for name in names:
            (self / name).write_text("")

    monkeypatch.setattr(Path, "mkdir", kernel_mkdir)
    return monkeypatch


def v1_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    for controller in ("memory", "pids", "cpu"):
        (root / controller / "bastion.service").mkdir(parents=True)
    return root


def test_cgroup_v1_enforces_memory_pids_and_cpu(tmp_path, own_cgroup, cgroupfs):
    root = v1_root(tmp_path)
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
    cgroupfs.undo()
    for directory in applied.cgroup_dirs:
        for child in directory.iterdir():
            child.unlink()
    applied.release()
    assert not any(d.exists() for d in [memory, cpu])


def test_cgroup_v2_enforces_through_the_unified_files(tmp_path, own_cgroup, cgroupfs):
    root = tmp_path / "cgroup"
    own = root / "bastion.service"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids")
    (own / "cgroup.controllers").write_text("cpu io memory pids")
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


def test_without_writable_cgroups_rlimits_take_over(tmp_path, own_cgroup, monkeypatch):
    monkeypatch.setattr(limits, "_user_tasks", lambda uid: 40)
    root = tmp_path / "cgroup"  # nothing mounted
    root.mkdir()
    applied = limits.apply_limits("srv", CONFIG, root=root)
    assert applied.cgroup_procs == []
    # NPROC counts every task of the user: the server may add `pids` to what runs already.
    assert applied.rlimits == {"AS": 64 << 20, "NPROC": 40 + 16, "NOFILE": 256}
    assert applied.in_force["memory"] == "64M address space (rlimit)"
    assert applied.in_force["pids"].startswith("16 more than the user runs (rlimit")
    assert "not enforced" in applied.in_force["cpu"]


def test_unset_limits_are_not_applied(tmp_path, own_cgroup):
    root = tmp_path / "cgroup"
    root.mkdir()
    applied = limits.apply_limits("srv", SandboxConfig(memory=None, cpu=None, pids=None, nofile=None), root=root)
    assert applied.in_force == {}
    assert applied.rlimits == {}


def test_cgroup_v2_moves_bastion_into_a_leaf_when_its_cgroup_holds_processes(tmp_path, own_cgroup, cgroupfs):
    monkeypatch = cgroupfs
    root = tmp_path / "cgroup"
    own = root / "bastion.service"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("memory pids")
    (own / "cgroup.controllers").write_text("memory pids")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("101\n102\n")
    real_write = Path.write_text
    moved: list[str] = []

    def kernel_write(self: Path, data: str, *args, **kwargs) -> int:
        # The kernel refuses to delegate controllers while the cgroup itself holds processes.
        if self == own / "cgroup.subtree_control" and not moved:
            raise OSError(errno.EBUSY, "Device or resource busy")
        if self.name == "cgroup.procs" and self.parent.name == "bastion-gateway" and data:
            moved.append(data)
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", kernel_write)
    applied = limits.apply_limits("srv", SandboxConfig(cpu=0.5), root=root)
    assert moved == ["101", "102"]
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert applied.in_force["memory"] == "512M (cgroup v2)"
    assert "not enforced" in applied.in_force["cpu"], "cpu is not offered by the parent"


def test_user_tasks_counts_the_threads_of_that_user(tmp_path):
    for pid, uid, threads in [(1, 0, 1), (20, 1000, 3), (21, 1000, 1), (22, 1001, 7)]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "status").write_text(
            f"Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nThreads:\t{threads}\n"
        )
    (tmp_path / "self").mkdir()
    assert limits._user_tasks(1000, proc=tmp_path) == 4
    assert limits._user_tasks(os.getuid()) > 0
