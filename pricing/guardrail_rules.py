"""The guardrail a pricing team sets for one scope, and its validation.

A :class:`Guardrail` belongs to one scope: ``global`` (key ``""``), a ``category`` (key: a
category path such as ``home/kitchen``, which also covers ``home/kitchen/mugs``) or an
``item`` (key: the item id). Every field is optional: an unset field is inherited from the
next broader scope (see :mod:`pricing.guardrails`). Validation refuses an invalid rule with the
field named, before anything is stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

from fairshelf.errors import InvalidArgument

Scope = Literal["global", "category", "item"]
Objective = Literal["revenue", "margin", "sell_through"]

SCOPES: Final[tuple[str, ...]] = ("global", "category", "item")
# ``global``, ``category:<path>`` or ``item:<id>``, the key holding a non-blank character.
# Published as is in the OpenAPI document, so it keeps to what ECMA-262 and Python agree on.
SCOPE_ID_PATTERN: Final[str] = r"^(global|(category|item):[\s\S]*\S[\s\S]*)$"
SCOPE_ID_RE: Final[re.Pattern[str]] = re.compile(SCOPE_ID_PATTERN)
# A price ending written as text: whole cents from 0 to 0.99 ("0.99", ".5", "0").
PRICE_ENDING_PATTERN: Final[str] = r"^(0|0?\.[0-9]{1,2})$"
_PRICE_ENDING_RE: Final[re.Pattern[str]] = re.compile(PRICE_ENDING_PATTERN)
OBJECTIVES: Final[frozenset[str]] = frozenset({"revenue", "margin", "sell_through"})
# Scope breadth: a narrower scope has a larger rank and wins.
SCOPE_RANK: Final[dict[str, int]] = {"global": 0, "category": 1, "item": 2}

# The fields that carry a rule (everything except the scope identity).
RULE_FIELDS: Final[tuple[str, ...]] = (
    "floor",
    "ceiling",
    "min_ratio",
    "max_ratio",
    "min_margin",
    "max_change_pct",
    "price_ending",
    "objective",
)


@dataclass(frozen=True)
class Guardrail:
    """The rules of one scope. ``None`` means "inherit from a broader scope".

    Parameters
    ----------
    scope, key:
        ``("global", "")``, ``("category", "<path>")`` or ``("item", "<item_id>")``.
    floor, ceiling:
        Absolute price bounds (currency units).
    min_ratio, max_ratio:
        Bounds relative to the item's base price (e.g. 0.7 and 1.3).
    min_margin:
        Minimum margin over unit cost as a fraction: price >= cost * (1 + min_margin).
    max_change_pct:
        Largest relative move allowed within any 24 h (0.1 = 10 %).
    price_ending:
        Required fractional part of the price, in cents (e.g. 0.99, 0.95, 0.0 for whole units).
    objective:
        ``revenue``, ``margin`` or ``sell_through``: what the optimiser maximises.
    """

    scope: Scope
    key: str = ""
    floor: float | None = None
    ceiling: float | None = None
    min_ratio: float | None = None
    max_ratio: float | None = None
    min_margin: float | None = None
    max_change_pct: float | None = None
    price_ending: float | None = None
    objective: Objective | None = None

    def __post_init__(self) -> None:
        validate(self)

    @property
    def scope_id(self) -> str:
        """``global``, ``category:<path>`` or ``item:<id>``."""
        return "global" if self.scope == "global" else f"{self.scope}:{self.key}"

    def rules(self) -> dict[str, Any]:
        """The set rule fields only (unset ones left out)."""
        return {f: getattr(self, f) for f in RULE_FIELDS if getattr(self, f) is not None}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guardrail:
        """Build from a dict (e.g. a request body), refusing unknown fields by name.

        Raises
        ------
        InvalidArgument
            Unknown field, or any rule the validation refuses.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown guardrail field(s) {unknown}; known: {sorted(known)}", field=unknown[0]
            )
        if "scope" not in data:
            raise InvalidArgument("guardrail needs a scope", field="scope")
        values = dict(data)
        for name in RULE_FIELDS:
            if name != "objective" and values.get(name) is not None:
                values[name] = _number(name, values[name])
        return cls(**values)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgument(f"{name} must be a number, got {value!r}", field=name)
    if name == "price_ending" and isinstance(value, str) and not _PRICE_ENDING_RE.match(value):
        raise InvalidArgument(
            f"price_ending must be whole cents from 0 to 0.99 such as '0.99', got {value!r}",
            field=name,
        )
    try:
        return float(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a number, got {value!r}", field=name) from None


def _finite(g: Guardrail, name: str) -> float | None:
    value = getattr(g, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number, got {value!r}", field=name)
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} must be finite, got {value!r}", field=name)
    return float(value)


def validate(g: Guardrail) -> None:
    """Refuse a guardrail that no price could satisfy or that makes no sense.

    Raises
    ------
    InvalidArgument
        With ``field`` set to the offending field and its value in the message.
    """
    if g.scope not in SCOPES:
        raise InvalidArgument(
            f"scope must be one of {list(SCOPES)}, got {g.scope!r}", field="scope"
        )
    if g.scope == "global" and g.key:
        raise InvalidArgument(f"the global scope has no key, got {g.key!r}", field="key")
    if g.scope != "global" and not (isinstance(g.key, str) and g.key.strip()):
        raise InvalidArgument(f"a {g.scope} guardrail needs a non-empty key", field="key")
    floor, ceiling = _finite(g, "floor"), _finite(g, "ceiling")
    min_ratio, max_ratio = _finite(g, "min_ratio"), _finite(g, "max_ratio")
    min_margin, max_change = _finite(g, "min_margin"), _finite(g, "max_change_pct")
    ending = _finite(g, "price_ending")
    for name, value in (("floor", floor), ("ceiling", ceiling)):
        if value is not None and value <= 0:
            raise InvalidArgument(f"{name} must be > 0, got {value}", field=name)
    if floor is not None and ceiling is not None and floor > ceiling:
        raise InvalidArgument(f"floor {floor} is above ceiling {ceiling}", field="floor")
    for name, value in (("min_ratio", min_ratio), ("max_ratio", max_ratio)):
        if value is not None and value <= 0:
            raise InvalidArgument(f"{name} must be > 0, got {value}", field=name)
    if min_ratio is not None and max_ratio is not None and min_ratio > max_ratio:
        raise InvalidArgument(
            f"min_ratio {min_ratio} is above max_ratio {max_ratio}", field="min_ratio"
        )
    if min_margin is not None and min_margin < 0:
        raise InvalidArgument(
            f"min_margin must be >= 0 (selling below cost is not a margin), got {min_margin}",
            field="min_margin",
        )
    if max_change is not None and not 0 < max_change < 1:
        raise InvalidArgument(
            f"max_change_pct must be in (0, 1), got {max_change}", field="max_change_pct"
        )
    if ending is not None:
        cents = round(ending * 100)
        if not 0 <= ending < 1 or abs(cents - ending * 100) > 1e-6:
            raise InvalidArgument(
                f"price_ending must be a whole number of cents in [0, 0.99], got {ending}",
                field="price_ending",
            )
    if g.objective is not None and g.objective not in OBJECTIVES:
        raise InvalidArgument(
            f"objective must be one of {sorted(OBJECTIVES)}, got {g.objective!r}",
            field="objective",
        )


def parse_scope_id(scope_id: str) -> tuple[Scope, str]:
    """Split ``global``, ``category:<path>`` or ``item:<id>`` into ``(scope, key)``.

    Raises
    ------
    InvalidArgument
        Anything else (field ``scope``).
    """
    if isinstance(scope_id, str) and SCOPE_ID_RE.fullmatch(scope_id):
        if scope_id == "global":
            return "global", ""
        kind, _, key = scope_id.partition(":")
        return ("category" if kind == "category" else "item"), key
    raise InvalidArgument(
        f"scope must be 'global', 'category:<path>' or 'item:<id>', got {scope_id!r}",
        field="scope",
    )
