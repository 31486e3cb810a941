"""The guard's capability: the one object that unlocks a sealed pricing engine.

:class:`FairQuoteService` seals the engine it serves from with :data:`_GUARD_CAPABILITY`
(:meth:`pricing.engine.PricingEngine.seal`); the engine then compares the ``capability=``
argument of ``decide``, ``warm`` and ``policy_for`` with it by identity. The object cannot be
constructed, copied or pickled, so no other code can make one that passes: a caller that holds
the serving engine but not this object cannot get a price from it.

Python has no private memory: code that imports this module's private name on purpose can
still reach the object. That is why the capability stands beside, not instead of, the test
that parses ``serving/``, ``recsys/`` and ``training/`` and fails when one of them imports the
engine, a policy or this module.
"""

from __future__ import annotations

from typing import Any, NoReturn


class GuardCapability:
    """Proof that a call to a sealed engine comes from the fairness guard.

    There is exactly one instance, made when this module is imported; calling the class,
    copying or pickling the instance raises ``TypeError``.
    """

    __slots__ = ()

    def __new__(cls) -> GuardCapability:
        raise TypeError("GuardCapability cannot be created; only pricing.fairness holds it")

    def __copy__(self) -> NoReturn:
        raise TypeError("GuardCapability cannot be copied")

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        raise TypeError("GuardCapability cannot be copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError("GuardCapability cannot be pickled")

    def __repr__(self) -> str:
        return "<fairshelf guard capability>"


# Made once, without calling the class (whose constructor refuses everyone).
_GUARD_CAPABILITY: GuardCapability = object.__new__(GuardCapability)
