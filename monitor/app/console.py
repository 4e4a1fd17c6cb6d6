"""What people read on a terminal: alert lines and the scan table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from collections import Counter

from alerting.models import AlertEvent, AlertTransition
from monitor.app.scan import Defect, FailOn, ScanReport

CSV_COLUMNS = ("detector", "label", "start", "end", "confidence", "offset_ms")

_VERB = {
    AlertTransition.OPENED: "OPEN    ",
    AlertTransition.UPDATED: "UPDATE  ",
    AlertTransition.RESOLVED: "RESOLVED",
}


def format_alert(event: AlertEvent) -> str:
    a = event.alert
    when = dt.datetime.fromtimestamp(
        a.resolved_at
        if event.transition is AlertTransition.RESOLVED and a.resolved_at
        else a.updated_at
    ).strftime("%H:%M:%S")
    what = a.detector + (f"/{a.label}" if a.label else "")
    # A stream alert (the origin, not the media) is timed by the wall clock already shown.
    span = "" if a.detector == "stream" else f"media {a.start:8.2f}s - {a.end:8.2f}s"
    return f"{when} {_VERB[event.transition]} {a.channel_id:<12} {what:<22} {span}  [{a.severity}]"


async def print_alert(event: AlertEvent) -> None:
    """Alert listener for `vqm demo` and `vqm run`: one line per open and resolve."""
    if event.transition is AlertTransition.UPDATED:
        return
    print(format_alert(event), file=sys.stdout, flush=True)


def defects_table(defects: list[Defect]) -> str:
    if not defects:
        return "no defects found"
    header = (
        f"{'detector':<16} {'label':<11} {'start':>9} {'end':>9} {'confidence':>10} {'offset':>8}"
    )
    rows = [header, "-" * len(header)]
    for d in defects:
        offset = f"{d.offset_ms:+.0f}ms" if d.offset_ms is not None else ""
        rows.append(
            f"{d.detector:<16} {d.label or '':<11} {d.start:9.2f} {d.end:9.2f} "
            f"{d.confidence:10.2f} {offset:>8}"
        )
    return "\n".join(rows)


def defects_csv(defects: list[Defect]) -> str:
    """A header and one row per defect (empty cells for a missing label or offset)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for defect in defects:
        writer.writerow(defect.model_dump(exclude={"levels"}))
    return out.getvalue()


def scan_summary_json(
    report: ScanReport, source: str, gate: FailOn | None, failing: list[Defect]
) -> str:
    """One JSON object: what was read, every defect with its severity, counts per detector,
    and whether ``--fail-on`` failed the scan (the exit code it sets)."""
    severity = gate.severity_of if gate is not None else None
    defects = [
        {**d.model_dump(exclude_none=True), **({"severity": severity(d)} if severity else {})}
        for d in report.defects
    ]
    summary = {
        "source": source,
        "media_seconds": report.media_seconds,
        "defects": defects,
        "counts": dict(Counter(d.detector for d in report.defects)),
        "measured": [d.model_dump(exclude_none=True) for d in report.measured],
        "fail_on": gate.value if gate is not None else None,
        "failing": len(failing),
        "exit_code": 1 if failing else 0,
    }
    return json.dumps(summary)
