"""Structured logs: JSON lines in production, readable lines on a terminal, a request id each.

The request id lives in a context variable bound by each transport at the start of a call
(:func:`bind_request`), so every log line written while serving that call carries it, whatever
module writes it. API keys are never bound or logged.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

_request_id: ContextVar[str] = ContextVar("fairshelf_request_id", default="")


def new_request_id() -> str:
    """A fresh opaque request id: 32 random hex digits."""
    # The shape of uuid4().hex at a tenth of its cost (no UUID object on every call).
    return secrets.token_hex(16)


def current_request_id() -> str:
    """The request id bound to the running call ("" outside a call)."""
    return _request_id.get()


def bind_request(request_id: str | None) -> str:
    """Bind ``request_id`` (or a new one) to the current context and return it."""
    rid = request_id if request_id and len(request_id) <= 128 else new_request_id()
    _request_id.set(rid)
    return rid


def _add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    rid = _request_id.get()
    if rid and "request_id" not in event:
        event["request_id"] = rid
    return event


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    """Configure structlog (and the stdlib root logger it writes through).

    Parameters
    ----------
    fmt:
        ``"json"`` or ``"console"``.
    level:
        ``debug``, ``info``, ``warning`` or ``error``.
    """
    lvl = getattr(logging, level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Loggers are first used after configuration, so caching is safe and saves a
        # rebuild on every call of the hot path.
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger tagged with ``logger_name=name``."""
    # A lazy proxy: configuration made later (configure_logging) still applies to it.
    return structlog.get_logger(**{"logger_name": name})
