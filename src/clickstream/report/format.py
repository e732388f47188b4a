"""Numbers for people: thousands separators, percentages, durations and changes.

>>> count(1234567), percent(0.1234), duration(3725.4), change(0.052), change(-0.013, points=True)
('1,234,567', '12.3%', '1h 02m', '+5.2%', '−1.3 pp')
"""

from __future__ import annotations

from datetime import UTC, datetime

#: Shown where a number does not exist (no previous data, a division by zero).
NONE = "—"
MINUS = "\u2212"


def count(value: float | int | None) -> str:
    return NONE if value is None else f"{round(value):,}"


def decimal(value: float | None, places: int = 2) -> str:
    return NONE if value is None else f"{value:,.{places}f}"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """12s, 4m 05s, 1h 02m, 3d 04h."""
    if seconds is None:
        return NONE
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def change(value: float | None, points: bool = False) -> str:
    """A relative change (0.05 = +5%), or a difference of two rates in percentage points."""
    if value is None:
        return NONE
    scaled = value * 100
    if round(scaled, 1) == 0:
        return "0.0 pp" if points else "0.0%"
    sign = "+" if scaled > 0 else MINUS
    return f"{sign}{abs(scaled):.1f}{' pp' if points else '%'}"


def size(nbytes: int) -> str:
    if nbytes < 1024:
        return f"{nbytes} B"
    if nbytes < 1024 * 1024:
        return f"{nbytes / 1024:.1f} KB"
    return f"{nbytes / 1024 / 1024:.1f} MB"


def timestamp(value: datetime | str | None) -> str:
    """UTC, to the second, as '2024-12-31 23:59:59 UTC'."""
    if value is None or value == "":
        return NONE
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, in the largest sensible unit ('3 days ago')."""
    if then is None:
        return NONE
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= length:
            n = int(seconds // length)
            return f"{n:,} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
