"""Promotion pages: what runs, what is scheduled and what ended, with every change (who, when,
why); the publish form and the end button.

Publishing and ending go through the API's own operations (``PublishPromotion``,
``EndPromotion``) with the API's request models, so every rule (name pattern, public text,
window, no back-dating, names never reused) is checked once, by the pricing core, and its
message is shown next to the field it names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from fairshelf.errors import FairshelfError
from serving.api_promotions import EndPromotionIn, PromotionOut, PromotionsOut, PublishPromotionIn
from serving.console.routes import PREFIX, SECURITY_HEADERS, ConsolePages, int_param
from serving.console.session import Session
from serving.errors import status_for
from serving.service import CallContext

#: The publish form's fields, in order.
FORM_FIELDS: Final[tuple[str, ...]] = (
    "name",
    "title",
    "description",
    "starts_at",
    "ends_at",
    "reason",
)
MAX_VERSION: Final[int] = 2**31 - 1
# What a browser's datetime-local field sends: a wall time with no offset.
_LOCAL_TIME: Final[re.Pattern[str]] = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def rfc3339_of(value: str) -> str:
    """A form's time as the API takes it: a datetime-local value is read as UTC.

    Anything else (an RFC 3339 time with its offset, or a malformed value) is passed on as
    typed, for the API's own parser to accept or name.
    """
    value = value.strip()
    if _LOCAL_TIME.fullmatch(value):
        return value + (":00Z" if value.count(":") == 1 else "Z")
    return value


def body_from_form(form: dict[str, str]) -> PublishPromotionIn:
    """The API body a publish form stands for (types only; the service checks the rules)."""
    return PublishPromotionIn(
        title=form.get("title", ""),
        description=form.get("description", ""),
        starts_at=rfc3339_of(form.get("starts_at", "")),
        ends_at=rfc3339_of(form.get("ends_at", "")),
        reason=form.get("reason", ""),
    )


def state_of(p: PromotionOut, now: datetime) -> str:
    """``running``, ``scheduled``, ``withdrawn`` (ended before it started) or ``ended``."""
    if p.running:
        return "running"
    starts, ends = datetime.fromisoformat(p.starts_at), datetime.fromisoformat(p.ends_at)
    if ends <= starts:
        return "withdrawn"
    return "scheduled" if starts > now else "ended"


def when(value: str) -> str:
    """An RFC 3339 time of the API as a short UTC wall time (to the second)."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _field_of(exc: FairshelfError) -> str:
    name = (exc.field or "").split(".")[-1]
    return name if name in FORM_FIELDS else "_form"


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    """Register the promotion pages on ``router``."""

    def listing(
        request: Request,
        session: Session,
        call: CallContext,
        *,
        status: int = 200,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        out: PromotionsOut = pages.service.list_promotions(call)
        now = datetime.now(UTC)
        groups: dict[str, list[PromotionOut]] = {"running": [], "scheduled": [], "ended": []}
        states = {}
        for p in out.promotions:
            states[p.name] = state_of(p, now)
            groups["ended" if states[p.name] == "withdrawn" else states[p.name]].append(p)
        versions: dict[str, list[Any]] = {}
        for change in out.history:
            versions.setdefault(change.promotion.name, []).append(change)
        form = form or {}
        # A browser blanks a datetime-local field holding anything else: what was typed (an
        # RFC 3339 time, a typo) comes back in a text field instead.
        typed = {f: (form.get(f) or "").strip() for f in ("starts_at", "ends_at")}
        time_types = {
            f: "datetime-local" if not v or _LOCAL_TIME.fullmatch(v) else "text"
            for f, v in typed.items()
        }
        q = request.query_params
        return pages.render(
            request,
            "promotions.html",
            session,
            status=status,
            active="promotions",
            book=out,
            groups=groups,
            states=states,
            versions=versions,
            form=form,
            time_types=time_types,
            when=when,
            errors=errors or {},
            fields=FORM_FIELDS,
            saved=int_param(q.get("saved"), "saved", 0, 0, MAX_VERSION),
            **extra,
        )

    @router.get("/promotions")
    def promotions(request: Request) -> Response:
        return pages.page(request, lambda s, c: listing(request, s, c))

    def done(version: int) -> Response:
        resp = RedirectResponse(f"{PREFIX}/promotions?saved={version}", status_code=303)
        resp.headers.update(SECURITY_HEADERS)
        return resp

    @router.post("/promotions/publish")
    async def publish(request: Request) -> Response:
        def build(session: Session, call: CallContext, form: dict[str, str]) -> Response:
            name = form.get("name", "").strip()
            try:
                out = pages.service.publish_promotion(call, name, body_from_form(form))
            except FairshelfError as exc:
                status = status_for(exc).http_status
                if status >= 500 or status in (401, 403):
                    raise
                return listing(
                    request, session, call, status=status, form=form,
                    errors={_field_of(exc): exc.message},
                )  # fmt: skip
            return done(out.version)

        return await pages.write(request, build)

    @router.post("/promotions/end")
    async def end(request: Request) -> Response:
        def build(session: Session, call: CallContext, form: dict[str, str]) -> Response:
            name = form.get("name", "").strip()
            try:
                out = pages.service.end_promotion(
                    call, name, EndPromotionIn(reason=form.get("reason", ""))
                )
            except FairshelfError as exc:
                status = status_for(exc).http_status
                if status >= 500 or status in (401, 403):
                    raise
                return listing(
                    request, session, call, status=status, end_name=name, end_error=exc.message
                )
            return done(out.version)

        return await pages.write(request, build)
