"""The console: web pages for the pricing team and auditors, served under ``/console`` by the
HTTP server from the same service object as the API (see ``docs/console.md``)."""

from __future__ import annotations

import secrets

from fastapi import FastAPI

from serving.console.page_data import ConsoleData
from serving.console.routes import ConsolePages, build_console_router
from serving.console.session import SessionSigner
from serving.logging import get_logger
from serving.metrics import Metrics
from serving.service import FairshelfService

log = get_logger("fairshelf.console")


def mount_console(app: FastAPI, service: FairshelfService, metrics: Metrics) -> ConsolePages:
    """Add the console's routes to ``app``.

    Parameters
    ----------
    app:
        The HTTP application of the server.
    service:
        The one service object (the console calls nothing else).
    metrics:
        The server's metrics, shown on the overview.

    Returns
    -------
    ConsolePages
        The console's shared state (sessions, throttle, page data).
    """
    settings = service.settings
    if settings.console_secret is not None:
        secret = settings.console_secret.get_secret_value().encode()
    else:
        # Sessions then end with the process, and workers do not share them.
        secret = secrets.token_bytes(32)
        if settings.workers > 1:
            log.warning("console_secret_unset", effect="sessions are valid on one worker only")
    signer = SessionSigner(
        secret,
        settings.console_session_seconds,
        settings.api_keys,
        auth_enabled=settings.auth_enabled,
    )
    pages = ConsolePages(service, ConsoleData(service, metrics), signer)
    app.include_router(build_console_router(pages))
    return pages
