"""Date awareness: the time phrase of a record question resolved into a window relative to a stated "now".

``resolve_window("latest HbA1c since March 2022", now=date(2024, 5, 1))`` gives ``DateWindow(start=2022-03-01,
end=2024-05-01, latest=True, phrase="since march 2022")``. The window is used twice: as FHIR ``ge``/``le`` search
parameters, so the fetch only returns what the question is about, and as a sentence in the model's prompt, so the
model never has to do calendar arithmetic (small models cannot, and Google's EHR navigator did not try).

Rules, in the order they are tried (the first that matches sets the bounds; "latest" is detected separately):
- ``between X and Y`` / ``from X to Y``; ``since X`` / ``after X`` / ``from X``; ``before X`` / ``until X``;
- ``in the last|past N days|weeks|months|years`` (also ``last N months``, ``past year``): a rolling window;
- ``last year|month`` (no "the" before it): the previous calendar period; ``this year|month``: to now;
- ``in|during X`` / ``on X``: that year, month or day; ``today``, ``yesterday``; a bare ISO date: that day.
X is a year (2021), a month and year (March 2022, 2022-03) or an ISO date (2022-03-15). Every window ends at
``now`` at the latest: the record is read as of the stated day. Pure functions; nothing raises on odd text.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DateWindow", "describe_window", "resolve_window"]

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH_WORDS = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty": 20, "thirty": 30,
}  # fmt: skip
_COUNT = r"(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
_UNIT = r"(day|week|month|year)s?"

# A point in time: ISO date, year-month, "March 2022" / "Mar. 2022", or a year (1900-2099).
_POINT = rf"(\d{{4}}-\d{{2}}-\d{{2}}|\d{{4}}-\d{{2}}|(?:{_MONTH_WORDS})\.?\s+(?:of\s+)?\d{{4}}|(?:19|20)\d{{2}})"
_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_POINT}\s+(?:and|to|until|through|-)\s+{_POINT}")
_SINCE = re.compile(rf"\b(since|after|from|starting)\s+{_POINT}")
_BEFORE = re.compile(rf"\b(before|until|prior to|up to)\s+{_POINT}")
_ROLLING = re.compile(rf"\b(?:(?:in|over|during|within)\s+)?(?:the\s+)?(?:last|past|previous)\s+{_COUNT}\s+{_UNIT}\b")
_ROLLING_ONE = re.compile(
    r"\b(?:(?:in|over|during|within)\s+the\s+|the\s+)(?:last|past|previous)\s+(day|week|month|year)\b"
    r"|\bpast\s+(day|week|month|year)\b"
)
_CALENDAR = re.compile(r"\b(last|this|previous)\s+(year|month)\b")
_IN = re.compile(rf"\b(?:in|during|on|for)\s+{_POINT}")
_ISO_DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_RELATIVE_DAY = re.compile(r"\b(today|yesterday)\b")
# "last" that is not followed by a time unit ("last HbA1c", "last visit") asks for the latest entry.
_LATEST = re.compile(
    r"\b(latest|most recent|newest|recent|last(?!\s+(?:\d+|" + "|".join(_NUMBER_WORDS) + r")\s+" + _UNIT + r")"
    r"(?!\s+(?:day|week|month|year)s?\b))\b"
)


class DateWindow(BaseModel):
    """Which dates a question is about: ``start``..``end`` inclusive (None: open), and whether it wants the latest.

    ``phrase`` is the text the bounds came from (None when the question names no period).
    """

    model_config = ConfigDict(frozen=True)

    start: date | None = Field(default=None, description="First day included, or None for no lower bound.")
    end: date | None = Field(default=None, description="Last day included, or None for no upper bound.")
    latest: bool = Field(default=False, description="The question asks for the most recent entries.")
    phrase: str | None = Field(default=None, description="The words of the question the bounds were read from.")

    @property
    def bounded(self) -> bool:
        """True when the window narrows the record (a start, or an end before the stated now)."""
        return self.phrase is not None

    @property
    def empty(self) -> bool:
        """True when the window holds no day at all (a period that lies after the stated now)."""
        return self.start is not None and self.end is not None and self.start > self.end


def _today(now: date | datetime | None) -> date:
    if now is None:
        return date.today()
    return now.date() if isinstance(now, datetime) else now


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _point(text: str) -> tuple[date, date] | None:
    """The first and last day a point expression covers, or None when it is not a real date."""
    text = text.strip().lower().rstrip(".")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return day, day
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = int(text[:4]), int(text[5:])
            return date(year, month, 1), _month_end(year, month)
        if re.fullmatch(r"\d{4}", text):
            return date(int(text), 1, 1), date(int(text), 12, 31)
        words = re.split(r"[\s.]+(?:of\s+)?", text)
        month, year = _MONTHS[words[0]], int(words[-1])
        return date(year, month, 1), _month_end(year, month)
    except (ValueError, KeyError, IndexError):
        return None


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _rolling(today: date, count: int, unit: str) -> date:
    if unit == "day":
        return today - timedelta(days=count)
    if unit == "week":
        return today - timedelta(weeks=count)
    return _shift_months(today, -count * (12 if unit == "year" else 1))


def _bounds(text: str, today: date) -> tuple[date | None, date | None, str] | None:
    """(start, end, phrase) from the first rule that matches ``text`` (lower case), or None."""
    if m := _BETWEEN.search(text):
        first, last = _point(m.group(1)), _point(m.group(2))
        if first and last:
            return first[0], last[1], m.group(0)
    if (m := _SINCE.search(text)) and (point := _point(m.group(2))):
        # "after 2020" excludes 2020 itself; "since 2020" and "from 2020" include it.
        start = point[1] + timedelta(days=1) if m.group(1) == "after" else point[0]
        return start, today, m.group(0)
    if (m := _BEFORE.search(text)) and (point := _point(m.group(2))):
        end = point[1] if m.group(1) in ("until", "up to") else point[0] - timedelta(days=1)
        return None, end, m.group(0)
    if m := _ROLLING.search(text):
        return _rolling(today, _count(m.group(1)), m.group(2)), today, m.group(0)
    if m := _ROLLING_ONE.search(text):
        return _rolling(today, 1, m.group(1) or m.group(2)), today, m.group(0)
    if m := _CALENDAR.search(text):
        which, unit = m.groups()
        if unit == "year":
            year = today.year - (which != "this")
            return date(year, 1, 1), date(year, 12, 31) if which != "this" else today, m.group(0)
        first = today.replace(day=1) if which == "this" else _shift_months(today.replace(day=1), -1)
        return first, today if which == "this" else _month_end(first.year, first.month), m.group(0)
    if (m := _IN.search(text)) and (point := _point(m.group(1))):
        return point[0], point[1], m.group(0)
    if m := _RELATIVE_DAY.search(text):
        day = today if m.group(1) == "today" else today - timedelta(days=1)
        return day, day, m.group(0)
    if (m := _ISO_DAY.search(text)) and (point := _point(m.group(1))):
        return point[0], point[1], m.group(0)
    return None


def resolve_window(question: str, now: date | datetime | None = None) -> DateWindow:
    """The date window ``question`` asks about, relative to ``now`` (default: today); see the module docstring.

    Without a time phrase the window is everything up to ``now``. An end after ``now`` is cut to ``now``.
    """
    today = _today(now)
    text = " ".join(question.lower().split())
    found = _bounds(text, today)
    latest = _LATEST.search(text) is not None
    if found is None:
        return DateWindow(start=None, end=today, latest=latest, phrase=None)
    start, end, phrase = found
    end = today if end is None or end > today else end
    return DateWindow(start=start, end=end, latest=latest, phrase=phrase.strip())


def describe_window(window: DateWindow, now: date | datetime | None = None) -> str:
    """One sentence for the model: what "now" is and which dates the question covers."""
    today = _today(now)
    if window.empty:
        span = f"the question's period ({window.phrase}) lies after today, so no record can fall in it"
    elif window.start is not None:
        span = f"the question covers {window.start.isoformat()} to {(window.end or today).isoformat()}"
    elif window.phrase is not None and window.end is not None:
        span = f"the question covers everything up to {window.end.isoformat()}"
    else:
        span = "the question names no period: the whole record up to today counts"
    wanted = "; it asks for the most recent entries" if window.latest else ""
    said = f' (from "{window.phrase}")' if window.phrase and not window.empty else ""
    return f"Today is {today.isoformat()}; {span}{said}{wanted}."
