"""The dashboard's period: today, the last 7 or 30 days, all time, or custom dates, from the query string; and the
time buckets a chart of that period is drawn in. Days are UTC days, as in the metrics views."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

CHOICES = {"today": "Today", "7d": "7 days", "30d": "30 days", "all": "All"}
DEFAULT = "30d"
MAX_DAYS = 20 * 366  # a custom period longer than this is refused (twenty years)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A period the query string asks for that cannot be shown; the message says what to fix."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Period:
    name: str                 # today, 7d, 30d, all, custom
    start: date | None        # first UTC day included (None: from the first data)
    end: date | None          # first UTC day after it (None: up to today)

    @property
    def label(self) -> str:
        if self.name == "custom":
            last = self.end - timedelta(days=1)
            return f"{self.start.isoformat()} to {last.isoformat()}" if last != self.start else self.start.isoformat()
        return CHOICES[self.name].lower() if self.name != "all" else "all time"

    def query(self) -> dict[str, str]:
        """The query parameters that select this period again."""
        if self.name == "custom":
            return {"period": "custom", "from": self.start.isoformat(),
                    "to": (self.end - timedelta(days=1)).isoformat()}
        return {"period": self.name}

    def holds_day(self, day: str) -> bool:
        """Whether a UTC day (YYYY-MM-DD, or an ISO instant whose date part is read) lies in the period."""
        d = date.fromisoformat(day[:10])
        return (self.start is None or d >= self.start) and (self.end is None or d < self.end)

    def holds_instant(self, at: str) -> bool:
        t = instant(at)
        return ((self.start is None or t >= _midnight(self.start)) and (self.end is None or t < _midnight(self.end)))


def parse(params: dict[str, str], today: date | None = None) -> Period:
    """The period of ?period=today|7d|30d|all|custom&from=YYYY-MM-DD&to=YYYY-MM-DD (to inclusive). Without period,
    from and to mean custom; with another period they are ignored (the form sends them empty anyway)."""
    today = today or datetime.now(timezone.utc).date()
    name = (params.get("period") or "").strip()
    start, stop = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if not name:
        name = "custom" if start or stop else DEFAULT
    if name == "today":
        return Period(name, today, today + timedelta(days=1))
    if name in ("7d", "30d"):
        days = int(name[:-1])
        return Period(name, today - timedelta(days=days - 1), today + timedelta(days=1))
    if name == "all":
        return Period(name, None, None)
    if name != "custom":
        raise PeriodError(f"Unknown period '{name[:40]}': choose today, 7d, 30d, all or custom.", "period")
    first = _date(start, "from")
    last = _date(stop, "to")
    if last < first:
        raise PeriodError(f"The period ends ({last.isoformat()}) before it starts ({first.isoformat()}).", "to")
    if (last - first).days >= MAX_DAYS:
        raise PeriodError("A custom period may span twenty years at most.", "from")
    if last == date.max:  # the day after it is not a date
        raise PeriodError("The period must end before 9999-12-31.", "to")
    return Period("custom", first, last + timedelta(days=1))


def _date(value: str, field: str) -> date:
    if not value:
        raise PeriodError(f"A custom period needs a '{field}' date (YYYY-MM-DD).", field)
    if not _DATE.fullmatch(value):
        raise PeriodError(f"'{value[:40]}' is not a date: '{field}' must be written YYYY-MM-DD.", field)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"'{value}' is not a day of the calendar ('{field}').", field) from None


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def instant(at: str) -> datetime:
    """An ISO instant as the metrics views write it (UTC when it names no offset)."""
    t = datetime.fromisoformat(at)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Span:
    """The buckets a period's chart is drawn in: hours for a day or two, days up to three months, weeks (starting on
    Monday) up to two years, months beyond."""
    granularity: str          # hour, day, week, month
    starts: list[datetime]    # each bucket's start (UTC)

    def bucket_of(self, at: datetime) -> datetime:
        if self.granularity == "hour":
            return at.replace(minute=0, second=0, microsecond=0)
        day = _midnight(at.date())
        if self.granularity == "day":
            return day
        if self.granularity == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)


def span(period: Period, first_day: date | None, today: date | None = None) -> Span | None:
    """The buckets from the period's start (or the first day with data) to its end (or today); None when the period
    is all time and there is no data."""
    today = today or datetime.now(timezone.utc).date()
    start = period.start or first_day
    if start is None:
        return None
    end = period.end or max(today, start) + timedelta(days=1)
    days = (end - start).days
    granularity = "hour" if days <= 2 else "day" if days <= 92 else "week" if days <= 731 else "month"
    s = Span(granularity, [])
    t, stop = s.bucket_of(_midnight(start)), _midnight(end)
    while t < stop:
        s.starts.append(t)
        t = _next(t, granularity)
    return s


def _next(t: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return t + timedelta(hours=1)
    if granularity == "day":
        return t + timedelta(days=1)
    if granularity == "week":
        return t + timedelta(days=7)
    return (t.replace(day=28) + timedelta(days=4)).replace(day=1)
