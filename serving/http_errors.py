"""The HTTP error response: one envelope for every route, hot or not."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from serving.errors import REQUEST_ID_METADATA_KEY, error_body, status_for


def error_response(exc: BaseException, request_id: str) -> JSONResponse:
    """``{"error": {...}}`` with the status of ``exc`` and the request id header."""
    return JSONResponse(
        error_body(exc, request_id),
        status_code=status_for(exc).http_status,
        headers={REQUEST_ID_METADATA_KEY: request_id},
    )
