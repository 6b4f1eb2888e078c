"""The bubblewrap command line that confines one stdio MCP server.

The server gets its own network (loopback only), PID, IPC and UTS namespaces, a read-only
view of the root filesystem, a private `/tmp` and `/run`, and only the writable paths it
was given. Credentials in the home folder and Bastion's own config and data are hidden.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion.runtime.command_paths import program_paths, visible_binds
from bastion.runtime.config import SandboxConfig

__all__ = [
    "BRIDGE_SCRIPT",
    "EGRESS_PORT",
    "SENSITIVE_HOME_PATHS",
    "SandboxPlan",
    "SandboxUnavailable",
    "bubblewrap_problem",
    "build_bwrap_argv",
    "program_binds",
    "sandbox_env",
]

SENSITIVE_HOME_PATHS = (
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".kube",
    ".docker",
    ".gnupg",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".password-store",
    ".local/share/keyrings",
    ".vault-token",
)
"""Paths under the home folder that hold credentials: always hidden inside the sandbox."""

SENSITIVE_SYSTEM_PATHS = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")

EGRESS_PORT = 3128
"""The loopback port inside the sandbox where the egress proxy is reached."""

EGRESS_MOUNT = Path("/tmp/.bastion-egress")
"""Where the egress proxy's socket folder appears inside the sandbox."""

BRIDGE_SCRIPT = Path(__file__).parent / "egress" / "bridge.py"

INSTALL_HINT = "install it (apt-get install bubblewrap) or, at your own risk, set `sandbox: off` for this server"


class SandboxUnavailable(Exception):
    """The sandbox cannot be created on this host; the server is refused."""


@dataclass(frozen=True, slots=True)
class SandboxPlan:
    """Everything needed to confine one server start."""

    command: str
    args: Sequence[str]
    config: SandboxConfig
    state_dir: Path
    """The server's own writable folder (caches, home for tools that need one)."""
    cwd: Path | None = None
    hidden: Sequence[Path] = ()
    """Extra paths to hide: Bastion's config file, data folder, egress sockets."""
    egress_dir: Path | None = None
    """Host folder holding the egress proxy's Unix socket (`network: allowlist`)."""
    home: Path = field(default_factory=Path.home)


_WORKING: set[str] = set()


def bubblewrap_problem() -> str | None:
    """None when bubblewrap can create the namespaces the sandbox needs; otherwise why not.

    Success is remembered; a failure is probed again next time (bubblewrap may be installed
    while Bastion runs, and the supervisor retries).
    """
    bwrap = shutil.which("bwrap")
    if bwrap is not None and bwrap in _WORKING:
        return None
    problem = _probe(bwrap)
    if problem is None and bwrap is not None:
        _WORKING.add(bwrap)
    return problem


def _probe(bwrap: str | None) -> str | None:
    if bwrap is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    try:
        probe = subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} could not run ({exc}); {INSTALL_HINT}"
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip() or f"exit code {probe.returncode}"
        return f"{bwrap} cannot create namespaces on this host ({reason}); {INSTALL_HINT}"
    return None


