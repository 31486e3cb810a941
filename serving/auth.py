"""API keys -> roles, and which role may call which operation.

Keys are kept only as SHA-256 digests and compared with :func:`hmac.compare_digest` against
every configured key (no early exit), so the time taken does not reveal how much of a key was
right or which key matched. Neither keys nor their digests are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from fairshelf.errors import PermissionDenied, Unauthenticated
from serving.settings import Role

_STOREFRONT_OPS: Final[frozenset[str]] = frozenset(
    {"Recommend", "SimilarItems", "QuotePrices", "ExplainQuote", "LogEvents",
     "SetPersonalization", "GetModelInfo", "GetQuoteReceipt", "ListPromotions"}
)  # fmt: skip
_PRICING_OPS: Final[frozenset[str]] = frozenset(
    {"QuotePrices", "ExplainQuote", "GetGuardrails", "PutGuardrails", "RollbackGuardrails",
     "DeleteGuardrails", "GetGuardrailHistory", "GetEffectiveGuardrail", "GetAuditReport",
     "GetModelInfo", "SimilarItems", "GetQuoteReceipt", "GetExperimentReport",
     # The console's own reads and the guardrail dry run (serving/console/).
     "PreviewGuardrails", "GetItemPrices", "VerifyAuditChain", "ExportAuditLog",
     "GetConsoleOverview", "ListPromotions", "PublishPromotion", "EndPromotion"}
)  # fmt: skip

#: Operation name -> roles allowed to call it. Admin may call everything.
OPERATIONS: Final[dict[str, frozenset[Role]]] = {
    op: frozenset(
        {Role.ADMIN}
        | ({Role.STOREFRONT} if op in _STOREFRONT_OPS else set())
        | ({Role.PRICING} if op in _PRICING_OPS else set())
    )
    for op in sorted(_STOREFRONT_OPS | _PRICING_OPS)
}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Authenticator:
    """Resolves an API key to a role and checks the role against an operation.

    Parameters
    ----------
    api_keys:
        Key -> role, from the settings.
    enabled:
        When ``False`` every caller is admin (local development).
    """

    def __init__(self, api_keys: Mapping[str, Role], *, enabled: bool = True) -> None:
        self._keys: tuple[tuple[bytes, Role], ...] = tuple(
            (_digest(k), Role(r)) for k, r in api_keys.items()
        )
        self.enabled = enabled

    def __repr__(self) -> str:
        return f"Authenticator(keys={len(self._keys)}, enabled={self.enabled})"

    def authenticate(self, api_key: str | None) -> Role:
        """The role of ``api_key``.

        Raises
        ------
        Unauthenticated
            If no key was given or it matches no configured key.
        """
        if not self.enabled:
            return Role.ADMIN
        if not api_key:
            raise Unauthenticated("missing API key (header x-api-key)", field="x-api-key")
        presented = _digest(api_key)
        found: Role | None = None
        for digest, role in self._keys:
            # Every key is compared, even after a match.
            if hmac.compare_digest(presented, digest):
                found = role
        if found is None:
            raise Unauthenticated("invalid API key", field="x-api-key")
        return found

    def authorize(self, role: Role, operation: str) -> None:
        """Raise unless ``role`` may call ``operation``.

        Raises
        ------
        PermissionDenied
            Naming the operation and the roles that may call it.
        """
        allowed = OPERATIONS.get(operation)
        if allowed is None:
            raise PermissionDenied(f"unknown operation {operation!r}")
        if role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDenied(
                f"role {role.value!r} may not call {operation}; allowed roles: {names}"
            )

    def check(self, api_key: str | None, operation: str) -> Role:
        """Authenticate then authorize; returns the caller's role."""
        role = self.authenticate(api_key)
        self.authorize(role, operation)
        return role


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key in ``x-api-key`` or ``authorization: Bearer <key>`` (lower-case names)."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None
