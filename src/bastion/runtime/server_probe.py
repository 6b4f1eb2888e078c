"""`bastion doctor --config FILE`: start each configured server's sandbox for real, up to the exec.

The probe runs the very bubblewrap command line a start would (same binds, hidden paths,
egress socket folder), with the server's command replaced by a shell check that its
command and interpreters are executable inside. What would fail is reported in the
sandbox's own words, with the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.runtime.command_paths import interpreter_chain
from bastion.runtime.config import StdioLaunch
from bastion.runtime.sandbox import BRIDGE_SCRIPT, bubblewrap_problem, build_bwrap_argv, sandbox_env
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime

__all__ = ["ServerProbe", "probe_server"]

_MISSING = "bastion-probe: missing "
_CHECK = (
    'for p; do case "$p" in x:*) test -x "${p#x:}" -a ! -d "${p#x:}";; *) test -r "${p#r:}";; esac'
    f' || {{ echo "{_MISSING}${{p#?:}}" >&2; exit 127; }}; done'
)
"""Each argument is `x:PATH` (must be executable) or `r:PATH` (must be readable), checked inside."""
_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class ServerProbe:
    """What starting one server's sandbox showed: `ok`, and the detail (the problem and its fix)."""

    server: str
    ok: bool
    detail: str


def probe_server(name: str, config: StdioLaunch, settings: RuntimeSettings, command: str) -> ServerProbe:
    """Start `name`'s sandbox with its command (`command`, already resolved) replaced by a check."""
    if not config.sandbox.enabled:
        return ServerProbe(name, True, "runs WITHOUT a sandbox (sandbox: off)")
    problem = bubblewrap_problem()
    if problem is not None:
        return ServerProbe(name, False, problem)
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), str(Path(sys.executable).parent)])
    if shutil.which(command, path=search_path) is None and not Path(command).is_file():
        return ServerProbe(name, False, f"{command}: not found on this host; install it, or fix `command`")
    needed = [f"x:{p}" for p in interpreter_chain(command, search_path)]
    runtime = ServerRuntime(name, config, settings)
    with tempfile.TemporaryDirectory(prefix="bastion-probe-") as egress:
        allowlist = config.sandbox.network == "allowlist"
        if allowlist:
            needed += [f"x:{sys.executable}", f"r:{BRIDGE_SCRIPT}"]
        plan = runtime.sandbox_plan(command, Path(egress) if allowlist else None)
        argv = build_bwrap_argv(plan, bwrap=shutil.which("bwrap") or "bwrap")
        options = argv[: argv.index("--")]
        env = sandbox_env(plan, config.env, os.environ)
        try:
            done = subprocess.run(
                [*options, "--", "/bin/sh", "-c", _CHECK, "sh", *needed],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ServerProbe(name, False, f"the sandbox could not be started: {exc}")
    if done.returncode == 0:
        return ServerProbe(name, True, f"its sandbox starts and {command} is executable inside")
    return ServerProbe(name, False, _explain(done.stderr, plan.hidden, command))


def _explain(stderr: str, hidden: Sequence[Path], command: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    missing = [line.removeprefix(_MISSING) for line in lines if line.startswith(_MISSING)]
    hidden_paths = [Path(p).resolve() for p in hidden]
    if missing:
        path = Path(missing[0])
        inside = next((h for h in hidden_paths if path.is_relative_to(h)), None)
        if inside is not None:
            return (
                f"{path} is not visible inside the sandbox: it is in {inside}, which the sandbox hides "
                "(Bastion's data folder or config); install the server elsewhere"
            )
        return (
            f"{path} is not visible inside the sandbox; add its folder to this server's `sandbox.read_only` "
            "(or install it outside /tmp, /run and the hidden credential folders)"
        )
    bwrap = [line for line in lines if line.startswith("bwrap: ")]
    if bwrap:
        return f"the sandbox could not be set up: {'; '.join(bwrap)}; check this server's `sandbox` paths and `cwd`"
    return f"the sandbox check of {command} failed: {'; '.join(lines) or 'no message'}"
