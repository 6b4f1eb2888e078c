"""Alerts: events someone should hear about, delivered to webhooks off the data path."""

from bastion.alerts.model import Alert, AlertEmitter, AlertKind, Severity

__all__ = ["Alert", "AlertEmitter", "AlertKind", "Severity"]
