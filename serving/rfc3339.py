"""RFC 3339 date-times as the API accepts them: what the OpenAPI ``date-time`` format says.

``datetime.fromisoformat`` takes far more than RFC 3339 (a bare date, week dates, basic
format, no offset), so a request the published schema calls invalid would be served. This
parser takes the RFC 3339 ``date-time`` production only: a full date, ``T`` (or ``t``), a full
time with optional fraction, and ``Z`` or a numeric offset. A leap second (``:60``) is read as
the last microsecond of its minute, which Python's ``datetime`` can represent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from fairshelf.errors import InvalidArgument

_DATE_TIME: Final[re.Pattern[str]] = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def parse_rfc3339(value: str, field: str) -> datetime:
    """``value`` as an aware UTC datetime.

    Parameters
    ----------
    value:
        An RFC 3339 date-time, such as ``2024-05-01T12:00:00Z`` or ``...+08:00``.
    field:
        The request field, named in the error.

    Raises
    ------
    InvalidArgument
        ``value`` is not an RFC 3339 date-time, or names a day or time that does not exist.
    """
    match = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(
            f"{field} is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z): {value!r}",
            field=field,
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    leap = second == 60
    try:
        if offset in ("Z", "z"):
            tz = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            oh, om = int(offset[1:3]), int(offset[4:6])
            if oh > 23 or om > 59:
                raise ValueError("offset out of range")
            tz = timezone(sign * timedelta(hours=oh, minutes=om))
        ts = datetime(
            year,
            month,
            day,
            hour,
            minute,
            59 if leap else second,
            999_999 if leap else micro,
            tzinfo=tz,
        )
    except ValueError:
        raise InvalidArgument(
            f"{field} names a date or time that does not exist: {value!r}", field=field
        ) from None
    return ts.astimezone(UTC)
