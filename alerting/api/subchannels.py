"""The sub-channels of ``variant: all`` channels that alerting has heard from.

A ``variant: all`` channel publishes each variant as ``<id>@<label>`` (``news@720p``); the
configuration names only the parent. The API lists a sub-channel once alerting's state holds
something of it: a health record (its segments, detections and stream events write one) or an
open alert. They are listed under their parent, largest picture first::

    seen = await seen_channel_ids(store, active)
    sub_channel_ids(parent, seen)           # ["news@1080p", "news@720p", "news@128k"]
"""

from __future__ import annotations

import re

from alerting.models import Alert
from alerting.store import AlertStore
from monitor.core.channels import ChannelConfig, parent_channel_id

_LEADING_NUMBER = re.compile(r"\d+")


async def seen_channel_ids(store: AlertStore, active: list[Alert]) -> set[str]:
    """Every channel id alerting's state knows of (configured or not)."""
    return set(await store.channel_ids()) | {alert.channel_id for alert in active}


def sub_channel_ids(parent: ChannelConfig, seen: set[str]) -> list[str]:
    """The sub-channels of ``parent`` among ``seen``; none unless it follows every variant."""
    if parent.variant != "all":
        return []
    mine = [c for c in seen if parent_channel_id(c) == parent.id]
    return sorted(mine, key=lambda c: _label_order(c[len(parent.id) + 1 :]))


def _label_order(label: str) -> tuple[int, int, str]:
    """Heights (``720p``) before bandwidths (``128k``) before positions, larger first."""
    number = _LEADING_NUMBER.match(label)
    value = int(number.group()) if number else 0
    kind = 0 if re.fullmatch(r"\d+p(-\d+k)?", label) else 1 if label.endswith("k") else 2
    return kind, -value, label
