"""Published discount programs: the only way a shopper's price may differ from the fair price.

Rule G4. A program is declared up front with a public title and public text ("new customers get
10% off their first order"), an eligibility rule anyone can read, and a reduction that can only
lower a price. Programs are applied by the guard AFTER the shopper-free fair price is fixed, and
each one that applies is shown as its own line on the quote. A program that could raise a price
is refused when it is loaded, and a line that would raise a price at run time is dropped and
audited. No surcharge can ever depend on the shopper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from fairshelf.errors import PolicyRejected
from pricing.fairness.shopper import Shopper

# Smallest price a discount may bring an item to: a program never makes an item free or negative.
MIN_PRICE = 0.01


class Eligibility(StrEnum):
    """Who a program is for. Each rule is public and decidable from the shopper's own facts."""

    EVERYONE = "everyone"
    NEW_CUSTOMER = "new_customer"
    MEMBER = "member"
    COUPON_CODE = "coupon_code"


class DiscountLine(NamedTuple):
    """One applied program on a quote: how much it took off and why (public text)."""

    program_id: str
    title: str
    public_text: str
    amount: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "program_id": self.program_id,
            "title": self.title,
            "public_text": self.public_text,
            "amount": self.amount,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiscountLine:
        """Inverse of :meth:`to_json`."""
        return cls(
            program_id=str(data["program_id"]),
            title=str(data["title"]),
            public_text=str(data["public_text"]),
            amount=float(data["amount"]),
        )


@dataclass(frozen=True)
class DiscountProgram:
    """A declared, public, reduce-only discount program.

    Parameters
    ----------
    program_id:
        Stable id, shown on quotes and in the audit.
    title:
        Public title ("New-customer coupon").
    public_text:
        The rule in plain words, as published to shoppers.
    eligibility:
        Who qualifies.
    percent_off:
        Percentage taken off the current price, in [0, 90].
    amount_off:
        Fixed amount taken off, >= 0.
    code:
        The public coupon code, required for :attr:`Eligibility.COUPON_CODE`.
    categories:
        Item categories (path prefixes) the program covers; empty means every item.

    Raises
    ------
    PolicyRejected
        When the program could raise a price, has no public text, or is incomplete.
    """

    program_id: str
    title: str
    public_text: str
    eligibility: Eligibility
    percent_off: float = 0.0
    amount_off: float = 0.0
    code: str | None = None
    categories: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        name = self.program_id or "<unnamed>"
        if not self.program_id.strip():
            raise PolicyRejected("discount program needs a program_id", field="program_id")
        if not self.title.strip() or not self.public_text.strip():
            raise PolicyRejected(
                f"discount program {name!r} needs a public title and public text: a shopper-"
                "specific price is allowed only through published programs (rule G4)",
                field="public_text",
            )
        if self.percent_off < 0 or self.amount_off < 0:
            raise PolicyRejected(
                f"discount program {name!r} would raise prices (percent_off={self.percent_off}, "
                f"amount_off={self.amount_off}): programs may only lower a price (rule G4)",
                field="percent_off" if self.percent_off < 0 else "amount_off",
            )
        if self.percent_off > 90:
            raise PolicyRejected(
                f"discount program {name!r}: percent_off must be <= 90, got {self.percent_off}",
                field="percent_off",
            )
        if self.percent_off == 0 and self.amount_off == 0:
            raise PolicyRejected(
                f"discount program {name!r} takes nothing off: declare percent_off or amount_off",
                field="percent_off",
            )
        if self.eligibility == Eligibility.COUPON_CODE and not self.code:
            raise PolicyRejected(
                f"discount program {name!r} is for a coupon code but declares none", field="code"
            )
        object.__setattr__(self, "eligibility", Eligibility(self.eligibility))
        object.__setattr__(self, "categories", frozenset(self.categories))

    def qualifies(self, shopper: Shopper, category: str) -> bool:
        """Whether ``shopper`` qualifies for this program on an item of ``category``."""
        return self.covers(category) and self.admits(shopper)

    def covers(self, category: str) -> bool:
        """Whether the program applies to items of ``category`` (any shopper)."""
        return not self.categories or any(category.startswith(c) for c in self.categories)

    def admits(self, shopper: Shopper) -> bool:
        """Whether ``shopper`` meets the eligibility rule (any category)."""
        # Members are singletons (normalised in __post_init__), so identity is enough.
        eligibility = self.eligibility
        if eligibility is Eligibility.EVERYONE:
            return True
        if eligibility is Eligibility.NEW_CUSTOMER:
            return shopper.is_new_customer
        if eligibility is Eligibility.MEMBER:
            return shopper.member
        return self.code is not None and self.code in shopper.coupon_codes

    def reduction(self, price: float) -> float:
        """The amount this program takes off ``price`` (never more than leaves MIN_PRICE)."""
        off = price * self.percent_off / 100.0 + self.amount_off
        return round(min(off, max(price - MIN_PRICE, 0.0)), 2)

    def to_json(self) -> dict[str, Any]:
        """The published form of the program."""
        return {
            "program_id": self.program_id,
            "title": self.title,
            "public_text": self.public_text,
            "eligibility": str(self.eligibility),
            "percent_off": self.percent_off,
            "amount_off": self.amount_off,
            "code": self.code,
            "categories": sorted(self.categories),
        }


_PROGRAM_FIELDS = frozenset(
    {
        "program_id",
        "title",
        "public_text",
        "eligibility",
        "percent_off",
        "amount_off",
        "code",
        "categories",
    }
)


