"""Request and response models of the promotion operations, shared by both transports.

Lenient like :mod:`serving.api_models`: types only; every rule (name pattern, public text,
window, no back-dating, names never reused) is checked once, in :mod:`pricing.promotions`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PublishPromotionIn(BaseModel):
    """``PUT /v1/promotions/{name}`` / ``PublishPromotion`` (pricing role)."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    description: str = ""
    starts_at: str = Field(default="", description="RFC 3339; default: now")
    ends_at: str = Field(default="", description="RFC 3339; required")
    reason: str = Field(default="", description="why (kept in the history and the audit log)")


class EndPromotionIn(BaseModel):
    """``POST /v1/promotions/{name}/end`` / ``EndPromotion`` (pricing role)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""


class PromotionOut(BaseModel):
    """One published promotion and whether it runs now."""

    name: str
    title: str
    description: str
    starts_at: str
    ends_at: str
    running: bool


class PromotionChangeOut(BaseModel):
    """One version of the promotion store: who, when, why, and the promotion it touched."""

    version: int
    at: str
    author: str
    reason: str
    action: str
    promotion: PromotionOut


class PromotionsOut(BaseModel):
    """Every published promotion (newest start first), the ones running now, the version,
    and the latest changes."""

    promotions: list[PromotionOut]
    running: list[str]
    version: int
    history: list[PromotionChangeOut]
