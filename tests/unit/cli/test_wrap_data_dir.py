"""Where `bastion wrap` keeps its audit log without a config (issue 16, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.cli.main import wrap_data_dir


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "{home}/.local/state/bastion"),
        ({"XDG_STATE_HOME": "/srv/state"}, "/srv/state/bastion"),
        ({"XDG_STATE_HOME": "relative/state"}, "{home}/.local/state/bastion"),  # invalid per XDG: ignored
        ({"XDG_STATE_HOME": ""}, "{home}/.local/state/bastion"),
        ({"XDG_STATE_HOME": "/srv/state", "BASTION_DATA_DIR": "/srv/audit"}, "/srv/audit"),
    ],
)
def test_wrap_defaults_to_the_per_user_state_folder(environ, expected):
    assert wrap_data_dir(environ) == Path(expected.format(home=Path.home()))


def test_a_relative_bastion_data_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert wrap_data_dir({"BASTION_DATA_DIR": "audit"}) == tmp_path.resolve() / "audit"
