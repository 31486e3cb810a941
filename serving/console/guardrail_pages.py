"""Guardrail pages: scopes and versions, the edit form with its dry-run preview, history with
diffs and rollback, and an item's effective guardrail.

Saving goes through the API's own operations (``PutGuardrails``, ``RollbackGuardrails``) with
the version the form was read at, so a change made meanwhile by someone else is a conflict
shown with that change, never a silent overwrite.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from fairshelf.errors import FailedPrecondition, FairshelfError, InvalidArgument
from pricing.guardrail_rules import RULE_FIELDS
from serving.api_models import GuardrailValuesIn, PutGuardrailsIn, RollbackGuardrailsIn
from serving.console.charts import histogram
from serving.console.routes import PREFIX, SECURITY_HEADERS, ConsolePages, int_param
from serving.console.session import Session
from serving.service import CallContext

#: The fields of the form, in order (the API's guardrail values).
FORM_FIELDS: Final[tuple[str, ...]] = tuple(GuardrailValuesIn.model_fields)
MAX_VERSION: Final[int] = 2**31 - 1


def body_from_form(form: dict[str, str]) -> tuple[PutGuardrailsIn | None, dict[str, str]]:
    """The API body a form stands for, or the message of each bad field.

    Empty fields are unset (they inherit from broader scopes). Types are checked by the API's
    own model; ranges and consistency by the same validation a save runs.
    """
    errors: dict[str, str] = {}
    raw: dict[str, Any] = {f: (form.get(f) or "").strip() or None for f in FORM_FIELDS}
    try:
        # A form's fields are text: numbers are read from it (the API's JSON is strict).
        values = GuardrailValuesIn.model_validate(raw, strict=False)
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else "values"
            errors.setdefault(name, f"{name}: {err.get('msg', 'invalid value')}")
        values = None
    try:
        expected = int_param(form.get("expected_version"), "expected_version", 0, 0, MAX_VERSION)
    except InvalidArgument as exc:
        errors["expected_version"] = exc.message
        expected = 0
    if values is None or errors:
        return None, errors
    return PutGuardrailsIn(
        values=values, reason=form.get("reason", ""), expected_version=expected
    ), errors


def _field_of(exc: FairshelfError) -> str:
    name = (exc.field or "").split(".")[-1]
    return name if name in (*FORM_FIELDS, "reason", "scope") else "_form"


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    """Register the guardrail pages on ``router``."""

    def listing(request: Request, session: Session, call: CallContext, **extra: Any) -> Response:
        q = request.query_params
        page = int_param(q.get("page"), "page", 1, 1, 10**9)
        current, last = pages.data.guardrail_set(call)
        changes, pages_n = pages.data.history_page(call, page)
        item = (q.get("item") or "").strip()
        effective = effective_error = None
        if item:
            try:
                effective = pages.service.effective_guardrail(call, item)
            except FairshelfError as exc:
                effective_error = exc.message
        return pages.render(
            request,
            "guardrails.html",
            session,
            status=extra.pop("status", 200),
            active="guardrails",
            current=current,
            last=last,
            changes=changes,
            page=min(page, pages_n),
            pages_n=pages_n,
            item=item,
            effective=effective,
            effective_error=effective_error,
            rule_fields=RULE_FIELDS,
            saved=int_param(q.get("saved"), "saved", 0, 0, MAX_VERSION),
            **extra,
        )

    @router.get("/guardrails")
    def guardrails(request: Request) -> Response:
        return pages.page(request, lambda s, c: listing(request, s, c))

    def edit_page(
        request: Request,
        session: Session,
        scope: str,
        form: dict[str, str],
        *,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        return pages.render(
            request,
            "guardrail_edit.html",
            session,
            status=status,
            active="guardrails",
            scope=scope,
            form=form,
            fields=FORM_FIELDS,
            errors=extra.pop("errors", {}),
            **extra,
        )

    @router.get("/guardrails/edit")
    def edit(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            scope = (request.query_params.get("scope") or "").strip()
            if not scope:
                raise InvalidArgument(
                    "scope is required (global, category:<path>, item:<id>)", field="scope"
                )
            out = pages.service.get_guardrails(call, scope)
            form = {k: "" if v is None else str(v) for k, v in out.values.model_dump().items()}
            form["expected_version"] = str(out.version)
            return edit_page(request, session, scope, form, current=out)

        return pages.page(request, build)

    @router.post("/guardrails/edit")
    async def save(request: Request) -> Response:
        def build(session: Session, call: CallContext, form: dict[str, str]) -> Response:
            scope = form.get("scope", "").strip()
            body, errors = body_from_form(form)
            if body is None:
                return edit_page(request, session, scope, form, status=400, errors=errors)
            if form.get("action") == "preview":
                try:
                    result = pages.data.preview(call, scope, body)
                except InvalidArgument as exc:
                    return edit_page(
                        request,
                        session,
                        scope,
                        form,
                        status=400,
                        errors={_field_of(exc): exc.message},
                    )
                chart = histogram(result.bins, "Price moves under the proposal, % of current price")
                return edit_page(request, session, scope, form, preview=result, chart=chart)
            try:
                out = pages.service.put_guardrails(call, scope, body)
            except FailedPrecondition as exc:
                others = pages.data.changes_since(call, body.expected_version or 0)
                newest = others[0].version if others else body.expected_version
                kept = {**form, "expected_version": str(newest)}
                return edit_page(
                    request, session, scope, kept, status=409, conflict=exc.message, others=others
                )
            except InvalidArgument as exc:
                return edit_page(
                    request, session, scope, form, status=400, errors={_field_of(exc): exc.message}
                )
            resp = RedirectResponse(f"{PREFIX}/guardrails?saved={out.version}", status_code=303)
            resp.headers.update(SECURITY_HEADERS)
            return resp

        return await pages.write(request, build)

    @router.post("/guardrails/rollback")
    async def rollback(request: Request) -> Response:
        def build(session: Session, call: CallContext, form: dict[str, str]) -> Response:
            version = int_param(form.get("version"), "version", -1, 0, MAX_VERSION)
            expected = int_param(
                form.get("expected_version"), "expected_version", 0, 0, MAX_VERSION
            )
            body = RollbackGuardrailsIn(
                version=version, reason=form.get("reason", ""), expected_version=expected
            )
            try:
                out = pages.service.rollback_guardrails(call, body)
            except FailedPrecondition as exc:
                others = pages.data.changes_since(call, expected)
                return listing(
                    request, session, call, status=409, conflict=exc.message, others=others,
                    rollback_version=version,
                )  # fmt: skip
            except InvalidArgument as exc:
                return listing(
                    request, session, call, status=400, rollback_error=exc.message,
                    rollback_version=version,
                )  # fmt: skip
            resp = RedirectResponse(f"{PREFIX}/guardrails?saved={out.version}", status_code=303)
            resp.headers.update(SECURITY_HEADERS)
            return resp

        return await pages.write(request, build)
