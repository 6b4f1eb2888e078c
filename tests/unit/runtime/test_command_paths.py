"""What a server's command needs shown inside the sandbox, and what is never shown (issue 16)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.runtime.command_paths import program_paths, visible_binds
from bastion.runtime.config import SandboxConfig
from bastion.runtime.sandbox import SandboxPlan, build_bwrap_argv, program_binds

HOME = Path("/nonexistent-home")


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A folder under /tmp itself: the sandbox replaces /tmp, which is what is tested."""
    folder = Path(tempfile.mkdtemp(prefix="bastion-paths-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def venv(tmp: Path) -> Path:
    """A virtualenv layout: pyvenv.cfg, a python symlink to the real one, a console script."""
    root = tmp / "venv"
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).resolve().parent}\n")
    (root / "bin" / "python").symlink_to(Path(sys.executable).resolve())
    return executable(root / "bin" / "server", f"#!{root / 'bin' / 'python'}\nimport sys\n")


def node_project(tmp: Path) -> Path:
    """A node prefix under /tmp and a package's bin link in a node_modules tree."""
    executable(tmp / "node" / "bin" / "node", "#!/bin/sh\n")
    script = executable(tmp / "proj" / "node_modules" / "pkg" / "dist" / "cli.js", "#!/usr/bin/env node\n")
    link = tmp / "proj" / "node_modules" / ".bin" / "pkg"
    link.parent.mkdir(parents=True)
    link.symlink_to(script)
    return link


def binds(command: str, args: list[str], search: str | None, hidden: list[Path] = []) -> list[Path]:  # noqa: B006
    return visible_binds(program_paths(command, args, search), hidden, HOME)


def test_a_venv_under_tmp_is_shown_whole_and_nothing_more(tmp):
    server = venv(tmp)
    assert binds(str(server), [], None) == [tmp / "venv"]


def test_a_node_package_shows_its_node_modules_tree_and_the_node_prefix(tmp):
    link = node_project(tmp)
    assert binds(str(link), [], str(tmp / "node" / "bin")) == [tmp / "proj" / "node_modules", tmp / "node"]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["{tmp}/server.py", "--port", "1"], ["{tmp}/server.py"]),
        (["-u", "{tmp}/server.py"], []),  # options first: not a script argument we recognise
        (["-m", "server"], []),
        (["{tmp}/missing.py"], []),
    ],
)
def test_the_script_a_known_interpreter_runs_is_shown(tmp, args, shown):
    (tmp / "server.py").write_text("print()\n")
    expanded = [a.format(tmp=tmp) for a in args]
    assert binds(sys.executable, expanded, None) == [Path(s.format(tmp=tmp)) for s in shown]


@pytest.mark.parametrize("command", ["/usr/bin/env", "sh", "no-such-program", "relative/path"])
def test_a_command_outside_the_replaced_folders_needs_no_bind(command):
    assert binds(command, [], "/usr/bin:/bin") == []


def test_nothing_inside_or_holding_a_hidden_path_is_shown(tmp):
    server = venv(tmp)
    # The venv holds Bastion's data folder: the venv is not shown, only the files the command is.
    data = tmp / "venv" / "data"
    data.mkdir()
    shown = binds(str(server), [], None, hidden=[data])
    assert tmp / "venv" not in shown
    assert all(not data.is_relative_to(p) and not p.is_relative_to(data) for p in shown)
    # A command inside a hidden folder is never shown.
    inside = executable(data / "bin" / "server", "#!/bin/sh\n")
    assert binds(str(inside), [], None, hidden=[data]) == []


@pytest.mark.parametrize(
    "path",
    [
        "/tmp",
        "/run",
        "/dev/shm",
        "/tmp/bastion-egress-1-abc",
        "/tmp/bastion-egress-1-abc/egress.sock",
        "/run/user/1000",  # a prefix that would show the session bus and agents' sockets
        "/run/user/1000/venv",
        "/tmp/.X11-unix",
        "/run/dbus",
    ],
)
def test_whole_temp_folders_and_host_sockets_are_never_shown(path):
    assert visible_binds([Path(path)], [], HOME) == []


def test_the_argv_binds_the_command_before_the_hidden_paths_are_hidden(tmp):
    server = venv(tmp)
    data = tmp / "data"
    (data / "sandbox" / "srv").mkdir(parents=True)
    plan = SandboxPlan(
        command=str(server),
        args=(),
        config=SandboxConfig(),
        state_dir=data / "sandbox" / "srv",
        hidden=(data,),
        home=HOME,
    )
    argv = build_bwrap_argv(plan)
    bind = argv.index(str(tmp / "venv"))
    assert argv[bind - 1 : bind + 2] == ["--ro-bind-try", str(tmp / "venv"), str(tmp / "venv")]
    assert bind < argv.index(str(data))
    assert program_binds(plan) == [tmp / "venv"]


def test_a_symlink_into_a_hidden_folder_is_not_followed_into_a_bind(tmp):
    # /tmp/x/venv -> the (hidden) data folder: binding it would show the data folder inside.
    data = tmp / "data"
    (data / "bin").mkdir(parents=True)
    (data / "pyvenv.cfg").write_text("home = /usr/bin\n")
    executable(data / "bin" / "server", "#!/bin/sh\n")
    (tmp / "venv").symlink_to(data)
    assert binds(str(tmp / "venv" / "bin" / "server"), [], None, hidden=[data]) == []


def test_a_symlink_to_the_root_is_never_bound(tmp):
    (tmp / "venv").symlink_to("/")
    assert visible_binds([tmp / "venv"], [], HOME) == []
