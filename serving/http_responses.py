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
        return json_bytes(content)


def json_bytes(content: Any) -> bytes:
    """``content`` as the compact UTF-8 JSON every prepared answer is written as."""
    return to_json(content, inf_nan_mode="null")


_REQUEST_ID_HEADER = REQUEST_ID_METADATA_KEY.encode("latin-1")


def json_messages(
    raw: bytes, request_id: str, status_code: int = 200
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two ASGI messages (start, body) of the answer :func:`json_response` gives for the
    JSON bytes ``raw``: same status, same headers in the same order, same bytes.

    For a route that sends them itself: building the response object and letting it send
    costs more than all the rest of writing the answer.
    """
    headers = [
        (_REQUEST_ID_HEADER, request_id.encode("latin-1")),
        (b"content-length", str(len(raw)).encode("latin-1")),
        (b"content-type", b"application/json"),
    ]
    return (
        {"type": "http.response.start", "status": status_code, "headers": headers},
        {"type": "http.response.body", "body": raw},
    )


def json_response(body: Any, request_id: str, status_code: int = 200) -> JSONResponse:
    """``body`` as JSON with the request id header."""
    return CompactJSONResponse(
        body, status_code=status_code, headers={REQUEST_ID_METADATA_KEY: request_id}
    )


def error_response(exc: BaseException, request_id: str) -> JSONResponse:
    """``{"error": {...}}`` with the status of ``exc`` and the request id header."""
    return json_response(error_body(exc, request_id), request_id, status_for(exc).http_status)
