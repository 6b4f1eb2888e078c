"""Bastion health-checks its HTTP upstreams, so readiness follows them without waiting for a call.

A real gateway (in this process, so the test can run a health-check round when it wants one
instead of waiting for the interval) in front of a real HTTP upstream process
(tests/e2e/servers/http_upstream.py). The upstream is frozen (SIGSTOP: it hangs), then thawed,
then killed and started again on its port. Before the watch, an HTTP upstream stayed `up` in
`/readyz` and `bastion servers` until an agent's call failed on it, and a hung one held every
call in flight until that call's own timeout.
"""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest

from bastion.alerts.from_events import alert_for
from bastion.audit.chain import decode_row
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.audit_events import runtime_audit_event
from bastion.runtime.events import ServerExited
from tests.e2e.conftest import write_config
from tests.e2e.http_upstreams import http_upstream

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

HEALTH = {"interval": 3600, "timeout": 1}
"""Rounds are run by the test (`check()`); the timer's first round would come after the test."""


async def lifecycle(gateway: Gateway) -> list[tuple[str, str | None]]:
    """The `server.exited` / `server.started` events recorded so far: (type, reason)."""
    await gateway.audit.flush()
    query = EventQuery(types=("server.exited", "server.started"))
    events = [decode_row(row) for row in gateway.audit.rows(query, newest_first=False)]
    return [(event.type, event.details.get("reason")) for event in events]


async def test_readiness_follows_an_http_upstream_that_hangs_dies_and_returns(tmp_path: Path) -> None:
    with http_upstream(era="handshake") as upstream:
        config = write_config(tmp_path, {"flaky": {"url": upstream.url, "health": HEALTH}})
        gateway = Gateway(load_config(config))
        with anyio.fail_after(120):
            async with gateway.running():
                watch, server = gateway.remote_watches["flaky"], gateway.upstreams["flaky"]
                assert (await gateway.readiness())["servers"] == {"flaky": "up"}

                await watch.check()  # a healthy server: nothing changes
                assert server.state == "up"
                assert await lifecycle(gateway) == []
                first_start = server.starts

                hung_session = server.session_ended
                upstream.process.send_signal(signal.SIGSTOP)  # it hangs
                try:
                    await watch.check()
                    report = await gateway.readiness()
                    assert report["ready"] is False
                    assert report["servers"] == {"flaky": "down"}
                    assert server.last_error == "did not answer a health check within 1 s"
                finally:
                    upstream.process.send_signal(signal.SIGCONT)
                await hung_session.wait()  # its closing (a DELETE for the session) needed the server
                hung = "did not answer a health check within 1 s"
                assert await lifecycle(gateway) == [("server.exited", hung)]

                await watch.check()  # back: a new session, without any agent's call
                assert (await gateway.readiness())["servers"] == {"flaky": "up"}
                assert server.starts == first_start + 1
                assert await lifecycle(gateway) == [("server.exited", hung), ("server.started", None)]
                assert (await server.request("tools/call", {"name": "echo", "arguments": {"text": "hi"}}))["content"][
                    0
                ]["text"] == "hi"

                port = upstream.port
                upstream.kill()  # gone
                await watch.check()
                assert server.state == "down"
                await watch.check()  # still gone: it stays down, the watch carries on
                assert (await gateway.readiness())["ready"] is False
                seen = await lifecycle(gateway)
                assert [kind for kind, _ in seen] == ["server.exited", "server.started", "server.exited"]  # once

                with http_upstream(port, "handshake"):
                    await watch.check()
                    assert (await gateway.readiness())["servers"] == {"flaky": "up"}
                    assert server.starts == first_start + 2
                    assert [kind for kind, _ in await lifecycle(gateway)][-1] == "server.started"


def test_a_remote_server_going_down_is_alerted_as_down_not_as_an_exit() -> None:
    alert = alert_for(
        runtime_audit_event(ServerExited("crm", "did not answer a health check within 10 s", None, remote=True))
    )
    assert alert is not None
    assert alert.summary == "server crm is down: did not answer a health check within 10 s"
    launched = alert_for(runtime_audit_event(ServerExited("git", "exit code 1", 1)))
    assert launched is not None
    assert launched.summary == "server git exited: exit code 1"


async def test_the_watch_checks_on_its_own_every_interval(tmp_path: Path) -> None:
    with http_upstream() as upstream:
        config = write_config(tmp_path, {"flaky": {"url": upstream.url, "health": {"interval": 0.05}}})
        gateway = Gateway(load_config(config))
        with anyio.fail_after(60):
            async with gateway.running():
                server = gateway.upstreams["flaky"]
                assert server.state == "up"
                upstream.kill()
                await server.session_ended.wait()  # the timer's next ping found it gone
                assert server.state == "down"
