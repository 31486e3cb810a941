"""serving.auth: keys to roles, role to operations, no key in any message."""

from __future__ import annotations

import pytest

from fairshelf.errors import PermissionDenied, Unauthenticated
from serving.auth import OPERATIONS, Authenticator, api_key_from_headers
from serving.settings import Role

SHOP = "sk-storefront-0123456789"
PRICE = "sk-pricing-0123456789ab"
ADMIN = "sk-admin-0123456789abcd"


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator({SHOP: Role.STOREFRONT, PRICE: Role.PRICING, ADMIN: Role.ADMIN})


def test_keys_resolve_to_roles(auth: Authenticator) -> None:
    assert auth.authenticate(SHOP) is Role.STOREFRONT
    assert auth.authenticate(PRICE) is Role.PRICING
    assert auth.authenticate(ADMIN) is Role.ADMIN


@pytest.mark.parametrize("key", [None, "", "sk-storefront-012345678", SHOP + "x", SHOP.upper()])
def test_missing_or_wrong_key_is_unauthenticated(auth: Authenticator, key: str | None) -> None:
    with pytest.raises(Unauthenticated) as err:
        auth.authenticate(key)
    assert SHOP not in str(err.value)
    if key:
        assert key not in str(err.value)


def test_guardrail_writes_need_pricing_or_admin(auth: Authenticator) -> None:
    with pytest.raises(PermissionDenied, match="PutGuardrails"):
        auth.check(SHOP, "PutGuardrails")
    assert auth.check(PRICE, "PutGuardrails") is Role.PRICING
    assert auth.check(ADMIN, "PutGuardrails") is Role.ADMIN


def test_storefront_cannot_read_audit_and_pricing_cannot_log_events(auth: Authenticator) -> None:
    with pytest.raises(PermissionDenied):
        auth.check(SHOP, "GetAuditReport")
    with pytest.raises(PermissionDenied):
        auth.check(PRICE, "LogEvents")
    assert auth.check(SHOP, "Recommend") is Role.STOREFRONT


def test_admin_may_call_every_operation(auth: Authenticator) -> None:
    for op in OPERATIONS:
        auth.check(ADMIN, op)


def test_unknown_operation_is_denied(auth: Authenticator) -> None:
    with pytest.raises(PermissionDenied):
        auth.check(ADMIN, "DropTables")


def test_disabled_auth_is_admin() -> None:
    assert Authenticator({}, enabled=False).authenticate(None) is Role.ADMIN


def test_repr_and_headers_hide_keys(auth: Authenticator) -> None:
    assert SHOP not in repr(auth)
    assert api_key_from_headers({"x-api-key": SHOP}) == SHOP
    assert api_key_from_headers({"authorization": f"Bearer {SHOP}"}) == SHOP
    assert api_key_from_headers({"authorization": "Basic abc"}) is None
