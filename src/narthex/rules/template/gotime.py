"""Go's ``time.Time`` (UTC only) and ``time.Duration`` as template values, with their common methods."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from narthex.util.gofmt import go_duration

NANOS_PER_SECOND = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class GoDuration:
    """A ``time.Duration``: a signed count of nanoseconds."""

    go_type = "*time.Duration"
    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoDuration) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(self.ns)

    def String(self) -> str:
        """Go's Duration.String, e.g. ``1h2m0.5s``, ``1.5ms``, ``0s``."""
        return go_duration(self.ns)

    def Seconds(self) -> float:
        return self.ns / NANOS_PER_SECOND

    def Minutes(self) -> float:
        return self.ns / (60 * NANOS_PER_SECOND)

    def Hours(self) -> float:
        return self.ns / (3600 * NANOS_PER_SECOND)

    def Milliseconds(self) -> int:
        return int(self.ns / 1_000_000)

    def Microseconds(self) -> int:
        return int(self.ns / 1_000)

    def Nanoseconds(self) -> int:
        return self.ns

    def Abs(self) -> GoDuration:
        return GoDuration(abs(self.ns))

    def Truncate(self, m: GoDuration) -> GoDuration:
        if m.ns <= 0:
            return self
        return GoDuration(self.ns - int(_remainder(self.ns, m.ns)))

    def Round(self, m: GoDuration) -> GoDuration:
        if m.ns <= 0:
            return self
        r = _remainder(self.ns, m.ns)
        if self.ns < 0:
            r = -r
            return GoDuration(self.ns + r if r + r < m.ns else self.ns + r - m.ns)
        return GoDuration(self.ns - r if r + r < m.ns else self.ns + m.ns - r)


def _remainder(a: int, b: int) -> int:
    """Go's ``%`` (sign of the dividend)."""
    r = abs(a) % b
    return -r if a < 0 else r


class GoMonth(int):
    """``time.Month``: an int that prints as the month name."""

    go_type = "time.Month"

    def String(self) -> str:
        return _MONTHS[self - 1]


class GoWeekday(int):
    """``time.Weekday`` (Sunday is 0): an int that prints as the day name."""

    go_type = "time.Weekday"

    def String(self) -> str:
        return _DAYS[(self - 1) % 7]


class GoTime:
    """A ``time.Time`` in UTC, with nanosecond precision."""

    go_type = "*time.Time"
    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoTime) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(self.ns)

    def _datetime(self) -> _dt.datetime:
        seconds, _ = divmod(self.ns, NANOS_PER_SECOND)
        return _EPOCH + _dt.timedelta(seconds=seconds)

    def String(self) -> str:
        return self.Format("2006-01-02 15:04:05.999999999 -0700 MST")

    def Format(self, layout: str) -> str:
        """Go's reference-time layout formatting (``Mon Jan 2 15:04:05 MST 2006``)."""
        return format_time(self._datetime(), self.ns % NANOS_PER_SECOND, layout)

    def Unix(self) -> int:
        return self.ns // NANOS_PER_SECOND

    def UnixMilli(self) -> int:
        return self.ns // 1_000_000

    def UnixMicro(self) -> int:
        return self.ns // 1_000

    def UnixNano(self) -> int:
        return self.ns

    def UTC(self) -> GoTime:
        return self

    def Local(self) -> GoTime:
        return self

    def Add(self, d: GoDuration) -> GoTime:
        return GoTime(self.ns + d.ns)

    def Sub(self, other: GoTime) -> GoDuration:
        return GoDuration(self.ns - other.ns)

    def AddDate(self, years: int, months: int, days: int) -> GoTime:
        moment = self._datetime()
        month_index = moment.month - 1 + months
        year = moment.year + years + month_index // 12
        month = month_index % 12 + 1
        base = _dt.datetime(year, month, 1, moment.hour, moment.minute, moment.second, tzinfo=_dt.UTC)
        shifted = base + _dt.timedelta(days=moment.day - 1 + days)
        seconds = int((shifted - _EPOCH).total_seconds())
        return GoTime(seconds * NANOS_PER_SECOND + self.ns % NANOS_PER_SECOND)

    def Before(self, other: GoTime) -> bool:
        return self.ns < other.ns

    def After(self, other: GoTime) -> bool:
        return self.ns > other.ns

    def Equal(self, other: GoTime) -> bool:
        return self.ns == other.ns

    def IsZero(self) -> bool:
        return False

    def Year(self) -> int:
        return self._datetime().year

    def Month(self) -> GoMonth:
        return GoMonth(self._datetime().month)

    def Day(self) -> int:
        return self._datetime().day

    def Hour(self) -> int:
        return self._datetime().hour

    def Minute(self) -> int:
        return self._datetime().minute

    def Second(self) -> int:
        return self._datetime().second

    def Nanosecond(self) -> int:
        return self.ns % NANOS_PER_SECOND

    def YearDay(self) -> int:
        return self._datetime().timetuple().tm_yday

    def Weekday(self) -> GoWeekday:
        return GoWeekday((self._datetime().weekday() + 1) % 7)