def build_bwrap_argv(plan: SandboxPlan, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap options, then `--`, then the command to run inside."""
    config = plan.config
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/dev/shm"]
    argv += ["--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    argv += ["--cap-drop", "ALL"]
    for path in config.read_only:
        argv += ["--ro-bind-try", str(path), str(path)]
    for path in config.writable:
        argv += ["--bind-try", str(path), str(path)]
    for path in program_binds(plan):
        argv += ["--ro-bind-try", str(path), str(path)]
    hidden = _hidden_paths(plan)
    for path in hidden:
        argv += _hide(path)
    # A path listed explicitly inside a hidden folder is what the operator asked for: show it.
    for path in config.read_only:
        if any(path.is_relative_to(h) for h in hidden):
            argv += ["--ro-bind-try", str(path), str(path)]
    for path in config.writable:
        if any(path.is_relative_to(h) for h in hidden):
            argv += ["--bind-try", str(path), str(path)]
    argv += ["--bind", str(plan.state_dir), str(plan.state_dir)]
    if plan.egress_dir is not None:
        argv += ["--bind", str(plan.egress_dir), str(EGRESS_MOUNT)]
    # Read-only only now: the binds above may need mount points created inside a hidden folder.
    for path in hidden:
        if _is_dir(path):
            argv += ["--remount-ro", str(path)]
    argv += ["--chdir", str(_working_dir(plan))]
    argv.append("--")
    if plan.egress_dir is not None:
        argv += [sys.executable, "-I", "-S", str(BRIDGE_SCRIPT), str(EGRESS_PORT), str(EGRESS_MOUNT / "egress.sock")]
        argv.append("--")
    return [*argv, plan.command, *plan.args]


def program_binds(plan: SandboxPlan) -> list[Path]:
    """What the server's command (and the egress bridge) need shown read-only, under `/tmp` or `/run`.

    The command, its resolved file, its shebang interpreter and the environment they come
    from (see `bastion.runtime.command_paths`); never Bastion's data, config or credentials.
    """
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), _venv_bin()])
    paths = program_paths(plan.command, plan.args, search_path)
    if plan.egress_dir is not None:
        paths += program_paths(sys.executable, [str(BRIDGE_SCRIPT)], search_path)
    never = [*_hidden_paths(plan), *(Path(p).resolve() for p in plan.hidden)]
    if plan.egress_dir is not None:
        never.append(plan.egress_dir)
    return visible_binds(dict.fromkeys(paths), never, plan.home)


def sandbox_env(plan: SandboxPlan, configured: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The whole environment inside: basics, per-server caches, proxy settings, then the configured `env`."""
    path = os.pathsep.join(dict.fromkeys([*environ.get("PATH", os.defpath).split(os.pathsep), _venv_bin()]))
    env = {"PATH": path, "HOME": str(plan.home), "TMPDIR": "/tmp"}
    for name in ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"):
        if name in environ:
            env[name] = environ[name]
    state = plan.state_dir
    env |= {
        "XDG_CACHE_HOME": str(state / "cache"),
        "XDG_DATA_HOME": str(state / "data"),
        "XDG_STATE_HOME": str(state / "state"),
        "npm_config_cache": str(state / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_logs_max": "0",
        "UV_CACHE_DIR": str(state / "uv"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if plan.egress_dir is not None:
        proxy = f"http://127.0.0.1:{EGRESS_PORT}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
        env["NO_PROXY"] = env["no_proxy"] = ""
    return env | dict(configured)


def _venv_bin() -> str:
    return str(Path(sys.executable).parent)


def _hidden_paths(plan: SandboxPlan) -> list[Path]:
    homes = {plan.home, Path.home()}
    paths = [home / rel for home in homes for rel in SENSITIVE_HOME_PATHS]
    paths += [Path(p) for p in SENSITIVE_SYSTEM_PATHS]
    paths += [Path(p).resolve() for p in plan.hidden]
    return [p for p in dict.fromkeys(paths) if p.exists() or p.is_symlink()]


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _hide(path: Path) -> list[str]:
    if _is_dir(path):
        return ["--tmpfs", str(path)]
    return ["--ro-bind", "/dev/null", str(path)]


def _working_dir(plan: SandboxPlan) -> Path:
    """The configured `cwd`; else Bastion's own when it is visible inside; else the server's state folder."""
    if plan.cwd is not None:
        return plan.cwd
    cwd = Path.cwd()
    invisible = [Path("/tmp"), Path("/run"), *(Path(p).resolve() for p in plan.hidden)]
    exposed = [*plan.config.read_only, *plan.config.writable]
    if any(cwd.is_relative_to(p) for p in invisible) and not any(cwd.is_relative_to(p) for p in exposed):
        return plan.state_dir
    return cwd
