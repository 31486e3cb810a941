"""Promotions as server-side public facts: published, time-boxed, the same for every quote.

A promotion is part of the public context a price may depend on (SPEC §6), so it must be a
fact of the store, not something the storefront asserts per request: a storefront that could
pass a store-wide promotion to some shoppers and not to others would price two shoppers
differently for the same item and epoch while every context-level audit passes. Here a
promotion exists only once published (name, public title and text, a window), every quote
whose time falls in its window carries it, and a request can neither add one that is not
running nor leave out one that is (:meth:`PromotionBook.resolve`).

Publication rules, so the record stays honest:

- names are unique for good: a name is never reused, even after its promotion ended, so a
  promotion name in the quote log always means one window and one text;
- a promotion cannot be back-dated (its start is not before the moment it is published,
  give or take :data:`BACKDATE_TOLERANCE`): quotes already served did not carry it;
- ending a promotion cuts its window at the moment it is ended; it cannot be shortened into
  the past.

This module is pure: the versioned store and its audit records live in
``serving/store/promotions_store.py``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fairshelf.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

NAME_REGEX: Final[str] = r"[a-z0-9][a-z0-9_-]{0,63}"
NAME_PATTERN: Final[re.Pattern[str]] = re.compile(NAME_REGEX)
MAX_WINDOW: Final[timedelta] = timedelta(days=366)
# Clocks of the pricing team's machine and the server differ a little.
BACKDATE_TOLERANCE: Final[timedelta] = timedelta(minutes=5)


def _utc(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidArgument(f"{field} must be a timezone-aware time, got {value!r}", field=field)
    return value.astimezone(UTC)


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 time (UTC when no offset is given).

    Raises
    ------
    InvalidArgument
        Naming ``field`` and the value.
    """
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{field} is not an RFC 3339 time: {value!r}", field=field) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@dataclass(frozen=True)
class Promotion:
    """One published, store-wide promotion.

    Parameters
    ----------
    name:
        Short code quotes carry in their public context (``[a-z0-9][a-z0-9_-]*``, at most 64).
    title:
        Public title shown to shoppers.
    description:
        Public text: what the promotion is.
    starts_at, ends_at:
        The window ``[starts_at, ends_at)``, timezone-aware (stored in UTC).

    Raises
    ------
    InvalidArgument
        Bad name, empty public text, an inverted or over-long window.
    """

    name: str
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise InvalidArgument(
                f"promotion name {self.name!r} must be 1-64 characters of a-z, 0-9, '_' or '-' "
                "starting with a letter or digit",
                field="name",
            )
        for field in ("title", "description"):
            text = getattr(self, field)
            if not isinstance(text, str) or not text.strip():
                raise InvalidArgument(
                    f"promotion {self.name!r} needs a public {field}", field=field
                )
        starts = _utc(self.starts_at, "starts_at")
        ends = _utc(self.ends_at, "ends_at")
        # An empty window is what a promotion withdrawn before its start becomes.
        if ends < starts:
            raise InvalidArgument(
                f"promotion {self.name!r} ends ({ends.isoformat()}) before it starts "
                f"({starts.isoformat()})",
                field="ends_at",
            )
        if ends - starts > MAX_WINDOW:
            raise InvalidArgument(
                f"promotion {self.name!r} runs longer than {MAX_WINDOW.days} days", field="ends_at"
            )
        object.__setattr__(self, "starts_at", starts)
        object.__setattr__(self, "ends_at", ends)

    def running(self, at: datetime) -> bool:
        """Whether ``at`` falls in the window."""
        return self.starts_at <= at < self.ends_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (times in RFC 3339)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Promotion:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InvalidArgument
            A missing or unknown field, a bad time or any rule of the constructor.
        """
        fields = {"name", "title", "description", "starts_at", "ends_at"}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InvalidArgument(f"unknown promotion field(s) {unknown}", field=unknown[0])
        missing = sorted(fields - set(data))
        if missing:
            raise InvalidArgument(f"promotion is missing {missing}", field=missing[0])
        return cls(
            name=str(data["name"]),
            title=str(data["title"]),
            description=str(data["description"]),
            starts_at=parse_time(str(data["starts_at"]), "starts_at"),
            ends_at=parse_time(str(data["ends_at"]), "ends_at"),
        )


class PromotionBook:
    """Every promotion ever published (one version of the store), and what runs when.

    Parameters
    ----------
    version:
        The store version this book is (0: nothing published yet).
    promotions:
        The promotions, names unique.

    Raises
    ------
    InvalidArgument
        Two promotions share a name.
    """

    def __init__(self, version: int = 0, promotions: Iterable[Promotion] = ()) -> None:
        self.version = int(version)
        self._by_name: dict[str, Promotion] = {}
        for p in promotions:
            if p.name in self._by_name:
                raise InvalidArgument(f"promotion {p.name!r} is published twice", field="name")
            self._by_name[p.name] = p
        # The windows cut time into intervals with a constant set of running promotions:
        # a quote finds its interval by bisection instead of scanning every promotion.
        bounds = sorted({t for p in self._by_name.values() for t in (p.starts_at, p.ends_at)})
        self._bounds = [t.timestamp() for t in bounds]
        self._running: list[tuple[str, ...]] = [()]
        for t in bounds:
            self._running.append(tuple(sorted(n for n, p in self._by_name.items() if p.running(t))))

    @property
    def promotions(self) -> list[Promotion]:
        """Every published promotion, by start then name."""
        return sorted(self._by_name.values(), key=lambda p: (p.starts_at, p.name))

    def get(self, name: str) -> Promotion:
        """The promotion called ``name``.

        Raises
        ------
        NotFound
            Never published (field ``name``).
        """
        found = self._by_name.get(name)
        if found is None:
            raise NotFound(f"no promotion {name!r} was ever published", field="name")
        return found

    def running_at(self, at: datetime) -> tuple[str, ...]:
        """Names of the promotions running at ``at``, sorted."""
        return self._running[bisect.bisect_right(self._bounds, at.timestamp())]

    def resolve(self, requested: Sequence[str], at: datetime) -> tuple[str, ...]:
        """The promotions a quote at ``at`` carries, checking what the request named.

        The answer is always every promotion running at ``at``: a request cannot leave one
        out. Naming one is allowed (storefronts show them) only when it is running.

        Raises
        ------
        NotFound
            A named promotion was never published (like an unknown item id).
        FailedPrecondition
            A named promotion exists but is not running at ``at``: the request is well formed,
            the server's state refuses it (field ``promotions``, naming its window).
        """
        running = self.running_at(at)
        for name in requested:
            if name in running:
                continue
            known = self._by_name.get(name)
            if known is None:
                raise NotFound(
                    f"promotion {name!r} is not published; a quote carries only the "
                    f"promotions running now ({', '.join(running) or 'none'})",
                    field="promotions",
                )
            raise FailedPrecondition(
                f"promotion {name!r} is not running at {at.isoformat()} (its window is "
                f"{known.starts_at.isoformat()} to {known.ends_at.isoformat()})",
                field="promotions",
            )
        return running

    def publish(self, promotion: Promotion, now: datetime) -> PromotionBook:
        """This book plus ``promotion``, as the next version.

        Raises
        ------
        AlreadyExists
            The name was published before (names are never reused).
        InvalidArgument
            The window is empty, or the promotion starts before ``now`` (it would be
            back-dated).
        """
        if promotion.name in self._by_name:
            raise AlreadyExists(
                f"promotion {promotion.name!r} was already published; names are never reused, "
                "publish a new name",
                field="name",
            )
        if promotion.ends_at <= promotion.starts_at:
            raise InvalidArgument(
                f"promotion {promotion.name!r} has an empty window", field="ends_at"
            )
        if promotion.starts_at < now - BACKDATE_TOLERANCE:
            raise InvalidArgument(
                f"promotion {promotion.name!r} starts at {promotion.starts_at.isoformat()}, "
                f"before it is published ({now.isoformat()}): quotes already served did not "
                "carry it",
                field="starts_at",
            )
        return PromotionBook(self.version + 1, [*self._by_name.values(), promotion])

    def end(self, name: str, now: datetime) -> tuple[PromotionBook, Promotion]:
        """End ``name`` at ``now`` (a promotion that has not started is withdrawn).

        Returns
        -------
        tuple[PromotionBook, Promotion]
            The next version and the promotion as it now stands.

        Raises
        ------
        NotFound
            Never published.
        FailedPrecondition
            Already over.
        """
        current = self.get(name)
        if current.ends_at <= now:
            raise FailedPrecondition(
                f"promotion {name!r} already ended at {current.ends_at.isoformat()}",
                field="name",
            )
        # Not started yet: its window shrinks to nothing at its start, and it never runs.
        if now <= current.starts_at:
            ended = replace(current, ends_at=current.starts_at)
        else:
            ended = replace(current, ends_at=now)
        others = [p for n, p in self._by_name.items() if n != name]
        return PromotionBook(self.version + 1, [*others, ended]), ended

    def to_document(self) -> list[dict[str, Any]]:
        """Every promotion, JSON-ready (the store keeps one document per version)."""
        return [p.to_dict() for p in self.promotions]

    @classmethod
    def from_document(cls, version: int, data: Sequence[Mapping[str, Any]]) -> PromotionBook:
        """Inverse of :meth:`to_document`."""
        return cls(version, [Promotion.from_dict(d) for d in data])