# Layout elements, longest first where one is a prefix of another.
_CHUNKS = [
    "January",
    "Jan",
    "Monday",
    "Mon",
    "MST",
    "2006",
    "002",
    "__2",
    "_2",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "1",
    "2",
    "3",
    "4",
    "5",
    "PM",
    "pm",
    "-07:00:00",
    "-070000",
    "-07:00",
    "-0700",
    "-07",
    "Z07:00:00",
    "Z070000",
    "Z07:00",
    "Z0700",
    "Z07",
]


def _chunk_value(chunk: str, moment: _dt.datetime) -> str:
    hour12 = moment.hour % 12 or 12
    values: dict[str, Any] = {
        "January": _MONTHS[moment.month - 1],
        "Jan": _MONTHS[moment.month - 1][:3],
        "Monday": _DAYS[moment.weekday()],
        "Mon": _DAYS[moment.weekday()][:3],
        "MST": "UTC",
        "2006": f"{moment.year:04d}",
        "06": f"{moment.year % 100:02d}",
        "002": f"{moment.timetuple().tm_yday:03d}",
        "__2": f"{moment.timetuple().tm_yday:>3d}",
        "_2": f"{moment.day:>2d}",
        "01": f"{moment.month:02d}",
        "1": str(moment.month),
        "02": f"{moment.day:02d}",
        "2": str(moment.day),
        "15": f"{moment.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{moment.minute:02d}",
        "4": str(moment.minute),
        "05": f"{moment.second:02d}",
        "5": str(moment.second),
        "PM": "PM" if moment.hour >= 12 else "AM",
        "pm": "pm" if moment.hour >= 12 else "am",
    }
    if chunk in values:
        return str(values[chunk])
    if chunk.startswith("Z"):
        return "Z"
    return {"-07:00:00": "+00:00:00", "-070000": "+000000", "-07:00": "+00:00", "-0700": "+0000"}.get(
        chunk, "+00"
    )


def format_time(moment: _dt.datetime, nanos: int, layout: str) -> str:
    """Render ``moment`` (UTC) plus ``nanos`` with a Go layout string."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        ch = layout[i]
        if ch in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
            digit = layout[i + 1]
            j = i + 1
            while j < len(layout) and layout[j] == digit:
                j += 1
            if j >= len(layout) or not layout[j].isdigit():
                width = j - i - 1
                frac = f"{nanos:09d}"[:width]
                if digit == "9":
                    frac = frac.rstrip("0")
                    out.append(ch + frac if frac else "")
                else:
                    out.append(ch + frac)
                i = j
                continue
        for chunk in _CHUNKS:
            if layout.startswith(chunk, i):
                if chunk in ("Jan", "Mon") and layout[i + len(chunk) : i + len(chunk) + 1].islower():
                    continue
                out.append(_chunk_value(chunk, moment))
                i += len(chunk)
                break
        else:
            out.append(ch)
            i += 1
    return "".join(out)
