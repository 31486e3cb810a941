"""The HTTP JSON responses built outside FastAPI's response models: answers of the hot routes
and the error envelope, each carrying the request id header, in one place for every route."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from serving.errors import REQUEST_ID_METADATA_KEY, error_body, status_for


def json_response(body: Any, request_id: str, status_code: int = 200) -> JSONResponse:
    """``body`` as JSON with the request id header."""
    return JSONResponse(
        body, status_code=status_code, headers={REQUEST_ID_METADATA_KEY: request_id}
    )


def error_response(exc: BaseException, request_id: str) -> JSONResponse:
    """``{"error": {...}}`` with the status of ``exc`` and the request id header."""
    return json_response(error_body(exc, request_id), request_id, status_for(exc).http_status)
