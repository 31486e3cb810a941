"""Reading the pricing engine's decisions into the one shape the guard compares.

The engine's ``PriceDecision`` is the pricing package's own type; the guard reads only the
fields listed in :class:`FairDecision`, through :func:`read_decision`, so that a change of
field names there is a change in one place here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fairshelf.errors import FairshelfError
from pricing.engine import PriceDecision


@dataclass(frozen=True)
class FairDecision:
    """The parts of an engine decision that identify a price and where it came from."""

    item_id: str
    final_price: float
    base_price: float
    adjustment: float
    reason_codes: tuple[str, ...]
    policy_name: str
    policy_version: str
    inputs: tuple[str, ...]
    guardrail_scope: str
    guardrail_version: str
    epoch: int | None
    proposed_price: float | None = None
    # The engine's catalogue and guardrail set when the decision was pinned (by identity):
    # after a swap mid-epoch the policy sees other inputs, so proposals are not comparable.
    config: tuple[Any, ...] = field(default=(), compare=False, repr=False)


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    raise FairshelfError(
        f"price decision {type(obj).__name__} has none of the fields {list(names)}"
    )


def read_decision(decision: Any) -> FairDecision:
    """Read one engine decision.

    Parameters
    ----------
    decision:
        A ``pricing.engine.PriceDecision`` (or anything with the same fields).

    Returns
    -------
    FairDecision
        The normalised decision.

    Raises
    ------
    FairshelfError
        When a required field is missing (a bug in the engine, not a caller error).
    """
    policy = getattr(decision, "policy", None)
    if isinstance(policy, str):
        policy_name = policy
        policy_version = str(_first(decision, "policy_version"))
    elif policy is not None and hasattr(policy, "name"):
        policy_name = str(policy.name)
        policy_version = str(policy.version)
    else:
        policy_name = str(_first(decision, "policy_name"))
        policy_version = str(_first(decision, "policy_version"))
    guardrail = getattr(decision, "guardrail", None)
    if guardrail is not None and hasattr(guardrail, "scope"):
        scope, gversion = guardrail.scope, guardrail.version
    else:
        scope = _first(decision, "guardrail_scope")
        gversion = _first(decision, "guardrail_version")
    epoch = None
    for name in ("price_epoch", "epoch"):
        if hasattr(decision, name):
            epoch = int(getattr(decision, name))
            break
    inputs = _first(decision, "inputs", "declared_inputs", "policy_inputs")
    proposed = getattr(decision, "proposed_price", None)
    return FairDecision(
        item_id=str(decision.item_id),
        final_price=float(decision.final_price),
        base_price=float(decision.base_price),
        adjustment=float(decision.adjustment),
        reason_codes=tuple(str(c) for c in decision.reason_codes),
        policy_name=policy_name,
        policy_version=policy_version,
        inputs=tuple(sorted(str(i) for i in inputs)),
        guardrail_scope=str(scope),
        guardrail_version=str(gversion),
        epoch=epoch,
        proposed_price=None if proposed is None else float(proposed),
    )


def read_decisions(decisions: Sequence[Any], config: tuple[Any, ...]) -> list[FairDecision]:
    """Read a batch of engine decisions, each stamped with ``config``.

    The same as ``dataclasses.replace(read_decision(d), config=config)`` for every decision,
    but an engine :class:`~pricing.engine.PriceDecision` (the only kind the serving engine
    returns) is read field by field without the duck typing, and the sorted inputs are
    computed once per distinct inputs tuple: warming the catalogue reads 100,000 decisions
    per epoch on the interpreter that serves requests.

    Raises
    ------
    FairshelfError
        When a decision of another type lacks a required field.
    """
    out: list[FairDecision] = []
    sorted_inputs: dict[tuple[str, ...], tuple[str, ...]] = {}
    # Few distinct lists of reason codes: one tuple each, shared by the pinned decisions.
    read_codes: dict[tuple[str, ...], tuple[str, ...]] = {}
    new = object.__new__
    for d in decisions:
        if type(d) is not PriceDecision:
            other = read_decision(d)
            fresh = new(FairDecision)
            fresh.__dict__.update(other.__dict__, config=config)
            out.append(fresh)
            continue
        inputs = sorted_inputs.get(d.inputs)
        if inputs is None:
            inputs = sorted_inputs[d.inputs] = tuple(sorted(str(i) for i in d.inputs))
        codes = read_codes.get(d.reason_codes)
        if codes is None:
            codes = read_codes[d.reason_codes] = tuple(map(str, d.reason_codes))
        # Filled like the engine fills a copied ItemState: the frozen dataclass __init__
        # (one object.__setattr__ per field) costs several times more than the reading.
        fair = new(FairDecision)
        fair.__dict__.update(
            item_id=str(d.item_id),
            final_price=float(d.final_price),
            base_price=float(d.base_price),
            adjustment=float(d.adjustment),
            reason_codes=codes,
            policy_name=str(d.policy),
            policy_version=str(d.policy_version),
            inputs=inputs,
            guardrail_scope=str(d.guardrail_scope),
            guardrail_version=str(d.guardrail_version),
            epoch=int(d.epoch),
            proposed_price=float(d.proposed_price),
            config=config,
        )
        out.append(fair)
    return out
