"""What a server's command needs to be readable inside the sandbox, wherever it is installed.

The sandbox replaces `/tmp`, `/run` and `/dev/shm` with empty folders and hides credentials,
Bastion's config and data. A server installed there (a clone under `/tmp`, a venv in a
private temp folder) would not exist inside. `program_paths` lists what running it takes:
the command as given and its resolved file, the interpreter its shebang names (through
`env`), a script a known interpreter is given as its first argument, and the environment
each comes from (a virtualenv, a `node_modules` tree, an interpreter's prefix).
`visible_binds` keeps those the sandbox would not show, minus anything that would expose
what it hides: never a hidden path, nor a folder holding one, nor a whole temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["REPLACED_ROOTS", "SOCKET_FOLDERS", "interpreter_chain", "program_paths", "resolve_command", "visible_binds"]

REPLACED_ROOTS = (Path("/tmp"), Path("/run"), Path("/dev/shm"))
"""Folders the sandbox replaces with an empty tmpfs."""

SOCKET_FOLDERS = (
    Path("/run/user"),
    Path("/run/dbus"),
    Path("/run/systemd"),
    Path("/run/containerd"),
    Path("/run/podman"),
    Path("/run/docker.sock"),
    Path("/tmp/.X11-unix"),
    Path("/tmp/.ICE-unix"),
)
"""Where Unix sockets to the host live (session bus, agents, container engines, X): a socket
shown read-only can still be connected to, so nothing in or around them is ever shown."""

_SHEBANG_DEPTH = 4
"""Linux follows at most a few levels of interpreter scripts; so do we."""

_SCRIPT_RUNNER = re.compile(r"(python|node|nodejs|bun|deno|ruby|perl|bash|sh)[0-9.]*")
"""Interpreters whose first argument, when it is not an option, is the program they run."""


def resolve_command(command: str) -> str:
    """A bare program name, looked up on PATH and then beside Bastion's own Python.

    A server installed into the same environment as Bastion (`pip install mcp-server-time`
    next to it) is found even when that environment's `bin` is not on PATH.
    """
    if os.sep in command:
        return command
    found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    return found or command


def program_paths(command: str, args: Sequence[str], search_path: str | None) -> list[Path]:
    """Files and folders the command needs to start, outside-the-sandbox paths, in a stable order."""
    found: dict[Path, None] = {}
    executable = _which(command, search_path)
    if executable is None:
        return []
    _follow(executable, search_path, found, depth=0)
    script = _script_argument(executable, args)
    if script is not None:
        _follow(script, search_path, found, depth=_SHEBANG_DEPTH)
    return list(found)


def interpreter_chain(command: str, search_path: str | None) -> list[Path]:
    """The command as found, then the interpreter its shebang names, and so on (each must be executable)."""
    chain: list[Path] = []
    current = _which(command, search_path)
    while current is not None and current not in chain and len(chain) <= _SHEBANG_DEPTH:
        chain.append(current)
        current = _shebang_interpreter(current.resolve(), search_path)
    return chain


def visible_binds(paths: Iterable[Path], hidden: Sequence[Path], home: Path) -> list[Path]:
    """The paths a `--ro-bind` must show: those under a replaced root, never exposing what is hidden."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    sockets = [*SOCKET_FOLDERS, *([Path(runtime_dir)] if runtime_dir else [])]
    never = [*dict.fromkeys([*hidden, *(p.resolve() for p in hidden), *sockets])]
    keep: list[Path] = []
    for path in paths:
        if not any(path.is_relative_to(root) for root in REPLACED_ROOTS):
            continue  # the read-only root already shows it
        # bubblewrap follows a symlinked source: judge where it leads as well as its name.
        if _exposes(path, never, home) or _exposes(path.resolve(), never, home):
            continue
        keep.append(path)
    # One bind per tree: a path inside a bound folder is already shown (and a mount point
    # cannot be created inside a read-only bind).
    return [p for p in keep if not any(p != other and p.is_relative_to(other) for other in keep)]


def _exposes(path: Path, hidden: Sequence[Path], home: Path) -> bool:
    """True when binding `path` would show a hidden path, a whole temp or home folder."""
    broad = {Path("/"), home, Path.home(), *REPLACED_ROOTS, Path(os.environ.get("TMPDIR", "/tmp"))}
    if path in broad:
        return True
    for secret in hidden:
        if path.is_relative_to(secret) or secret.is_relative_to(path):
            return True
    # Other servers' egress sockets live in `bastion-egress-*` folders of the temp folder.
    return any(part.startswith("bastion-egress-") for part in path.parts)


def _which(command: str, search_path: str | None) -> Path | None:
    if os.sep in command:
        path = Path(command)
        return path if path.is_absolute() and (path.exists() or path.is_symlink()) else None
    found = shutil.which(command, path=search_path)
    return Path(found) if found is not None else None


def _follow(path: Path, search_path: str | None, found: dict[Path, None], depth: int) -> None:
    """Add `path`, its resolved file, their environments, and (for a script) its interpreter."""
    resolved = path.resolve()
    for each in dict.fromkeys((path, resolved)):
        found.setdefault(each, None)
        for environment in _environments(each):
            found.setdefault(environment, None)
    if depth >= _SHEBANG_DEPTH:
        return
    interpreter = _shebang_interpreter(resolved, search_path)
    if interpreter is not None:
        _follow(interpreter, search_path, found, depth + 1)


def _environments(path: Path) -> list[Path]:
    """The virtualenv, `node_modules` tree and interpreter prefix `path` belongs to."""
    environments: list[Path] = []
    for folder in path.parents:
        config = folder / "pyvenv.cfg"
        if config.is_file():
            environments.append(folder)
            base = _venv_home(config)
            if base is not None:
                environments += [base, *_environments(base / "python")]
            break
    modules = [folder for folder in path.parents if folder.name == "node_modules"]
    if modules:
        environments.append(modules[-1])  # the outermost tree: packages resolve each other in it
    if path.parent.name == "bin" and path.name.startswith(("python", "node", "nodejs", "bun", "deno")):
        environments.append(path.parent.parent)  # the interpreter's prefix (its lib/ and includes)
    return environments


def _venv_home(config: Path) -> Path | None:
    """The base interpreter's folder a virtualenv's `pyvenv.cfg` names (`home = ...`)."""
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "home" and value.strip():
            return Path(value.strip())
    return None


def _shebang_interpreter(path: Path, search_path: str | None) -> Path | None:
    """The program a `#!` line runs (through `/usr/bin/env NAME`), or None."""
    try:
        with path.open("rb") as file:
            head = file.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    interpreter = _which(words[0], search_path)
    if interpreter is not None and interpreter.name == "env":
        names = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return _which(names[0], search_path) if names else None
    return interpreter


def _script_argument(executable: Path, args: Sequence[str]) -> Path | None:
    """The program file given to a known interpreter (`python /tmp/x/server.py`), or None."""
    names = (executable.name, executable.resolve().name)
    if not any(_SCRIPT_RUNNER.fullmatch(name) for name in names):
        return None
    words = [a for a in args if not a.startswith("-")]
    if not words or args[0] != words[0]:
        return None  # options come first (`python -m pkg`): no script file to show
    script = Path(words[0])
    return script if script.is_absolute() and script.is_file() else None
