"""Alert delivery off the data path: a bounded queue, one background task, retries, coalescing.

`emit` only puts the alert on a queue (a full queue drops it and counts the drop), so the
call that raised it never waits for a webhook. The background task (`run`) sends the first
of a run of identical alerts at once; identical ones within `coalesce_window` seconds are
counted and sent as one alert with `count` when the window closes. Each delivery is retried
with exponential backoff; a delivery that fails every attempt is reported on the event bus
(`alert.failed`, the webhook's origin only) and told to `events` (a log line, with the URL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bastion.alerts.config import AlertsConfig, WebhookConfig
from bastion.alerts.model import Alert, AlertDeliveryFailed, EventLog
from bastion.alerts.webhook import request_parts
from bastion.audit.bus import EventSink
from bastion.audit.events import AlertFailed

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)

MAX_CONCURRENT_DELIVERIES = 16


@dataclass
class _Window:
    alert: Alert
    repeats: int = 0


class AlertDispatcher:
    """Sends alerts to the configured webhooks. Run `run()` as a background task."""

    def __init__(self, config: AlertsConfig, events: EventLog, bus: EventSink | None = None) -> None:
        self.config = config
        self.events = events
        self.bus = bus
        self.dropped = 0
        self.failed = 0
        self.delivered = 0
        send: MemoryObjectSendStream[Alert]
        receive: MemoryObjectReceiveStream[Alert]
        send, receive = anyio.create_memory_object_stream[Alert](config.queue_size)
        self._send = send
        self._receive = receive
        self._windows: dict[str, _Window] = {}
        self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT_DELIVERIES)

    def emit(self, alert: Alert) -> None:
        """Queue `alert` for the webhooks that want it. Never blocks, never raises."""
        try:
            if not any(hook.wants(alert.kind, alert.level) for hook in self.config.webhooks):
                return
            self._send.send_nowait(alert)
        except anyio.WouldBlock:
            self.dropped += 1
            logger.warning("alert queue full: dropped %s alert (%d dropped so far)", alert.kind.value, self.dropped)
        except Exception:
            logger.exception("could not queue a %s alert", alert.kind.value)

    async def run(self) -> None:
        """Deliver queued alerts until cancelled."""
        if not self.config.webhooks:
            # Nothing is ever queued (`emit`): no HTTP client (its TLS setup is a cost every
            # `bastion wrap` would pay before answering `initialize`).
            await anyio.sleep_forever()
        import httpx2  # loaded by the first configured webhook's dispatcher, not by every gateway

        async with httpx2.AsyncClient(timeout=self.config.timeout) as http, anyio.create_task_group() as tg:
            async for alert in self._receive:
                key = alert.coalesce_key
                window = self._windows.get(key)
                if window is not None:
                    window.repeats += 1
                    continue
                self._deliver(tg, http, alert, 1)
                if self.config.coalesce_window > 0:
                    self._windows[key] = _Window(alert)
                    tg.start_soon(self._close_window, tg, http, key)

    async def _close_window(self, tg: TaskGroup, http: httpx2.AsyncClient, key: str) -> None:
        await anyio.sleep(self.config.coalesce_window)
        window = self._windows.pop(key)
        if window.repeats:
            self._deliver(tg, http, window.alert, window.repeats)

    def _deliver(self, tg: TaskGroup, http: httpx2.AsyncClient, alert: Alert, count: int) -> None:
        for hook in self.config.webhooks:
            if hook.wants(alert.kind, alert.level):
                tg.start_soon(self._post, http, hook, alert, count)

    async def _post(self, http: httpx2.AsyncClient, hook: WebhookConfig, alert: Alert, count: int) -> None:
        body, headers = request_parts(hook, alert, count)
        error = ""
        async with self._limiter:
            for attempt in range(1, self.config.max_attempts + 1):
                try:
                    response = await http.post(hook.url, content=body, headers=headers)
                    if 200 <= response.status_code < 300:
                        self.delivered += 1
                        return
                    error = f"HTTP {response.status_code}"
                except Exception as exc:  # any failure is a failed attempt; it must not end the dispatcher
                    error = f"{type(exc).__name__}: {exc}"
                if attempt < self.config.max_attempts:
                    delay = min(self.config.backoff * 2 ** (attempt - 1), self.config.max_backoff)
                    logger.info("alert to %s failed (%s); retry %d in %g s", hook.url, error, attempt, delay)
                    await anyio.sleep(delay)
        self.failed += 1
        logger.error("alert %s to %s failed after %d attempts: %s", alert.kind.value, hook.url, attempt, error)
        self.report_undelivered(hook.url, alert.kind.value, attempt, error)

    def report_undelivered(self, url: str, kind: str, attempts: int, error: str) -> None:
        """`alert.failed` on the bus (the webhook's origin only), and the failure, URL and all, to `events`."""
        if self.bus is not None:
            self.bus.emit(AlertFailed(kind=kind, webhook=_origin(url), attempts=attempts, error=error))
        self.events.record(AlertDeliveryFailed(url, kind, attempts, error))


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a webhook URL: its path and query may hold a secret (Slack's do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
