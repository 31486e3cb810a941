"""Price epochs: the time slots within which a price is fixed for everyone.

A price is decided once per item, epoch and public context and then served unchanged until the
epoch ends, so that every shopper asking in the same epoch sees the same price (rule G3). Epochs
are counted from a fixed origin so that every server replica agrees on them without talking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fairshelf.errors import InvalidArgument

EPOCH_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EpochClock:
    """Maps a time to its price epoch.

    Parameters
    ----------
    length:
        Epoch length; must divide a day evenly or be a whole number of days (e.g. 1 h, 15 min,
        1 day), so epochs line up with calendar days.
    """

    length: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        seconds = self.length.total_seconds()
        if seconds < 60 or seconds != int(seconds):
            raise InvalidArgument(
                f"epoch length must be a whole number of seconds >= 60, got {self.length}",
                field="epoch_length",
            )
        day = 86400
        if not (day % int(seconds) == 0 or int(seconds) % day == 0):
            raise InvalidArgument(
                f"epoch length must divide a day or be whole days, got {self.length}",
                field="epoch_length",
            )

    @property
    def seconds(self) -> int:
        """Epoch length in seconds."""
        return int(self.length.total_seconds())

    def index(self, at: datetime) -> int:
        """Epoch number of ``at`` (timezone-aware)."""
        if at.tzinfo is None:
            raise InvalidArgument("time must be timezone-aware", field="at")
        return int((at - EPOCH_ORIGIN).total_seconds() // self.seconds)

    def start(self, index: int) -> datetime:
        """Start time of epoch ``index``."""
        return EPOCH_ORIGIN + timedelta(seconds=index * self.seconds)

    def label(self, index: int) -> str:
        """A readable, sortable epoch id such as ``2026-01-01T10:00Z/3600s``."""
        return f"{self.start(index).strftime('%Y-%m-%dT%H:%MZ')}/{self.seconds}s"
