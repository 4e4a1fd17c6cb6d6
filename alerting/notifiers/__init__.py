"""Notifiers: deliver alert transitions to Alertmanager, PagerDuty, Slack or any webhook.

Built from a :class:`NotificationConfig` by :func:`build_notifiers`, all sharing one
``httpx.AsyncClient``; the outbox (``alerting.outbox``) calls them and does the retrying.
"""

from alerting.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from alerting.notifiers.base import HttpNotifier, Notifier, NotifierError
from alerting.notifiers.pagerduty import PagerDutyConfig, PagerDutyNotifier
from alerting.notifiers.routing import (
    NotificationConfig,
    Route,
    Router,
    build_notifier,
    build_notifiers,
)
from alerting.notifiers.slack import SlackConfig, SlackNotifier
from alerting.notifiers.webhook import WebhookConfig, WebhookNotifier, verify_signature

__all__ = [
    "AlertmanagerConfig",
    "AlertmanagerNotifier",
    "HttpNotifier",
    "NotificationConfig",
    "Notifier",
    "NotifierError",
    "PagerDutyConfig",
    "PagerDutyNotifier",
    "Route",
    "Router",
    "SlackConfig",
    "SlackNotifier",
    "WebhookConfig",
    "WebhookNotifier",
    "build_notifier",
    "build_notifiers",
    "verify_signature",
]
