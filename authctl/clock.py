"""Time stamps for the database and time spans for people; no I/O, no imports from authctl."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def utcnow() -> str:
    """Now as the ISO-8601 UTC stamp the database stores (``2026-01-31T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_utc(timestamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    except (OverflowError, OSError, ValueError):
        return "beyond the calendar"


def format_span(seconds: float) -> str:
    """A rough human span: 45 s, 12 min, 3 h, 9 d, 2 y."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    if seconds < 730 * 86400:
        return f"{round(seconds / 86400)} d"
    years = seconds / (365.25 * 86400)
    return f"{round(years)} y" if years < 1e6 else "more than a million years"


def relative(timestamp: float, now: float, future: str = "in {}", past: str = "{} ago", present: str = "just now") -> str:
    """'in 12 min' / '3 h ago' (or the caller's phrasing: 'expires in {}', 'expired {} ago')."""
    delta = timestamp - now
    if abs(delta) < 2:
        return present
    return (future if delta > 0 else past).format(format_span(delta))
