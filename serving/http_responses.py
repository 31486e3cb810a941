"""The HTTP JSON responses built outside FastAPI's response models: answers of the hot routes
and the error envelope, each carrying the request id header, in one place for every route."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic_core import to_json

from serving.errors import REQUEST_ID_METADATA_KEY, error_body, status_for


class CompactJSONResponse(JSONResponse):
    """The same compact UTF-8 JSON as :class:`JSONResponse`, written by pydantic-core's
    serializer (the one FastAPI uses for response models) instead of :func:`json.dumps`:
    4 µs instead of 19 µs for a 20-item recommendation. Numbers keep their value but may be
    spelled differently (``0.00001`` for ``1e-05``); a non-finite float becomes ``null``, as
    in FastAPI's response models, where ``json.dumps`` would have refused it."""

    def render(self, content: Any) -> bytes:
        return to_json(content, inf_nan_mode="null")


def json_response(body: Any, request_id: str, status_code: int = 200) -> JSONResponse:
    """``body`` as JSON with the request id header."""
    return CompactJSONResponse(
        body, status_code=status_code, headers={REQUEST_ID_METADATA_KEY: request_id}
    )


def error_response(exc: BaseException, request_id: str) -> JSONResponse:
    """``{"error": {...}}`` with the status of ``exc`` and the request id header."""
    return json_response(error_body(exc, request_id), request_id, status_for(exc).http_status)
