"""Notifiers: deliver alert transitions to Alertmanager, PagerDuty, Slack or any webhook.

One module per notifier, registered in :mod:`alerting.notifiers.registry`; built from a
:class:`NotificationConfig` by :func:`build_notifiers`, all sharing one
``httpx.AsyncClient``; the outbox (``alerting.outbox``) calls them and does the retrying.
A plugin's own classes are imported from its module (``alerting.notifiers.slack``).
"""

from alerting.notifiers.base import HttpNotifier, Notifier, NotifierError
from alerting.notifiers.registry import build_notifier
from alerting.notifiers.routing import NotificationConfig, Route, Router, build_notifiers
from alerting.notifiers.webhook import verify_signature

__all__ = [
    "HttpNotifier",
    "NotificationConfig",
    "Notifier",
    "NotifierError",
    "Route",
    "Router",
    "build_notifier",
    "build_notifiers",
    "verify_signature",
]
