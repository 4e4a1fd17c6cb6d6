"""Words every notifier puts in a page, so Slack, Teams, PagerDuty and the rest say the same.

what(alert)       # 'audio_artifact (hum)'
headline(alert)   # the alert's summary, or 'black on news' when it has none
clock(epoch)      # '12:00:00 UTC'
lasted(alert)     # '1m 20s', from opening to resolve
facts(alert, resolved)  # [('Severity', 'critical'), ('Since', '12:00:00 UTC'), ...]
"""

from __future__ import annotations

import datetime as dt

from alerting.models import Alert


def what(alert: Alert) -> str:
    """The detector, and the label when it has one (the audio artifact's kind)."""
    return alert.detector + (f" ({alert.label})" if alert.label else "")


def headline(alert: Alert) -> str:
    """One line a person reads first; the engine's summary names the channel's display name."""
    return alert.summary or f"{what(alert)} on {alert.channel_id}"


def clock(epoch_seconds: float) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC).strftime("%H:%M:%S UTC")


def lasted(alert: Alert) -> str:
    """How long the alert was open: ``45s``, ``1m 20s``, ``2h 05m``."""
    seconds = max(0, round((alert.resolved_at or alert.updated_at) - alert.opened_at))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def facts(alert: Alert, resolved: bool) -> list[tuple[str, str]]:
    """What on-call asks first, as (name, value): severity, since when, and how sure (while
    open) or how long it lasted (once resolved); the audio offset of a sync alert."""
    out = [("Severity", alert.severity), ("Since", clock(alert.opened_at))]
    if resolved:
        out.append(("Lasted", lasted(alert)))
    else:
        out.append(("Confidence", f"{alert.confidence:.2f}"))
    if alert.offset_ms is not None:
        out.append(("Audio offset", f"{alert.offset_ms:+.0f} ms"))
    return out


def tags(alert: Alert, extra: list[str]) -> list[str]:
    """Tags a receiver can filter on (Opsgenie, Grafana), then ``extra``, each once."""
    out = ["vqm", f"channel:{alert.channel_id}", f"detector:{alert.detector}"]
    out.append(f"severity:{alert.severity}")
    if alert.label:
        out.append(f"label:{alert.label}")
    return list(dict.fromkeys([*out, *extra]))
