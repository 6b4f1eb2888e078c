"""What this host supports, for `bastion doctor`: each finding is a name, a status and a detail."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


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
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Finding("bubblewrap", False, "not installed; sandboxing needs it (apt-get install bubblewrap)")
    try:
        probe = subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("bubblewrap", False, f"{bwrap} could not run: {exc}")
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip() or f"exit code {probe.returncode}"
        return Finding("bubblewrap", False, f"{bwrap} cannot create namespaces here: {reason}")
    return Finding("bubblewrap", True, f"{bwrap}: namespaces (user, pid, net, ipc, uts) work")


def _cgroups() -> Finding:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        controllers = (root / "cgroup.controllers").read_text().split()
        writable = os.access(root, os.W_OK)
        detail = f"v2, controllers: {' '.join(controllers) or 'none'}; {'writable' if writable else 'read-only'}"
        return Finding("cgroups", writable, detail + ("" if writable else " (limits fall back to rlimits)"))
    if (root / "memory").is_dir():
        return Finding("cgroups", os.access(root / "memory", os.W_OK), "v1")
    return Finding("cgroups", False, "not mounted; limits fall back to rlimits")


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
