"""Validation of recsys.types: every bad request names its field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fairshelf.errors import InvalidArgument
from recsys.types import Filters, RecentEvent, RecommendRequest, RequestContext


@pytest.mark.parametrize("user_id", ["", "   ", "x" * 300])
def test_bad_user_id_names_field(user_id: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        RecommendRequest(user_id=user_id)
    assert err.value.field == "user_id"


@pytest.mark.parametrize("k", [0, -1, 1001, True, 2.5])
def test_bad_k_names_field(k: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        RecommendRequest(user_id="u1", k=k)  # type: ignore[arg-type]
    assert err.value.field == "k"


def test_k_bounds_accepted() -> None:
    assert RecommendRequest(user_id="u1", k=1).k == 1
    assert RecommendRequest(user_id="u1", k=1000).k == 1000


def test_price_range_inverted_names_min_price() -> None:
    with pytest.raises(InvalidArgument) as err:
        Filters(min_price=10.0, max_price=5.0)
    assert err.value.field == "min_price"
    assert "min_price" in err.value.message


@pytest.mark.parametrize("price", [-1.0, float("nan"), float("inf")])
def test_bad_price_names_field(price: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        Filters(max_price=price)
    assert err.value.field == "max_price"


def test_blank_category_rejected_unknown_accepted() -> None:
    with pytest.raises(InvalidArgument) as err:
        Filters(include_categories=("",))
    assert err.value.field == "include_categories"
    assert Filters(include_categories=("no/such/category",)).restricts_items


def test_context_fields_validated() -> None:
    with pytest.raises(InvalidArgument) as err:
        RequestContext(category=" ")
    assert err.value.field == "context.category"


def test_recent_event_validation() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidArgument) as err:
        RecentEvent("i1", "like", now)
    assert err.value.field == "event_type"
    with pytest.raises(InvalidArgument) as err:
        RecentEvent("i1", "view", datetime(2026, 1, 1))
    assert err.value.field == "timestamp"
    with pytest.raises(InvalidArgument) as err:
        RecentEvent("i1", "purchase", now, quantity=0)
    assert err.value.field == "quantity"
