"""Item pages: find an item by id or title, its list price per epoch with the guardrail band,
its latest quotes, and a quote's explanation (rule G6, the API's ExplainQuote)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from serving.console.charts import price_band_chart
from serving.console.routes import PREFIX, SECURITY_HEADERS, ConsolePages, int_param
from serving.console.session import Session
from serving.service import CallContext


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    """Register the item and quote pages on ``router``."""

    @router.get("/items")
    def items(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            q = (request.query_params.get("q") or "").strip()
            found = pages.data.search_items(call, q) if q else []
            # An exact id goes straight to its page.
            if len(found) == 1 and found[0][0] == q:
                resp = RedirectResponse(f"{PREFIX}/items/{found[0][0]}", status_code=303)
                resp.headers.update(SECURITY_HEADERS)
                return resp
            return pages.render(request, "items.html", session, active="items", q=q, found=found)

        return pages.page(request, build)

    @router.get("/items/{item_id}")
    def item(request: Request, item_id: str) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            days = int_param(request.query_params.get("days"), "days", 7, 1, 90)
            data = pages.data.item(call, item_id, days)
            chart = price_band_chart(
                data.labels,
                data.prices,
                data.floor,
                data.ceiling,
                f"List price of {item_id} per price epoch, last {days} days, with its band",
            )
            return pages.render(
                request, "item.html", session, active="items", item=data, days=days, chart=chart
            )

        return pages.page(request, build)

    @router.get("/quotes")
    def find_quote(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            quote_id = (request.query_params.get("quote_id") or "").strip()
            resp = RedirectResponse(
                f"{PREFIX}/quotes/{quote_id}" if quote_id else f"{PREFIX}/items", status_code=303
            )
            resp.headers.update(SECURITY_HEADERS)
            return resp

        return pages.page(request, build)

    @router.get("/quotes/{quote_id}")
    def quote(request: Request, quote_id: str) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            out = pages.service.explain_quote(call, quote_id)
            return pages.render(
                request, "quote.html", session, active="items", quote_id=quote_id,
                explanation=out.explanation,
            )  # fmt: skip

        return pages.page(request, build)
