"""Request and response models of the service object, shared by both transports.

The HTTP app parses JSON bodies into these models (and publishes them in the OpenAPI
document); the gRPC server builds the same models from proto messages. Models are lenient on
purpose: types only, no range rules. Every semantic check (``k`` in 1..1000, a non-empty
``user_id``, known item ids) happens once, in :mod:`serving.service` and the core, so both
transports reject the same requests with the same code, message and field; the OpenAPI
document states the same rules, from :mod:`serving.contract`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pricing.fairness.quotes import Quote
from recsys.types import RecommendedItem
from serving import contract as C
from serving.api_promotions import NAME as PROMOTION_NAME


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer: 3 and 3.0 alike (a client may send either), never "3" or true.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class _In(BaseModel):
    # Strict: a string is not a number and "yes" is not a boolean, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


class RecommendContextIn(_In):
    """Where the list will be shown."""

    # Empty means absent, as over gRPC.
    surface: str = Field(default="home", json_schema_extra=C.OPTIONAL_ID)
    category: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_ID)
    item_id: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_ID)


class RecommendFiltersIn(_In):
    """Candidate filters; category paths match themselves and everything below them."""

    exclude_purchased: bool = True
    in_stock_only: bool = True
    include_categories: list[str] = Field(default_factory=list, json_schema_extra=C.ID_LIST)
    exclude_categories: list[str] = Field(default_factory=list, json_schema_extra=C.ID_LIST)
    min_price: float | None = Field(
        default=None, description="at most max_price", json_schema_extra=C.NON_NEGATIVE
    )
    max_price: float | None = Field(default=None, json_schema_extra=C.NON_NEGATIVE)


class RecommendIn(_In):
    """``POST /v1/recommend`` / ``Recommend``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("user_id"))

    user_id: str = Field(default="", json_schema_extra=C.ID)
    k: JsonInt | None = Field(
        default=None, description="1..1000, default 20", json_schema_extra=C.K
    )
    context: RecommendContextIn = Field(default_factory=RecommendContextIn)
    filters: RecommendFiltersIn = Field(default_factory=RecommendFiltersIn)
    personalized: bool | None = Field(
        default=None, description="false: a non-personalized list for this call"
    )
    include_prices: bool = False
    device: str | None = Field(
        default=None,
        description="device class (ios, android, web, app); only the audit group of quotes",
    )


class DiscountOut(BaseModel):
    """A public discount program applied to a quote, on its own line (rule G4)."""

    program: str
    amount: float
    title: str
    public_text: str


class QuoteOut(BaseModel):
    """One price quote."""

    quote_id: str
    item_id: str
    final_price: float
    base_price: float
    adjustment: float
    reason_codes: list[str]
    policy_version: str
    guardrail_version: str
    discounts: list[DiscountOut]
    price_epoch: str
    currency: str
    list_price: float


def quote_json(q: Quote, currency: str) -> dict[str, Any]:
    """A guarded quote as JSON, shaped as :class:`QuoteOut`.

    Built directly rather than validated into a model: every field is already a typed value
    of the guard's own :class:`~pricing.fairness.quotes.Quote`, and the validation cost 50-100
    µs per 20 quotes, a quarter of a guarded QuotePrices call.
    """
    return {
        "quote_id": q.quote_id,
        "item_id": q.item_id,
        "final_price": float(q.final_price),
        "base_price": float(q.base_price),
        "adjustment": float(q.adjustment),
        "reason_codes": list(q.reason_codes),
        "policy_version": f"{q.policy_name}@{q.policy_version}",
        "guardrail_version": f"{q.guardrail_scope}@{q.guardrail_version}",
        "discounts": [
            {
                "program": line.program_id,
                "amount": float(line.amount),
                "title": line.title,
                "public_text": line.public_text,
            }
            for line in q.discount_lines
        ],
        "price_epoch": str(q.epoch),
        "currency": currency,
        "list_price": float(q.list_price),
    }


@dataclass(frozen=True, slots=True)
class QuotesResult:
    """The hot-path form of :class:`QuotePricesOut`: the guard's quotes as they come, turned
    into JSON (:meth:`to_json`) or a proto message without a model per quote."""

    quotes: tuple[Quote, ...]
    currency: str
    request_id: str

    def to_json(self) -> dict[str, Any]:
        """The JSON body, shaped as :class:`QuotePricesOut`."""
        return {
            "quotes": [quote_json(q, self.currency) for q in self.quotes],
            "request_id": self.request_id,
        }


