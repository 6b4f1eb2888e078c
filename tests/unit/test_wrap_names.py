from __future__ import annotations

import pytest

from bastion.cli.main import _name_for
from bastion.config import SERVER_NAME


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["mcp-server-time"], "mcp-server-time"),
        (["/usr/local/bin/mcp-server-git", "--repository", "."], "mcp-server-git"),
        (["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"], "server-filesystem"),
        (["uvx", "mcp-server-fetch@2025.1"], "mcp-server-fetch"),
        (["python3", "My Server.py"], "python3"),
        (["--weird"], "wrapped"),
    ],
)
def test_wrapped_commands_get_a_readable_valid_server_name(command, name):
    assert _name_for(command) == name
    assert SERVER_NAME.fullmatch(name)
