"""The latest alerts, kept in memory for the dashboard's overview."""

from __future__ import annotations

import collections
import threading

from bastion.alerts.model import Alert, AlertEmitter

DEFAULT_KEEP = 100


class RecentAlerts:
    """An `AlertEmitter` that remembers the last `keep` alerts raised, then forwards each one.

    Every alert is kept, whether or not a webhook wants it: the dashboard shows what happened.
    """

    def __init__(self, forward: AlertEmitter | None = None, keep: int = DEFAULT_KEEP) -> None:
        self.forward = forward
        self._alerts: collections.deque[Alert] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def emit(self, alert: Alert) -> None:
        with self._lock:
            self._alerts.append(alert)
        if self.forward is not None:
            self.forward.emit(alert)

    def latest(self, count: int = 10) -> list[Alert]:
        """The newest `count` alerts, newest first."""
        with self._lock:
            return list(reversed(self._alerts))[:count]
