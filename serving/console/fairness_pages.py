"""The fairness page: the audit report (the API's GetAuditReport) as a page, loyal vs new
shoppers per category, programs and their use, violations, chain verification, export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pricing.fairness.audit_export import write_export
from serving.console.charts import grouped_bars
from serving.console.routes import SECURITY_HEADERS, ConsolePages
from serving.console.session import Session
from serving.service import CallContext


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    """Register the fairness pages on ``router``."""

    def report_page(
        request: Request, session: Session, call: CallContext, **extra: Any
    ) -> Response:
        q = request.query_params
        view = pages.data.fairness(
            call, q.get("since"), q.get("until"), fresh=bool(extra.pop("fresh", q.get("fresh")))
        )
        report, extras = view.report, view.extras
        chart = grouped_bars(
            extras["categories"],
            {
                "existing shoppers": extras["series"]["existing"],
                "new shoppers": extras["series"]["new"],
            },
            "Mean price paid as % of list price, existing vs new shoppers, per category",
            unit=" %",
        )
        parts = pages.data.parts()
        programs = parts.quotes.programs.programs if parts.quotes is not None else []
        return pages.render(
            request,
            "fairness.html",
            session,
            active="fairness",
            report=report,
            extras=extras,
            computed_at=view.computed_at,
            chart=chart,
            programs=programs,
            chain=pages.data.chain,
            since=q.get("since") or "",
            until=q.get("until") or "",
            **extra,
        )

    @router.get("/fairness")
    def fairness(request: Request) -> Response:
        return pages.page(request, lambda s, c: report_page(request, s, c))

    @router.post("/fairness/verify")
    async def verify(request: Request) -> Response:
        def build(session: Session, call: CallContext, _form: dict[str, str]) -> Response:
            status = pages.data.verify_chain(call)
            return report_page(request, session, call, verified=status, fresh=True)

        return await pages.write(request, build)

    @router.get("/fairness/export")
    def export(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            def run(_role: object) -> bytes:
                audit = pages.data.parts().audit
                with tempfile.TemporaryDirectory(prefix="fairshelf-export-") as tmp:
                    path = Path(tmp) / "audit-log.jsonl"
                    write_export(audit.records(), audit.anchor(), path)
                    return path.read_bytes()

            body = pages.service.perform("ExportAuditLog", call, run)
            headers = {
                **SECURITY_HEADERS,
                "content-disposition": 'attachment; filename="fairshelf-audit-log.jsonl"',
            }
            return Response(body, media_type="application/x-ndjson", headers=headers)

        return pages.page(request, build)
