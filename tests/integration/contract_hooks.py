"""schemathesis hooks for the contract test: the rules JSON Schema cannot state.

The OpenAPI document states every single-field rule; three rules tie two fields or the clock
together and are stated in the field descriptions instead: ``min_price`` at most
``max_price``, ``floor`` at most ``ceiling``, and an event timestamp at most a few minutes
ahead of the server's clock. Generated requests that break one of them are dropped, so the
positive checks judge what the schema can promise.
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


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    body = case.body
    if not isinstance(body, dict):
        return True
    return not (
        _pair_broken(body.get("filters"), "min_price", "max_price")
        or _pair_broken(body.get("values"), "floor", "ceiling")
        or _future(body.get("events"))
    )
