"""serving.grpc_convert: a gRPC request reaches the service as the model its JSON twin gives."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import ParseDict

from proto.fairshelf.v1 import recommendations_pb2
from recsys.types import RecommendedItem
from serving.api_models import RecommendIn, RecommendResult
from serving.grpc_convert import recommend_in, recommend_pb

# Bodies as a storefront sends them: proto3 JSON names are the JSON body's names here.
BODIES: list[dict[str, Any]] = [
    {"user_id": "U1"},
    {"user_id": "U1", "k": 7},
    {"user_id": "U1", "k": 7, "personalized": False, "device": "ios", "include_prices": True},
    {"user_id": "U1", "context": {"surface": "pdp", "item_id": "I9"}},
    {"user_id": "U1", "context": {"category": "c01"}},
    {
        "user_id": "U1",
        "filters": {
            "exclude_purchased": False,
            "include_categories": ["c01", "c02/s1"],
            "exclude_categories": ["c03"],
            "min_price": 2.5,
            "max_price": 40.0,
        },
    },
    {"user_id": "U1", "filters": {"in_stock_only": False}},
    {"user_id": "U1", "personalized": True},
]


@pytest.mark.parametrize("body", BODIES)
def test_request_equals_its_json_body(body: dict[str, Any]) -> None:
    msg = ParseDict(body, recommendations_pb2.RecommendRequest())
    got = recommend_in(msg)
    assert got == RecommendIn.model_validate(body)
    assert got.model_dump() == RecommendIn.model_validate(body).model_dump()


def test_empty_parts_mean_their_defaults() -> None:
    bare = recommend_in(recommendations_pb2.RecommendRequest(user_id="U1"))
    spelled = recommendations_pb2.RecommendRequest(user_id="U1")
    spelled.context.SetInParent()
    spelled.filters.SetInParent()
    assert recommend_in(spelled) == bare
    assert bare.context.surface == "home"
    assert bare.filters.exclude_purchased and bare.filters.in_stock_only
    assert bare.k is None and bare.personalized is None and bare.device is None


def test_response_holds_every_item_in_order() -> None:
    items = tuple(RecommendedItem(f"I{i}", 1.0 - i / 8, "profile") for i in range(5))
    out = RecommendResult(items, {}, "b1", "control", True, "trained_vector", "rid", "EUR")
    msg = recommend_pb(out)
    assert [(i.item_id, i.score, i.reason) for i in msg.items] == [
        (it.item_id, it.score, it.reason) for it in items
    ]
    assert not any(i.HasField("quote") for i in msg.items)
    assert (msg.model_version, msg.variant, msg.personalized, msg.strategy, msg.request_id) == (
        "b1",
        "control",
        True,
        "trained_vector",
        "rid",
    )
