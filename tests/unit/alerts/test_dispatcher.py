from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from bastion.alerts.config import AlertsConfig
from bastion.alerts.dispatcher import AlertDispatcher
from bastion.alerts.model import Alert, AlertDeliveryFailed, AlertKind, Severity
from bastion.approvals.events import ListEventSink

Receiver = Any  # the `receiver` fixture (conftest.py)

pytestmark = pytest.mark.anyio
SECRET = "webhook-secret-0123456789abcdef"


class FailureSink(ListEventSink):
    """Records events; `failed` is set once a delivery failure is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = anyio.Event()

    def record(self, event: object) -> None:
        super().record(event)
        if isinstance(event, AlertDeliveryFailed):
            self.failed.set()


@asynccontextmanager
async def dispatching(**config: Any) -> AsyncIterator[tuple[AlertDispatcher, FailureSink]]:
    events = FailureSink()
    dispatcher = AlertDispatcher(AlertsConfig.model_validate({"backoff": 0.01, **config}), events)
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatcher.run)
        yield dispatcher, events
        tg.cancel_scope.cancel()


def denied(tool: str = "drop") -> Alert:
    return Alert(AlertKind.CALL_DENIED, f"denied bot -> db/{tool}", {"agent": "bot", "tool": tool})


async def test_signed_json_and_slack_payloads_go_to_the_webhooks_that_want_them(receiver: Receiver) -> None:
    hooks = [
        {"url": receiver.url + "?json", "secret": SECRET},
        {"url": receiver.url + "?slack", "style": "slack", "events": ["server_crashed"]},
        {"url": receiver.url + "?critical", "min_severity": "critical"},
    ]
    with anyio.fail_after(10):
        async with dispatching(webhooks=hooks) as (dispatcher, _):
            dispatcher.emit(denied())
            dispatcher.emit(Alert(AlertKind.SERVER_CRASHED, "server db crashed", {"server": "db"}))
            received = await receiver.wait_for(4)
    by_kind: dict[str, list[Any]] = {}
    for request in received:
        by_kind.setdefault(request.headers["x-bastion-event"], []).append(request)
    # call_denied (warning) reaches only the unfiltered JSON hook; server_crashed (critical) all three.
    assert len(by_kind["call_denied"]) == 1
    assert len(by_kind["server_crashed"]) == 3
    signed = by_kind["call_denied"][0]
    expected = "sha256=" + hmac.new(SECRET.encode(), signed.body, hashlib.sha256).hexdigest()
    assert signed.headers["x-bastion-signature"] == expected
    body = json.loads(signed.body)
    assert body["kind"] == "call_denied"
    assert body["severity"] == "warning"
    assert body["summary"] == "denied bot -> db/drop"
    assert body["details"] == {"agent": "bot", "tool": "drop"}
    assert body["count"] == 1
    texts = [json.loads(r.body) for r in by_kind["server_crashed"] if "text" in json.loads(r.body)]
    assert texts == [{"text": "[Bastion critical] server db crashed"}]
    assert sum("x-bastion-signature" in r.headers for r in received) == 2


async def test_failed_deliveries_are_retried_then_recorded(receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 500, 500, 500]
    with anyio.fail_after(10):
        async with dispatching(webhooks=[{"url": receiver.url}], max_attempts=3) as (dispatcher, events):
            dispatcher.emit(denied("first"))
            await receiver.wait_for(3)  # 500, 503, then 500 again: given up after 3 attempts
            dispatcher.emit(denied("second"))
            await receiver.wait_for(6)  # 500, 500, then 200
    failed = [e for e in events.events if isinstance(e, AlertDeliveryFailed)]
    assert len(failed) == 1
    assert (failed[0].kind, failed[0].attempts, failed[0].error) == ("call_denied", 3, "HTTP 500")
    assert dispatcher.failed == 1
    assert [json.loads(r.body)["details"]["tool"] for r in receiver.requests] == ["first"] * 3 + ["second"] * 3


async def test_identical_alerts_are_coalesced_into_one_with_a_count(receiver: Receiver) -> None:
    with anyio.fail_after(10):
        async with dispatching(webhooks=[{"url": receiver.url}], coalesce_window=0.2) as (dispatcher, _):
            for _ in range(5):
                dispatcher.emit(denied())
            dispatcher.emit(denied("other"))
            await receiver.wait_for(3)
    bodies = [json.loads(r.body) for r in receiver.requests]
    same = [(b["count"]) for b in bodies if b["details"]["tool"] == "drop"]
    assert sorted(same) == [1, 4]
    assert [b["count"] for b in bodies if b["details"]["tool"] == "other"] == [1]


async def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    config = AlertsConfig.model_validate({"webhooks": [{"url": "http://127.0.0.1:9/"}], "queue_size": 2})
    dispatcher = AlertDispatcher(config, ListEventSink())  # not running: nothing drains the queue
    for _ in range(5):
        dispatcher.emit(denied())
    assert dispatcher.dropped == 3


def test_alerts_nobody_wants_are_not_queued() -> None:
    config = AlertsConfig.model_validate({"webhooks": [{"url": "http://x.invalid/", "min_severity": "critical"}]})
    dispatcher = AlertDispatcher(config, ListEventSink())
    dispatcher.emit(Alert(AlertKind.SERVER_RESTARTED, "restarted"))
    dispatcher.emit(Alert(AlertKind.CALL_DENIED, "denied", severity=Severity.CRITICAL))
    assert dispatcher._send.statistics().current_buffer_used == 1


async def test_an_unreachable_webhook_is_recorded_and_does_not_stop_the_others(receiver: Receiver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    hooks = [{"url": dead}, {"url": receiver.url}]
    with anyio.fail_after(10):
        async with dispatching(webhooks=hooks, max_attempts=2) as (dispatcher, events):
            dispatcher.emit(denied("first"))
            await events.failed.wait()
            dispatcher.emit(denied("second"))
            await receiver.wait_for(2)
    [failed] = [e for e in events.events if isinstance(e, AlertDeliveryFailed)]
    assert failed.url == dead
    assert "ConnectError" in failed.error
    assert [json.loads(r.body)["details"]["tool"] for r in receiver.requests] == ["first", "second"]