class RecommendedItemOut(BaseModel):
    """One ranked item."""

    item_id: str
    score: float
    reason: str
    quote: QuoteOut | None = None


class RecommendOut(BaseModel):
    """A ranked list with the model version and experiment variant that produced it."""

    items: list[RecommendedItemOut]
    model_version: str
    variant: str
    personalized: bool
    strategy: str
    request_id: str


@dataclass(frozen=True, slots=True)
class RecommendResult:
    """The hot-path form of :class:`RecommendOut`: recommender items as they come, turned into
    JSON (:meth:`to_json`) or a proto message without building a model per item."""

    items: tuple[RecommendedItem, ...]
    quotes: Mapping[str, Quote]
    model_version: str
    variant: str
    personalized: bool
    strategy: str
    request_id: str
    currency: str

    def to_json(self) -> dict[str, Any]:
        """The JSON body, shaped as :class:`RecommendOut` (``quote`` only when present)."""
        items: list[dict[str, Any]] = []
        for it in self.items:
            row: dict[str, Any] = {
                "item_id": str(it.item_id),
                "score": float(it.score),
                "reason": it.reason,
            }
            quote = self.quotes.get(it.item_id)
            if quote is not None:
                row["quote"] = quote_json(quote, self.currency)
            items.append(row)
        return {
            "items": items,
            "model_version": self.model_version,
            "variant": self.variant,
            "personalized": self.personalized,
            "strategy": self.strategy,
            "request_id": self.request_id,
        }


class SimilarItemsOut(BaseModel):
    """Items similar to one item."""

    items: list[RecommendedItemOut]
    model_version: str
    request_id: str


class ShopperIn(_In):
    """What the storefront knows of the shopper: only for published discount programs
    (reduce-only) and audit groups, never an input to a price."""

    user_id: str = ""
    member: bool = False
    coupon_codes: list[str] = Field(default_factory=list)
    orders: JsonInt = Field(default=0, json_schema_extra=C.NON_NEGATIVE)
    tenure_days: float = Field(default=0.0, json_schema_extra=C.NON_NEGATIVE)
    device: str = ""


class QuotePricesIn(_In):
    """``POST /v1/prices/quote`` / ``QuotePrices``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("item_ids"))

    item_ids: list[str] = Field(default_factory=list, json_schema_extra=C.QUOTE_ITEMS)
    shopper: ShopperIn | None = None
    region: str | None = Field(default=None, json_schema_extra=C.REGION)
    promotions: list[str] = Field(
        default_factory=list,
        description="names of running published promotions (GET /v1/promotions); the "
        "running ones apply whether named or not, naming another is refused",
        json_schema_extra={"items": {"type": "string", **PROMOTION_NAME}},
    )


class QuotePricesOut(BaseModel):
    """Quotes in request order."""

    quotes: list[QuoteOut]
    request_id: str


class ExplainQuoteOut(BaseModel):
    """Which inputs, rule and guardrail produced a quote (rule G6)."""

    quote_id: str
    explanation: dict[str, Any]


class QuoteReceiptOut(BaseModel):
    """A quote's receipt: leaf, inclusion proof, batch record, chain, checkpoint (rule G5)."""

    quote_id: str
    receipt: dict[str, Any]


class EventIn(_In):
    """One event of the data contract (SPEC §3)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=C.required("user_id", "item_id", "event_type", "unit_price"),
    )

    event_id: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_ID)
    user_id: str | None = Field(default=None, json_schema_extra=C.REQUIRED_ID)
    item_id: str | None = Field(default=None, json_schema_extra=C.REQUIRED_ID)
    event_type: str | None = Field(default=None, json_schema_extra=C.EVENT_TYPE)
    timestamp: str | None = Field(
        default=None,
        description="RFC 3339; default: now; at most a few minutes ahead of the server's clock",
        json_schema_extra=C.TIMESTAMP,
    )
    quantity: JsonInt | None = Field(default=None, json_schema_extra=C.QUANTITY)
    unit_price: float | None = Field(default=None, json_schema_extra=C.REQUIRED_PRICE)
    session_id: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_ID)
    channel: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_LABEL)
    region: str | None = Field(default=None, json_schema_extra=C.OPTIONAL_LABEL)


class LogEventsIn(_In):
    """``POST /v1/events`` / ``LogEvents``: 1..1000 events, written all or none."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("events"))

    events: list[EventIn] = Field(default_factory=list, json_schema_extra=C.EVENTS)


