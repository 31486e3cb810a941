"""Proto <-> model conversions of the promotion operations (the rest is in grpc_convert)."""

from __future__ import annotations

from proto.fairshelf.v1 import admin_pb2
from serving.api_promotions import (
    EndPromotionIn,
    PromotionChangeOut,
    PromotionOut,
    PromotionsOut,
    PublishPromotionIn,
)


def publish_promotion_in(req: admin_pb2.PublishPromotionRequest) -> PublishPromotionIn:
    """``PublishPromotionRequest`` -> :class:`PublishPromotionIn` (the name travels apart)."""
    return PublishPromotionIn(
        title=req.title,
        description=req.description,
        starts_at=req.starts_at,
        ends_at=req.ends_at,
        reason=req.reason,
    )


def end_promotion_in(req: admin_pb2.EndPromotionRequest) -> EndPromotionIn:
    """``EndPromotionRequest`` -> :class:`EndPromotionIn`."""
    return EndPromotionIn(reason=req.reason)


def promotion_pb(out: PromotionOut) -> admin_pb2.Promotion:
    """:class:`PromotionOut` -> ``Promotion``."""
    return admin_pb2.Promotion(**out.model_dump())


def promotion_change_pb(out: PromotionChangeOut) -> admin_pb2.PromotionChange:
    """:class:`PromotionChangeOut` -> ``PromotionChange``."""
    return admin_pb2.PromotionChange(
        version=out.version,
        at=out.at,
        author=out.author,
        reason=out.reason,
        action=out.action,
        promotion=promotion_pb(out.promotion),
    )


def promotions_pb(out: PromotionsOut) -> admin_pb2.Promotions:
    """:class:`PromotionsOut` -> ``Promotions``."""
    return admin_pb2.Promotions(
        promotions=[promotion_pb(p) for p in out.promotions],
        running=out.running,
        version=out.version,
        history=[promotion_change_pb(c) for c in out.history],
    )
