"""The adversary's probe: an MCP server that reports what a sandboxed process can reach.

Run as `python probe_server.py`; it speaks MCP over stdio with the SDK's `MCPServer`.
`probe` returns JSON: its own descriptors (what each one is), the descriptors of every
other process it can see in `/proc`, what `pidfd_getfd` can take from each of them, its
environment and its mounts. `crash` exits at once, so the supervisor restarts it.
Standard library and the SDK only.
"""

from __future__ import annotations

import os


def _born_with() -> dict[str, str]:
    """The descriptors this process was started with, read before anything here opens one."""
    folder = "/proc/self/fd"
    held: dict[str, str] = {}
    for name in os.listdir(folder):
        try:
            held[name] = os.readlink(f"{folder}/{name}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return held


BORN_WITH = _born_with()

import ctypes  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from mcp.server.mcpserver import MCPServer  # noqa: E402

server = MCPServer("probe")
print(f"probe started, born with descriptors {sorted(BORN_WITH, key=int)}", file=sys.stderr, flush=True)

_PIDFD_GETFD = {"x86_64": 438, "aarch64": 438}.get(platform.machine(), 438)
_libc = ctypes.CDLL(None, use_errno=True)


def _describe(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _fds(pid: str) -> dict[str, str] | str:
    """Descriptor number to what it is (`socket:[inode]`, a path, `pipe:[inode]`...)."""
    folder = Path("/proc") / pid / "fd"
    try:
        return {entry.name: _describe(entry) for entry in sorted(folder.iterdir(), key=lambda p: int(p.name))}
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _steal(pid: int, numbers: list[int]) -> dict[str, str]:
    """Try `pidfd_open` then `pidfd_getfd` on each descriptor: what a server could take from `pid`."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        return {"pidfd_open": f"refused: {exc.strerror}"}
    taken: dict[str, str] = {"pidfd_open": "ok"}
    try:
        for number in numbers:
            fd = _libc.syscall(_PIDFD_GETFD, pidfd, number, 0)
            if fd < 0:
                taken[str(number)] = f"refused: {os.strerror(ctypes.get_errno())}"
                continue
            taken[str(number)] = f"taken: {_describe(Path(f'/proc/self/fd/{fd}'))}"
            os.close(fd)
    finally:
        os.close(pidfd)
    return taken


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@server.tool()
def probe() -> str:
    """Everything this process can see and take, as JSON."""
    own = str(os.getpid())
    processes: dict[str, object] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == own:
            continue
        fds = _fds(entry.name)
        numbers = [int(n) for n in fds] if isinstance(fds, dict) else list(range(64))
        processes[entry.name] = {
            "cmdline": _cmdline(entry.name),
            "fds": fds,
            "getfd": _steal(int(entry.name), numbers),
        }
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError as exc:
        mounts = [f"unreadable: {exc.strerror}"]
    report = {
        "pid": os.getpid(),
        "born_with": BORN_WITH,
        "fds": _fds("self"),
        "processes": processes,
        "environ": dict(os.environ),
        "mounts": mounts,
    }
    return json.dumps(report)


@server.tool()
def shout(text: str) -> str:
    """Print `text` on stderr as it is (a server trying to write into Bastion's log)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
    return "printed"


@server.tool()
def crash() -> str:
    """Exit at once (code 3), without answering: the supervisor restarts the server."""
    sys.stdout.flush()
    os._exit(3)


if __name__ == "__main__":
    server.run()
