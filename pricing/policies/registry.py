"""The policy registry: the one way a policy is loaded, and where rule G1 is enforced.

:func:`load_policy` checks the declared inputs of the policy class with
:func:`pricing.inputs.check_policy_inputs` before building it, so a policy that declares any
shopper-level input never gets an instance, let alone a quote.
"""

from __future__ import annotations

from typing import Any

from fairshelf.errors import InvalidArgument, NotFound
from pricing.inputs import check_policy_inputs
from pricing.policies.competitor_match import CompetitorMatchPolicy
from pricing.policies.elasticity_optimal import ElasticityOptimalPolicy
from pricing.policies.markdown import MarkdownPolicy
from pricing.policies.static import StaticPolicy
from pricing.policy import PricingPolicy

_REGISTRY: dict[str, type[PricingPolicy]] = {}


def register_policy(cls: type[PricingPolicy]) -> type[PricingPolicy]:
    """Add a policy class to the registry, refusing it if its inputs break rule G1.

    Raises
    ------
    PolicyRejected
        The class declares a shopper-level or unknown input.
    InvalidArgument
        Another class already holds the name.
    """
    check_policy_inputs(cls.name, cls.inputs)
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise InvalidArgument(f"policy name {cls.name!r} is already registered", field="name")
    _REGISTRY[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    """Names of every registered policy."""
    return sorted(_REGISTRY)


def load_policy(name: str, **params: Any) -> PricingPolicy:
    """Build a registered policy by name, re-checking its inputs (rule G1).

    Raises
    ------
    NotFound
        No policy has this name.
    PolicyRejected
        Its declared inputs are not all public.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise NotFound(f"unknown pricing policy {name!r}; known: {policy_names()}", field="policy")
    check_policy_inputs(cls.name, cls.inputs)
    return cls(**params)


for _cls in (StaticPolicy, MarkdownPolicy, ElasticityOptimalPolicy, CompetitorMatchPolicy):
    register_policy(_cls)
