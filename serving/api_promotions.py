"""Request and response models of the promotion operations, shared by both transports.

Lenient like :mod:`serving.api_models`: types only; every rule (name pattern, public text,
window, no back-dating, names never reused) is checked once, in :mod:`pricing.promotions`.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from pricing.promotions import NAME_REGEX
from serving import contract as C

#: A promotion's name, as the path and QuotePrices' ``promotions`` carry it.
NAME: Final[C.Schema] = {"pattern": f"^{NAME_REGEX}$"}
# Public text: required and not blank.
_TEXT: Final[C.Schema] = {"minLength": 1, "pattern": r"\S"}
_REQUIRED_TIMESTAMP: Final[C.Schema] = {"format": "date-time"}


class PublishPromotionIn(BaseModel):
    """``PUT /v1/promotions/{name}`` / ``PublishPromotion`` (pricing role).

    The window is ``[starts_at, ends_at)``: it starts no earlier than now (no back-dating),
    ends after it starts and lasts at most 366 days. A name is never reused (409).
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=C.required("title", "description", "ends_at", "reason"),
    )

    title: str = Field(default="", json_schema_extra=_TEXT)
    description: str = Field(default="", json_schema_extra=_TEXT)
    starts_at: str = Field(
        default="", description="RFC 3339; default: now", json_schema_extra=C.TIMESTAMP
    )
    ends_at: str = Field(
        default="", description="RFC 3339; required", json_schema_extra=_REQUIRED_TIMESTAMP
    )
    reason: str = Field(
        default="",
        description="why (kept in the history and the audit log)",
        json_schema_extra=C.REASON,
    )


class EndPromotionIn(BaseModel):
    """``POST /v1/promotions/{name}/end`` / ``EndPromotion`` (pricing role)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=C.required("reason"))

    reason: str = Field(default="", json_schema_extra=C.REASON)


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
