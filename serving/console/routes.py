"""The console's pages under ``/console``: an APIRouter over the one service object.

Pages are rendered on the server from Jinja2 templates (autoescaped: a reason, a title or a
search text is always shown as text). Every response carries a strict Content-Security-Policy
(scripts and styles from this origin only, no inline script), and every write checks the
session's CSRF token and the request's origin. Domain errors become a page with the message
and the HTTP status of :mod:`serving.errors`; a malformed form is shown back with the message
next to the field.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from fairshelf.errors import FairshelfError, InvalidArgument, PermissionDenied, Unauthenticated
from serving.auth import OPERATIONS
from serving.console.nav import NAV
from serving.console.page_data import ConsoleData
from serving.console.session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Session,
    SessionSigner,
    SignInThrottle,
    same_token,
)
from serving.errors import INTERNAL, public_field, public_message, status_for
from serving.logging import bind_request, get_logger
from serving.service import CallContext, FairshelfService
from serving.settings import Role

log = get_logger("fairshelf.console")

PREFIX: Final[str] = "/console"
_HERE = Path(__file__).parent
MAX_FORM_BYTES: Final[int] = 64 * 1024
CSP: Final[str] = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class ConsolePages:
    """Shared machinery of the console's routes: templates, sessions, errors.

    Parameters
    ----------
    service:
        The one service object.
    data:
        The console's reads over ``service``.
    signer:
        Issues and checks session cookies.
    """

    def __init__(self, service: FairshelfService, data: ConsoleData, signer: SessionSigner) -> None:
        self.service = service
        self.data = data
        self.signer = signer
        self.throttle = SignInThrottle()
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["may"] = may

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page with the layout, the menu for the session's role and the security headers."""
        nav = [e for e in NAV if session is not None and e.visible_to(session.role)]
        html = self.env.get_template(template).render(
            session=session, nav=nav, request_path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers=dict(SECURITY_HEADERS))

    def error_page(
        self, request: Request, session: Session | None, exc: BaseException
    ) -> HTMLResponse:
        """The page for a failed call: the domain message and its HTTP status, never a trace."""
        status = status_for(exc)
        if status is INTERNAL:
            log.exception("console_error", path=request.url.path)
        return self.render(
            request,
            "error.html",
            session,
            status=status.http_status,
            message=public_message(exc),
            field=public_field(exc),
            code=status.code_name,
        )

    # -- sessions --------------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        """The signed-in user of the request, if any."""
        return self.signer.read(request.cookies.get(SESSION_COOKIE))

    def call(self, request: Request, session: Session) -> CallContext:
        """The call context of a console request (the session's role, a fresh request id)."""
        request_id = bind_request(None)
        return CallContext(None, request_id, "console", role=session.role)

    def to_signin(self, request: Request) -> Response:
        """Redirect to the sign-in page, coming back here afterwards."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        resp = RedirectResponse(f"{PREFIX}/signin?next={quote(target)}", status_code=303)
        resp.headers.update(SECURITY_HEADERS)
        return resp

    def page(
        self,
        request: Request,
        build: Callable[[Session, CallContext], Response],
    ) -> Response:
        """Run a page for a signed-in user; domain errors become an error page."""
        session = self.session(request)
        if session is None:
            return self.to_signin(request)
        try:
            return build(session, self.call(request, session))
        except Exception as exc:
            return self.error_page(request, session, exc)

    async def write(
        self,
        request: Request,
        build: Callable[[Session, CallContext, dict[str, str]], Response],
    ) -> Response:
        """Run a form post of a signed-in user after the CSRF and origin checks."""
        session = self.session(request)
        if session is None:
            return self.to_signin(request)
        try:
            form = await read_form(request)
            check_origin(request)
            if not same_token(session.csrf, form.get("csrf")):
                raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page")
            call = self.call(request, session)
            return await run_in_threadpool(build, session, call, form)
        except Exception as exc:
            return self.error_page(request, session, exc)


def may(session: Session | None, operation: str) -> bool:
    """Whether the session's role may call ``operation`` (templates hide what it may not)."""
    if session is None:
        return False
    return session.role is Role.ADMIN or session.role in OPERATIONS.get(operation, frozenset())


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body as field -> first value.

    Raises
    ------
    InvalidArgument
        Another content type, a body over 64 KiB, or a body that is not UTF-8.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidArgument(
            "forms must be sent as application/x-www-form-urlencoded", field="body"
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidArgument("the form is larger than 64 KiB", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the form is not UTF-8", field="body") from None
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def check_origin(request: Request) -> None:
    """Refuse a write whose Origin (or Referer) names another site.

    Raises
    ------
    PermissionDenied
        The browser says the form came from elsewhere.
    """
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return  # not a browser, or one that sends neither: the CSRF token still decides
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise PermissionDenied("the form was posted from another site")


def int_param(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query or form field in ``[lo, hi]``.

    Raises
    ------
    InvalidArgument
        Not an integer, or out of range (named ``name``).
    """
    if value is None or value.strip() == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise InvalidArgument(
            f"{name} must be a whole number, got {value[:40]!r}", field=name
        ) from None
    if not lo <= n <= hi:
        raise InvalidArgument(f"{name} must be between {lo} and {hi}, got {n}", field=name)
    return n


def build_console_router(pages: ConsolePages) -> APIRouter:
    """The ``/console`` routes (sign-in, overview, static files, then each page's module)."""
    from serving.console import (
        experiment_pages,
        fairness_pages,
        guardrail_pages,
        item_pages,
        promotion_pages,
    )

    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    static_dir = _HERE / "static"
    static_files = {p.name: p for p in static_dir.iterdir() if p.suffix in (".css", ".js")}
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        path = static_files.get(name)
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {**SECURITY_HEADERS, "cache-control": "public, max-age=3600"}
        return Response(path.read_bytes(), media_type=types[path.suffix], headers=headers)

    @router.get("/signin")
    def signin_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        resp = pages.render(
            request,
            "signin.html",
            None,
            csrf=token,
            next=_safe_next(request.query_params.get("next")),
        )
        _cookie(resp, request, SIGNIN_COOKIE, token, max_age=3600)
        return resp

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        try:
            form = await read_form(request)
            check_origin(request)
        except FairshelfError as exc:
            return pages.error_page(request, None, exc)
        nxt = _safe_next(form.get("next"))
        token = request.cookies.get(SIGNIN_COOKIE, "")
        wait = pages.throttle.wait_for(address)
        if wait > 0:
            resp = pages.render(
                request,
                "signin.html",
                None,
                status=429,
                csrf=token,
                next=nxt,
                error=f"Too many failed sign-ins from this address; try again in {wait:.0f} s.",
            )
            resp.headers["retry-after"] = str(max(1, round(wait)))
            return resp
        if not token or not same_token(token, form.get("csrf")):
            return pages.render(
                request, "signin.html", None, status=403, csrf=token, next=nxt,
                error="The sign-in form expired; please try again.",
            )  # fmt: skip
        key = form.get("api_key", "").strip()
        try:
            role = pages.service.auth.authenticate(key or None)
        except Unauthenticated:
            pages.throttle.failed(address)
            log.info("console_signin_failed", address=address)
            return pages.render(
                request, "signin.html", None, status=401, csrf=token, next=nxt,
                error="That API key is not valid.",
            )  # fmt: skip
        if role is Role.STOREFRONT:
            log.info("console_signin_refused", role=role.value)
            return pages.render(
                request, "signin.html", None, status=403, csrf=token, next=nxt,
                error="Storefront keys cannot use the console; use a pricing or admin key.",
            )  # fmt: skip
        pages.throttle.succeeded(address)
        value, _ = pages.signer.issue(role, key)
        done = RedirectResponse(nxt, status_code=303)
        done.headers.update(SECURITY_HEADERS)
        _cookie(done, request, SESSION_COOKIE, value, max_age=pages.signer.max_age_seconds)
        done.delete_cookie(SIGNIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        log.info("console_signin", role=role.value)
        return done

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        def out(_s: Session, _c: CallContext, _f: dict[str, str]) -> Response:
            resp = RedirectResponse(f"{PREFIX}/signin", status_code=303)
            resp.headers.update(SECURITY_HEADERS)
            resp.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
            return resp

        return await pages.write(request, out)

    @router.get("")
    def overview(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            data = pages.data.overview(call)
            return pages.render(request, "overview.html", session, active="overview", **data)

        return pages.page(request, build)

    for module in (guardrail_pages, item_pages, fairness_pages, promotion_pages, experiment_pages):
        module.add_routes(router, pages)
    return router


def _safe_next(value: str | None) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def _cookie(resp: Response, request: Request, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        # Over TLS (directly, or behind a proxy that says so) the cookie never travels in clear.
        secure=request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "") == "https",
    )
