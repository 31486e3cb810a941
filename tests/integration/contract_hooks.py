"""schemathesis hooks for the contract test: the rules JSON Schema cannot state.

The OpenAPI document states every single-field rule; some rules tie two fields, the clock or
the server's state together and are stated in the descriptions instead: ``min_price`` at most
``max_price``, ``floor`` at most ``ceiling``, an event timestamp at most a few minutes ahead
of the server's clock, a promotion's window (not back-dated, ends after it starts, at most
366 days). A quote naming a promotion the server does not run is answered 404 or 409 (its
state, not a malformed request), which the checks accept. Generated requests
that break one of them are dropped, so the positive checks judge what the schema can promise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

_SLACK = timedelta(minutes=4)


def _pair_broken(obj: Any, low: str, high: str) -> bool:
    if not isinstance(obj, dict):
        return False
    lo, hi = obj.get(low), obj.get(high)
    numbers = (int, float)
    return isinstance(lo, numbers) and isinstance(hi, numbers) and lo > hi


def _future(events: Any) -> bool:
    if not isinstance(events, list):
        return False
    limit = datetime.now(UTC) + _SLACK
    for ev in events:
        ts = ev.get("timestamp") if isinstance(ev, dict) else None
        if isinstance(ts, str):
            try:
                at = datetime.fromisoformat(ts.replace("z", "Z").replace("t", "T"))
            except ValueError:
                continue
            if at.tzinfo is not None and at > limit:
                return True
    return False


def _promotion_window_broken(body: dict[str, Any]) -> bool:
    # Tied to the clock and to each other: starts no earlier than now, ends after it starts,
    # at most 366 days long.
    if "ends_at" not in body and "title" not in body:
        return False
    now = datetime.now(UTC)
    try:
        start = _parse(body.get("starts_at")) or now
        end = _parse(body.get("ends_at"))
    except ValueError:
        return False
    if end is None:
        return False
    return start < now - _SLACK or end <= start or end - start > timedelta(days=366)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    at = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    return at if at.tzinfo is not None else None


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    body = case.body
    if not isinstance(body, dict):
        return True
    return not (
        _pair_broken(body.get("filters"), "min_price", "max_price")
        or _pair_broken(body.get("values"), "floor", "ceiling")
        or _future(body.get("events"))
        or _promotion_window_broken(body)
    )
