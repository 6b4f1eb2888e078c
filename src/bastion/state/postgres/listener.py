"""LISTEN/NOTIFY for one process: a thread holding one connection, calling back per channel.

Stores subscribe to a channel with two callbacks: `on_notify(payload)` for each
notification, and `on_reset()` whenever notifications may have been missed (the
connection was (re)established). Callbacks run on the listener thread: they must be quick
and must not block (set a flag, wake a loop with `call_soon_threadsafe`).

While the connection is down `healthy` is False; stores then treat what they cached as
stale. The thread reconnects with backoff until `close()`.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
KEEPALIVE_S = 5.0
"""Idle seconds after which the connection is checked with a query (finds a silently dead peer)."""
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True, eq=False)
class Subscription:
    """One subscriber of one channel; `NotificationListener.unsubscribe` takes it back."""

    channel: str
    on_notify: Callable[[str], None]
    on_reset: Callable[[], None]


class NotificationListener:
    """One LISTEN connection on a daemon thread, shared by every store of a process."""

    def __init__(self, url: str, *, description: str) -> None:
        self._url = url
        self._description = description
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._listening: set[str] = set()
        self._changed = threading.Condition(self._lock)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop = threading.Event()
        self._healthy = False
        self._thread: threading.Thread | None = None
        self.backend_pid: int | None = None
        """The server process of the current LISTEN connection (None while there is none)."""

    @property
    def healthy(self) -> bool:
        """Whether the connection is up, so a notification sent now will be received."""
        return self._healthy

    def subscribe(
        self,
        channel: str,
        on_notify: Callable[[str], None],
        on_reset: Callable[[], None],
        *,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> Subscription:
        """Call `on_notify(payload)` for each notification on `channel` from now on.

        Returns once the channel is listened to (or after `timeout` if the database cannot be
        reached; `healthy` then stays False and the thread keeps trying).
        """
        subscription = Subscription(channel, on_notify, on_reset)
        with self._lock:
            self._subscriptions.append(subscription)
            if self._thread is None and not self._stop.is_set():
                # Started under the lock, so `close` never sees a thread that is not running yet.
                self._thread = threading.Thread(target=self._run, name="bastion-pg-listen", daemon=True)
                self._thread.start()
        self._wake()
        with self._changed:
            self._changed.wait_for(lambda: channel in self._listening or self._stop.is_set(), timeout)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def close(self) -> None:
        """Stop the thread and close the connection."""
        with self._lock:  # a `subscribe` starting the thread has finished starting it
            self._stop.set()
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout=CONNECT_TIMEOUT_S + 1)
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed, or the buffer is full of wake-ups already
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="bastion-listener"
                ) as conn:
                    backoff = 0.1
                    self.backend_pid = conn.info.backend_pid
                    self._serve(conn)
            except (psycopg.Error, OSError) as exc:
                if not self._stop.is_set():
                    logger.warning("lost the notification connection to %s: %s; reconnecting", self._description, exc)
            except Exception:
                # Never die with `healthy` still True: the stores would trust stale copies.
                logger.exception("the notification listener on %s failed; reconnecting", self._description)
            with self._changed:
                self._healthy = False
                self.backend_pid = None
                self._listening.clear()
                self._changed.notify_all()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        # Notifications that arrive while a query runs (the keepalive) reach this handler;
        # those that arrive while idle are read below, straight from libpq.
        conn.add_notify_handler(lambda note: self._dispatch(note.channel, note.payload))
        fresh = True
        while not self._stop.is_set():
            self._listen_to_new_channels(conn, reset_all=fresh)
            fresh = False
            socket_fd, wake_fd = conn.fileno(), self._wake_r.fileno()
            ready, _, _ = select.select([socket_fd, wake_fd], [], [], KEEPALIVE_S)
            if wake_fd in ready:
                self._drain_wakeups()
            if socket_fd in ready:
                conn.pgconn.consume_input()
            elif not ready:
                conn.execute("SELECT 1")
            while (note := conn.pgconn.notifies()) is not None:
                self._dispatch(note.relname.decode(), note.extra.decode())

    def _listen_to_new_channels(self, conn: psycopg.Connection[Any], *, reset_all: bool) -> None:
        with self._lock:
            wanted = {s.channel for s in self._subscriptions}
            new = wanted - self._listening
        for channel in sorted(new):
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        with self._changed:
            self._listening |= new
            self._healthy = True
            self._changed.notify_all()
            subscribers = list(self._subscriptions)
        if reset_all:
            # Anything sent while there was no connection was missed: every subscriber re-reads.
            for subscription in subscribers:
                self._call(subscription.on_reset)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _dispatch(self, channel: str, payload: str) -> None:
        with self._lock:
            subscribers = [s for s in self._subscriptions if s.channel == channel]
        for subscription in subscribers:
            self._call(subscription.on_notify, payload)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("a notification callback failed")
