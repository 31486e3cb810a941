"""An independent check that served prices kept their guardrails.

This module deliberately shares no code with :mod:`pricing.guardrails` (only the rule data
class): it resolves each item's rules again in its own, simpler way and checks every served
price against them, so that a bug in the enforcement cannot hide itself. The benchmarks and
the property tests use it as the referee.

Checks per served price: every lower bound (floor, ``min_ratio × base``, ``cost × (1 +
min_margin)``) and upper bound (ceiling, ``max_ratio × base``); the 24 h change limit against
every price of the same item in force in the previous 24 h; the price ending whenever a price
with that ending existed inside the allowed range. Where the rules themselves conflict (a lower
bound above an upper one) the documented precedence decides which bound stands: the one from
the narrower scope, or the upper one between equal scopes.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pricing.guardrail_rules import Guardrail

# The documented built-in defaults beneath the global scope (restated here on purpose).
_BUILTIN: dict[str, Any] = {"min_ratio": 0.5, "max_ratio": 2.0, "min_margin": 0.0}
_RANK = {"builtin": -1, "global": 0, "category": 1, "item": 2}
_DAY = 86400.0
_EPS = 1e-7
# Bounds crossing by less than this touch (restated from pricing.guardrails on purpose): the
# conflict rule must set aside exactly the bounds the engine sets aside.
_TOUCH = 1e-9


@dataclass(frozen=True)
class ServedPrice:
    """One price as served: item facts, the epoch start (unix seconds) and the price."""

    item_id: str
    category: str
    base_price: float
    unit_cost: float | None
    start: float
    price: float


@dataclass
class AuditResult:
    """Counts of checked prices and of violations by rule, with a few examples."""

    checked: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def total_violations(self) -> int:
        """All violations of any rule."""
        return sum(self.violations.values())


class GuardrailAuditor:
    """Checks served prices against a fixed list of guardrail rules.

    Parameters
    ----------
    rules:
        The rules in force while the prices were served.
    """

    def __init__(self, rules: Iterable[Guardrail]) -> None:
        self._rules: dict[tuple[str, str], Guardrail] = {(r.scope, r.key): r for r in rules}
        self._recent: dict[str, deque[tuple[float, float]]] = {}
        self._resolved: dict[tuple[str, str, str], tuple[Any, int]] = {}
        self.result = AuditResult()

    def _lookup(self, item_id: str, category: str, name: str) -> tuple[Any, int]:
        # The rules are fixed for the auditor's life, so each answer is kept.
        key = (item_id, category, name)
        hit = self._resolved.get(key)
        if hit is None:
            hit = self._resolved[key] = self._resolve(item_id, category, name)
        return hit

    def _resolve(self, item_id: str, category: str, name: str) -> tuple[Any, int]:
        candidates: list[tuple[str, str]] = [("item", item_id)]
        parts = category.split("/")
        candidates += [("category", "/".join(parts[:n])) for n in range(len(parts), 0, -1)]
        candidates.append(("global", ""))
        for scope, key in candidates:
            rule = self._rules.get((scope, key))
            if rule is not None and getattr(rule, name) is not None:
                return getattr(rule, name), _RANK[scope]
        return _BUILTIN.get(name), _RANK["builtin"]

    def note_history(self, item_id: str, start: float, price: float) -> None:
        """Record a price served before the audited period (it counts for the 24 h rule only)."""
        self._recent.setdefault(item_id, deque()).append((start, price))

    def check(self, served: ServedPrice) -> None:
        """Check one served price (prices of an item must arrive in time order)."""
        res = self.result
        res.checked += 1
        look = self._lookup
        it, cat, p = served.item_id, served.category, served.price
        lowers: list[tuple[float, int, str]] = []
        uppers: list[tuple[float, int, str]] = []
        for name, scale, side in (
            ("floor", 1.0, lowers),
            ("min_ratio", served.base_price, lowers),
            ("ceiling", 1.0, uppers),
            ("max_ratio", served.base_price, uppers),
        ):
            value, rank = look(it, cat, name)
            if value is not None:
                side.append((float(value) * scale, rank, name))
        margin, m_rank = look(it, cat, "min_margin")
        if margin is not None and served.unit_cost is not None and served.unit_cost > 0:
            lowers.append((served.unit_cost * (1 + float(margin)), m_rank, "min_margin"))
        # Settle crossing bounds as documented: of a crossing pair, the bound from the
        # narrower scope stands and the other is set aside; on equal scopes the upper stands.
        kept_lo = sorted(lowers, key=lambda b: -b[0])
        kept_hi = sorted(uppers, key=lambda b: b[0])
        crossed = False
        while kept_lo and kept_hi and kept_lo[0][0] > kept_hi[0][0] + _TOUCH:
            crossed = True
            if kept_lo[0][1] > kept_hi[0][1]:
                kept_hi.pop(0)
            else:
                kept_lo.pop(0)
        res.conflicts += crossed
        lowers, uppers = kept_lo, kept_hi
        hi_v = min((v for v, _, _ in uppers), default=math.inf)
        # No price is below one cent, whatever the rules say.
        lo_v = max((v for v, _, _ in lowers), default=0.01)
        for v, _, name in lowers:
            if p < v - _EPS:
                self._flag(name, f"{it}@{served.start}: {p} below {name} {v}")
        for v, _, name in uppers:
            if p > v + _EPS:
                self._flag(name, f"{it}@{served.start}: {p} above {name} {v}")
        change, _ = look(it, cat, "max_change_pct")
        window = self._recent.setdefault(it, deque())
        # Keep the last price at or before t - 24 h (still in force then) and all later ones.
        while len(window) >= 2 and window[1][0] <= served.start - _DAY:
            window.popleft()
        # Before an item's first served price its shelf price is the one in force (SPEC §6).
        prior = [q for _, q in window] or ([served.base_price] if served.base_price > 0 else [])
        if change is not None and prior:
            c = float(change)
            prices = prior
            c_lo = max(prices) * (1 - c)
            c_hi = min(prices) * (1 + c)
            band_ok = max(lo_v, c_lo) <= min(hi_v, c_hi)
            if band_ok and not (c_lo - _EPS <= p <= c_hi + _EPS):
                self._flag("max_change_pct", f"{it}@{served.start}: {p} outside [{c_lo}, {c_hi}]")
            if band_ok:
                lo_v, hi_v = max(lo_v, c_lo), min(hi_v, c_hi)
        window.append((served.start, p))
        ending, _ = look(it, cat, "price_ending")
        if ending is not None:
            e = round(float(ending) * 100)
            lo_c = math.ceil(lo_v * 100 - _EPS)
            hi_c = math.floor(hi_v * 100 + _EPS) if math.isfinite(hi_v) else 10**15
            first = lo_c + ((e - lo_c) % 100)
            if first <= hi_c and round(p * 100) % 100 != e:
                self._flag("price_ending", f"{it}@{served.start}: {p} does not end in .{e:02d}")

    def _flag(self, rule: str, example: str) -> None:
        self.result.violations[rule] += 1
        if len(self.result.examples) < 10:
            self.result.examples.append(example)

    def check_all(self, served: Sequence[ServedPrice]) -> AuditResult:
        """Check many prices (sorted by time here) and return the result."""
        for s in sorted(served, key=lambda s: s.start):
            self.check(s)
        return self.result