@dataclass(frozen=True)
class RefusedLine:
    """A program line dropped at run time because it would have raised the price."""

    program_id: str
    attempted_amount: float


class ProgramOutcome(NamedTuple):
    """The result of applying programs to one fair price."""

    lines: tuple[DiscountLine, ...]
    final_price: float
    refused: tuple[RefusedLine, ...] = ()


class ProgramBook:
    """The set of published programs, validated at load.

    Parameters
    ----------
    programs:
        The programs; ids must be unique.

    Raises
    ------
    PolicyRejected
        On a duplicate id or any invalid program.
    """

    def __init__(self, programs: Iterable[DiscountProgram] = ()) -> None:
        self._programs: dict[str, DiscountProgram] = {}
        for program in programs:
            if not isinstance(program, DiscountProgram):
                raise PolicyRejected(
                    f"{program!r} is not a declared DiscountProgram (rule G4)", field="programs"
                )
            if program.program_id in self._programs:
                raise PolicyRejected(
                    f"discount program id {program.program_id!r} is declared twice",
                    field="program_id",
                )
            self._programs[program.program_id] = program
        # (program, whether its class overrides ``qualifies``): only such a program's own code
        # can say whom it admits, so :meth:`eligible` always keeps it.
        self._screen = tuple(
            (p, type(p).qualifies is not DiscountProgram.qualifies) for p in self._programs.values()
        )

    @classmethod
    def from_json(cls, documents: Iterable[Mapping[str, Any]]) -> ProgramBook:
        """Load published programs from their JSON form (a config file, an admin API).

        Parameters
        ----------
        documents:
            One mapping per program, as written by :meth:`DiscountProgram.to_json`.

        Raises
        ------
        PolicyRejected
            A program breaks rule G4, or a document is incomplete (names the field).
        """
        programs = []
        for i, doc in enumerate(documents):
            unknown = sorted(set(doc) - _PROGRAM_FIELDS)
            if unknown:
                raise PolicyRejected(
                    f"discount program #{i}: unknown field(s) {unknown}", field=unknown[0]
                )
            try:
                programs.append(
                    DiscountProgram(
                        program_id=str(doc["program_id"]),
                        title=str(doc["title"]),
                        public_text=str(doc["public_text"]),
                        eligibility=Eligibility(doc["eligibility"]),
                        percent_off=float(doc.get("percent_off", 0.0)),
                        amount_off=float(doc.get("amount_off", 0.0)),
                        code=doc.get("code"),
                        categories=frozenset(doc.get("categories", ())),
                    )
                )
            except KeyError as exc:
                raise PolicyRejected(
                    f"discount program #{i} lacks {exc.args[0]!r}", field=str(exc.args[0])
                ) from exc
            except ValueError as exc:
                raise PolicyRejected(f"discount program #{i}: {exc}", field="eligibility") from exc
        return cls(programs)

    def to_json(self) -> list[dict[str, Any]]:
        """The published programs, in order (what a storefront may display)."""
        return [p.to_json() for p in self._programs.values()]

    @property
    def programs(self) -> tuple[DiscountProgram, ...]:
        """The published programs, in the order they are applied."""
        return tuple(self._programs.values())

    def get(self, program_id: str) -> DiscountProgram | None:
        """The program with ``program_id``, or None."""
        return self._programs.get(program_id)

    def apply(self, fair_price: float, category: str, shopper: Shopper) -> ProgramOutcome:
        """Apply every program ``shopper`` qualifies for, in order, each on the running price.

        Parameters
        ----------
        fair_price:
            The shopper-free price of the item.
        category:
            The item's category path.
        shopper:
            The shopper; only the program eligibility rules read it.

        Returns
        -------
        ProgramOutcome
            The discount lines and the final price. A line that would not lower the price
            (a subclass computing a negative reduction, say) is refused, never applied.
        """
        return self.apply_eligible(fair_price, category, shopper, self.eligible(shopper))

    def eligible(self, shopper: Shopper) -> tuple[DiscountProgram, ...]:
        """The programs ``shopper`` may qualify for on some item, in order.

        Asked once per quote request, so that items of a shopper who qualifies for nothing
        (most shoppers, most of the time) cost nothing here. A program whose class overrides
        :meth:`DiscountProgram.qualifies` is always kept: only its own code can say.
        """
        return tuple([p for p, custom in self._screen if custom or p.admits(shopper)])

    def apply_eligible(
        self,
        fair_price: float,
        category: str,
        shopper: Shopper,
        eligible: tuple[DiscountProgram, ...],
    ) -> ProgramOutcome:
        """:meth:`apply`, restricted to ``eligible`` (from :meth:`eligible` for ``shopper``)."""
        if not eligible:
            return ProgramOutcome((), fair_price, ())
        price = fair_price
        lines: list[DiscountLine] = []
        refused: list[RefusedLine] = []
        for program in eligible:
            if not program.qualifies(shopper, category):
                continue
            amount = program.reduction(price)
            # Checked at run time too: a program is code, and code can change after load.
            if not amount >= 0 or price - amount < MIN_PRICE - 1e-9:
                refused.append(RefusedLine(program.program_id, float(amount)))
                continue
            if amount == 0:
                continue
            price = round(price - amount, 2)
            lines.append(
                DiscountLine(program.program_id, program.title, program.public_text, amount)
            )
        return ProgramOutcome(tuple(lines), price, tuple(refused))
