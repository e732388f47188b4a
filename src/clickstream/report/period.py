"""The period a report covers, and the equally long one before it that it is compared with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from clickstream.errors import ConfigError, LakeError

#: Without --from, a report covers this many days ending on the last day with data.
DEFAULT_DAYS = 30
#: Periods this short are charted per hour instead of per day.
HOURLY_UP_TO_DAYS = 3


@dataclass(frozen=True)
class Period:
    """UTC calendar days, both ends included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period | None:
        """The period of equal length that ends the day before this one starts.

        None when it would start before 0001-01-01 (the first day a date can hold): such a
        report has nothing to compare with, and its changes show as "—".
        """
        if (self.start - date.min).days < self.days:
            return None
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def within(self, first: date | None, last: date | None) -> Period | None:
        """The days of this period between ``first`` and ``last`` (None when they do not meet)."""
        if first is None or last is None:
            return None
        start, end = max(self.start, first), min(self.end, last)
        return Period(start, end) if start <= end else None

    @property
    def hourly(self) -> bool:
        return self.days <= HOURLY_UP_TO_DAYS

    def __str__(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def parse_day(value: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option value, or None when it was not given."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: '{value}' is not a date (use YYYY-MM-DD)") from None


def choose_period(
    first: date | None,
    last: date | None,
    data_first: date | None,
    data_last: date | None,
    host: str | None = None,
) -> Period:
    """The period asked for; a missing end is filled from the data (the last 30 days with data).

    ``data_first``/``data_last`` are the lake's first and last days with page views (for the host
    asked for), None when it has none.
    """
    on_host = f" on {host}" if host else ""
    if data_first is None or data_last is None:
        raise LakeError(f"the lake holds no page views{on_host} to report on")
    if first is not None and last is not None and first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    if last is None:
        if first is not None and first > data_last:
            raise LakeError(
                f"--from {first} is after the last day with page views{on_host} ({data_last}); "
                f"the lake has page views{on_host} from {data_first} to {data_last}"
            )
        last = data_last if first is None else max(first, data_last)
    if first is None:
        # Near 0001-01-01 the default period is shorter rather than starting before year 1.
        first = last - timedelta(days=min(DEFAULT_DAYS - 1, (last - date.min).days))
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    if last < data_first or first > data_last:
        raise LakeError(
            f"no page views{on_host} between {first} and {last}; "
            f"the lake has page views{on_host} from {data_first} to {data_last}"
        )
    return Period(first, last)
