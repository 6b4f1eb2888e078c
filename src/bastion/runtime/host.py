"""What this host supports, for `bastion doctor`: each finding is a name, a status and a detail."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bastion.runtime.config import SandboxConfig
from bastion.runtime.limits import apply_limits
from bastion.runtime.sandbox import bubblewrap_problem


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    required: bool = False


def inspect_host(data_dir: Path | None = None) -> list[Finding]:
    """Probe the host. Nothing here changes the host, except a test file in `data_dir`."""
    findings = [
        Finding("python", sys.version_info >= (3, 11), sys.version.split()[0], required=True),
        Finding("mcp SDK", True, _package_version("mcp"), required=True),
        _sqlite(),
        _bubblewrap(),
        _cgroups(),
        _program("node", "runs npm-published MCP servers (npx)"),
        _program("uvx", "runs PyPI-published MCP servers without installing them"),
    ]
    if data_dir is not None:
        findings.append(_writable(data_dir))
    return findings


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _sqlite() -> Finding:
    conn = sqlite3.connect(":memory:")
    try:
        options = {row[0] for row in conn.execute("PRAGMA compile_options")}
    finally:
        conn.close()
    fts5 = "ENABLE_FTS5" in options
    return Finding("sqlite", True, f"{sqlite3.sqlite_version}, FTS5 {'yes' if fts5 else 'no'}", required=True)


def _bubblewrap() -> Finding:
    problem = bubblewrap_problem()
    if problem is not None:
        return Finding("bubblewrap", False, f"{problem}. Sandboxed servers are refused until then")
    return Finding("bubblewrap", True, f"{shutil.which('bwrap')}: namespaces (user, pid, net, ipc, uts) work")


def _cgroups() -> Finding:
    """Which mechanism would enforce each default limit (probed by creating and removing a cgroup)."""
    applied = apply_limits("doctor-probe", SandboxConfig())
    applied.release()
    detail = "; ".join(f"{name} {how}" for name, how in sorted(applied.in_force.items()))
    return Finding(
        "limits", bool(applied.cgroup_procs), detail + ("" if applied.cgroup_procs else " (no writable cgroups)")
    )


def _program(name: str, purpose: str) -> Finding:
    path = shutil.which(name)
    if path is None:
        return Finding(name, False, f"not found ({purpose})")
    return Finding(name, True, path)


def _writable(data_dir: Path) -> Finding:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Finding("data folder", False, f"{data_dir}: {exc}", required=True)
    return Finding("data folder", True, f"{data_dir} is writable", required=True)