class LogEventsOut(BaseModel):
    """Events newly written and repeats of stored event ids."""

    accepted: int
    duplicates: int
    request_id: str


class PersonalizationIn(_In):
    """``PUT /v1/shoppers/{user_id}/personalization``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("enabled"))

    enabled: bool | None = Field(default=None, json_schema_extra=C.REQUIRED_BOOL)


class PersonalizationOut(BaseModel):
    """The stored choice."""

    user_id: str
    enabled: bool
    updated_at: str


class GuardrailValuesIn(_In):
    """Guardrail fields; unset fields inherit from the enclosing scope."""

    floor: float | None = Field(default=None, json_schema_extra=C.POSITIVE)
    ceiling: float | None = Field(default=None, json_schema_extra=C.POSITIVE)
    min_margin: float | None = Field(default=None, json_schema_extra=C.NON_NEGATIVE)
    max_change_pct: float | None = Field(default=None, json_schema_extra=C.FRACTION)
    price_ending: str | None = Field(
        default=None,
        description="cents every price ends in, e.g. '0.99'",
        json_schema_extra=C.PRICE_ENDING,
    )
    objective: str | None = Field(default=None, json_schema_extra=C.OBJECTIVE)


class PutGuardrailsIn(_In):
    """``PUT /v1/guardrails/{scope}``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("reason"))

    values: GuardrailValuesIn = Field(default_factory=GuardrailValuesIn)
    reason: str = Field(default="", json_schema_extra=C.REASON)
    expected_version: JsonInt | None = None


class GuardrailsOut(BaseModel):
    """The guardrails of one scope and their version."""

    scope: str
    values: GuardrailValuesIn
    version: int
    updated_by: str
    updated_at: str
    reason: str


class RollbackGuardrailsIn(_In):
    """``POST /v1/guardrails/rollback``: restore an older version as a new one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=C.required("version", "reason"))

    version: JsonInt | None = Field(default=None, json_schema_extra=C.VERSION)
    reason: str = Field(default="", json_schema_extra=C.REASON)
    expected_version: JsonInt | None = None


class DeleteGuardrailsIn(_In):
    """``DELETE /v1/guardrails/{scope}`` (query parameters): remove the rule of one scope."""

    reason: str = ""
    expected_version: JsonInt | None = None


class GuardrailChangeOut(BaseModel):
    """One version of the guardrail set: who made it, when, why, and the field-level diff."""

    version: int
    at: str
    author: str
    reason: str
    action: str
    scope: str
    diff: list[dict[str, Any]]


class GuardrailHistoryOut(BaseModel):
    """Guardrail changes, newest first, and the version in force."""

    changes: list[GuardrailChangeOut]
    version: int


class EffectiveGuardrailOut(BaseModel):
    """The guardrail in force for one item, with the scope each field came from."""

    item_id: str
    category: str
    version: int
    scope: str
    floor: float | None = None
    ceiling: float | None = None
    min_ratio: float | None = None
    max_ratio: float | None = None
    min_margin: float | None = None
    max_change_pct: float | None = None
    price_ending: str | None = None
    objective: str
    sources: dict[str, str]


class AuditReportOut(BaseModel):
    """The fairness audit over the quote log and the audit chain."""

    report: dict[str, Any]


class ExperimentReportOut(BaseModel):
    """The readout of one experiment (the JSON form of ``fairshelf experiments report``)."""

    report: dict[str, Any]


class ModelInfoOut(BaseModel):
    """The bundle being served."""

    model_version: str
    bundle_path: str
    trained_at: str
    loaded_at: str
    n_items: int
    n_users: int
    variants: list[str]
    manifest: dict[str, Any]


class ErrorDetail(BaseModel):
    """The body of every HTTP error (``{"error": {...}}``)."""

    code: str
    message: str
    field: str | None
    request_id: str


class ErrorOut(BaseModel):
    """Error envelope."""

    error: ErrorDetail
