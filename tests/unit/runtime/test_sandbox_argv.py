"""The bubblewrap command line and the environment inside the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bastion.runtime.config import SandboxConfig
from bastion.runtime.sandbox import EGRESS_PORT, SandboxPlan, build_bwrap_argv, sandbox_env


def plan(tmp_path: Path, **config: object) -> SandboxPlan:
    home = tmp_path / "home"
    for secret in (".ssh", ".aws", ".config/gcloud", ".kube", ".docker"):
        (home / secret).mkdir(parents=True)
    (home / ".netrc").write_text("machine x password y")
    data = tmp_path / "data"
    (data / "sandbox" / "srv").mkdir(parents=True)
    (tmp_path / "bastion.yaml").write_text("servers: {}")
    return SandboxPlan(
        command="/usr/bin/server",
        args=("--flag",),
        config=SandboxConfig.model_validate(config),
        state_dir=data / "sandbox" / "srv",
        hidden=(data, tmp_path / "bastion.yaml"),
        home=home,
    )


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == option]


def singles(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == option]


def test_namespaces_read_only_root_and_private_tmp(tmp_path):
    argv = build_bwrap_argv(plan(tmp_path), bwrap="/usr/bin/bwrap")
    options = argv[: argv.index("--")]
    assert options[:4] == ["/usr/bin/bwrap", "--ro-bind", "/", "/"]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert flag in options
    assert {"/tmp", "/run", "/dev/shm"} <= set(singles(options, "--tmpfs"))
    assert argv[argv.index("--") + 1 :] == ["/usr/bin/server", "--flag"]


def test_credentials_config_and_data_are_hidden_and_the_state_folder_is_writable(tmp_path):
    p = plan(tmp_path)
    argv = build_bwrap_argv(p)
    tmpfs = set(singles(argv, "--tmpfs"))
    home = p.home
    for secret in (".ssh", ".aws", ".config/gcloud", ".kube", ".docker"):
        assert str(home / secret) in tmpfs
    assert str(tmp_path / "data") in tmpfs
    nulled = {dest for src, dest in pairs(argv, "--ro-bind") if src == "/dev/null"}
    assert {str(home / ".netrc"), str(tmp_path / "bastion.yaml")} <= nulled
    assert (str(p.state_dir), str(p.state_dir)) in pairs(argv, "--bind")
    # Hidden folders are made read-only after the state folder is bound inside them.
    assert argv.index("--remount-ro") > argv.index("--bind")


def test_configured_paths_are_bound_and_hiding_wins_over_a_parent(tmp_path):
    exposed = tmp_path / "work"
    argv = build_bwrap_argv(plan(tmp_path, read_only=[str(tmp_path)], writable=[str(exposed)]))
    assert (str(tmp_path), str(tmp_path)) in pairs(argv, "--ro-bind-try")
    assert (str(exposed), str(exposed)) in pairs(argv, "--bind-try")
    # The data folder is inside the exposed parent, yet hidden after it.
    bind_parent = argv.index("--ro-bind-try")
    hide_data = argv.index(str(tmp_path / "data"), bind_parent) - 1
    assert argv[hide_data] == "--tmpfs"


def test_a_path_listed_inside_a_hidden_folder_is_shown(tmp_path):
    inside = tmp_path / "data" / "audit.db"
    argv = build_bwrap_argv(plan(tmp_path, read_only=[str(inside)]))
    binds = [i for i, a in enumerate(argv) if a == "--ro-bind-try" and argv[i + 1] == str(inside)]
    assert binds[-1] > argv.index(str(tmp_path / "data"))


def test_allowlist_runs_the_bridge_in_front_of_the_server(tmp_path):
    p = plan(tmp_path, network="allowlist", allow_domains=["example.com"])
    p = SandboxPlan(**{**{f: getattr(p, f) for f in p.__slots__}, "egress_dir": tmp_path / "egress"})  # type: ignore[arg-type]
    argv = build_bwrap_argv(p)
    command = argv[argv.index("--") + 1 :]
    assert command[:3] == [sys.executable, "-I", "-S"]
    assert command[3].endswith("bridge.py")
    assert command[4] == str(EGRESS_PORT)
    assert command[command.index("--") + 1 :] == ["/usr/bin/server", "--flag"]
    env = sandbox_env(p, {}, {"PATH": "/usr/bin"})
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert env[name] == f"http://127.0.0.1:{EGRESS_PORT}"


def test_environment_is_only_basics_caches_and_the_configured_env(tmp_path):
    p = plan(tmp_path)
    outside = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "AWS_SECRET_ACCESS_KEY": "x", "SSH_AUTH_SOCK": "/run/a"}
    env = sandbox_env(p, {"API_TOKEN": "from-config", "LANG": "de_DE.UTF-8"}, outside)
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "SSH_AUTH_SOCK" not in env
    assert "HTTP_PROXY" not in env
    assert env["API_TOKEN"] == "from-config"
    assert env["LANG"] == "de_DE.UTF-8"
    assert env["HOME"] == str(p.home)
    assert env["npm_config_cache"].startswith(str(p.state_dir))
    assert env["PATH"].split(":")[0] == "/usr/bin"
    assert str(Path(sys.executable).parent) in env["PATH"].split(":")


@pytest.mark.parametrize(("where", "expected"), [("data", "state"), ("tmp", "state"), ("/usr", "/usr")])
def test_working_folder(tmp_path, monkeypatch, where, expected):
    p = plan(tmp_path)
    folder = {"data": tmp_path / "data", "tmp": tmp_path}.get(where, Path(where))
    monkeypatch.chdir(folder)
    [chdir] = singles(build_bwrap_argv(p), "--chdir")
    # A working folder that is hidden (or in the private /tmp) becomes the server's state folder.
    assert chdir == (str(p.state_dir) if expected == "state" else expected)
