"""`bastion servers restart NAME` clears a crash-loop hold through the running gateway's admin
API (issue 16, item 1): a held server is not retried on the next request, it waits for this."""

from __future__ import annotations

import os

import anyio
import httpx2
import pytest

from bastion.admin.tokens import Role
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.events import RecordingSink, ServerGaveUp, ServerStarted
from bastion.stores import open_admin_token_store
from tests.e2e.conftest import VENV_BIN, run_cli, write_config
from tests.e2e.inprocess import serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_a_held_server_stays_down_until_an_admin_restarts_it(tmp_path):
    switch = tmp_path / "switch"
    switch.mkdir()
    script = tmp_path / "server.sh"
    # Fails until the switch file exists (the operator fixed what made it crash), then serves.
    script.write_text(f'#!/bin/sh\n[ -f "{switch}/on" ] && exec "{VENV_BIN / "mcp-server-time"}"\nexit 3\n')
    script.chmod(0o755)
    server = {
        "command": str(script),
        "health": {"interval": 60},
        "restart": {"backoff": 0.05, "backoff_max": 0.1, "max_restarts": 1, "window": 60},
        "sandbox": {"read_only": [str(switch)]},
    }
    path = write_config(tmp_path, {"flaky": server})
    config = load_config(path)
    sink = RecordingSink()
    with anyio.fail_after(90):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            await sink.wait_for(ServerGaveUp)
            store = open_admin_token_store(config)
            try:
                _, admin = store.create("ops", Role.ADMIN)
                _, viewer = store.create("watcher", Role.VIEWER)
            finally:
                store.close()
            restart = f"{gateway.base_url}/admin/api/servers/flaky/restart"
            async with httpx2.AsyncClient(timeout=60) as http:
                refused = await http.post(restart, headers={"Authorization": f"Bearer {viewer}"})
                unknown = await http.post(
                    f"{gateway.base_url}/admin/api/servers/nope/restart", headers={"Authorization": f"Bearer {admin}"}
                )
            assert refused.status_code == 403
            assert unknown.status_code == 404
            assert gateway.upstreams["flaky"].state == "crash-loop"

            (switch / "on").write_text("")
            env = {**os.environ, "BASTION_ADMIN_TOKEN": admin}
            done = await anyio.to_thread.run_sync(
                lambda: run_cli("servers", "restart", "flaky", "--config", str(path), env=env)
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "flaky: hold cleared; state up" in done.stdout
            assert gateway.upstreams["flaky"].state == "up"
            await sink.wait_for(ServerStarted)

            again = await anyio.to_thread.run_sync(
                lambda: run_cli("servers", "restart", "flaky", "--config", str(path), env=env)
            )
            assert again.returncode == 1
            assert "not held down (state up)" in again.stderr
