"""THE table from domain errors to gRPC status codes and HTTP statuses.

Both transports translate errors only through :func:`status_for` and :func:`error_body`, so a
bad request gets the same code, message and field over gRPC and HTTP. Errors that are not
:class:`~fairshelf.errors.FairshelfError` are bugs: they become ``INTERNAL`` / 500 with a fixed
message, so that no internal detail leaks to a caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import grpc

from fairshelf.errors import (
    AlreadyExists,
    DataValidationError,
    FailedPrecondition,
    FairshelfError,
    InvalidArgument,
    MethodNotAllowed,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    PolicyRejected,
    PortInUse,
    Unauthenticated,
    Unavailable,
)


class DeadlineExceeded(FairshelfError):
    """The caller's deadline passed before the call was served (a transport-level error)."""


@dataclass(frozen=True)
class ErrorStatus:
    """How one error class is reported on each transport."""

    grpc_code: grpc.StatusCode
    http_status: int
    # The code of HTTP error bodies when it differs from the gRPC code name.
    http_code: str | None = None

    @property
    def code_name(self) -> str:
        """The code of HTTP error bodies: the gRPC code name (``"INVALID_ARGUMENT"``) unless
        the error has no gRPC counterpart of its own."""
        return self.http_code or self.grpc_code.name


INTERNAL: Final[ErrorStatus] = ErrorStatus(grpc.StatusCode.INTERNAL, 500)

# Most specific class first is not needed: lookup walks the exception's MRO.
ERROR_TABLE: Final[dict[type[FairshelfError], ErrorStatus]] = {
    InvalidArgument: ErrorStatus(grpc.StatusCode.INVALID_ARGUMENT, 400),
    # Raised at start, not by a call; a bad setting is an invalid argument.
    PortInUse: ErrorStatus(grpc.StatusCode.INVALID_ARGUMENT, 400),
    DataValidationError: ErrorStatus(grpc.StatusCode.INVALID_ARGUMENT, 400),
    Unauthenticated: ErrorStatus(grpc.StatusCode.UNAUTHENTICATED, 401),
    PermissionDenied: ErrorStatus(grpc.StatusCode.PERMISSION_DENIED, 403),
    NotFound: ErrorStatus(grpc.StatusCode.NOT_FOUND, 404),
    # A wrong HTTP method on a known path; the body's code says so rather than a gRPC name.
    MethodNotAllowed: ErrorStatus(grpc.StatusCode.UNIMPLEMENTED, 405, "METHOD_NOT_ALLOWED"),
    AlreadyExists: ErrorStatus(grpc.StatusCode.ALREADY_EXISTS, 409),
    FailedPrecondition: ErrorStatus(grpc.StatusCode.FAILED_PRECONDITION, 409),
    # A fairness rule refused the request: well-formed but not allowed to take effect.
    PolicyRejected: ErrorStatus(grpc.StatusCode.FAILED_PRECONDITION, 422),
    ModelUnavailable: ErrorStatus(grpc.StatusCode.UNAVAILABLE, 503),
    Unavailable: ErrorStatus(grpc.StatusCode.UNAVAILABLE, 503),
    DeadlineExceeded: ErrorStatus(grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    # A domain error without a more specific class is still a server fault.
    FairshelfError: INTERNAL,
}

INTERNAL_MESSAGE: Final[str] = "internal error"
# Same text for undecodable JSON (HTTP) and undecodable protobuf (gRPC).
MALFORMED_BODY: Final[str] = "malformed request body"

# gRPC trailing-metadata keys carrying what the HTTP body carries.
FIELD_METADATA_KEY: Final[str] = "fairshelf-field"
REQUEST_ID_METADATA_KEY: Final[str] = "x-request-id"


def status_for(exc: BaseException) -> ErrorStatus:
    """The transport statuses for ``exc``.

    Parameters
    ----------
    exc:
        Any exception raised while serving a call.

    Returns
    -------
    ErrorStatus
        The entry of the nearest class in :data:`ERROR_TABLE` along the MRO, or ``INTERNAL``.
    """
    for cls in type(exc).__mro__:
        status = ERROR_TABLE.get(cls)  # type: ignore[call-overload]
        if status is not None:
            return status
    return INTERNAL


def public_message(exc: BaseException) -> str:
    """The message a caller may see: the domain message, or a fixed text for bugs."""
    if isinstance(exc, FairshelfError) and status_for(exc) is not INTERNAL:
        return exc.message
    return INTERNAL_MESSAGE


def public_field(exc: BaseException) -> str | None:
    """The request field at fault, when the error names one."""
    return exc.field if isinstance(exc, FairshelfError) else None


def error_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The JSON body of an HTTP error response.

    Parameters
    ----------
    exc:
        The error.
    request_id:
        Id of the failed request (also in the ``x-request-id`` header).

    Returns
    -------
    dict
        ``{"error": {"code", "message", "field", "request_id"}}``.
    """
    return {
        "error": {
            "code": status_for(exc).code_name,
            "message": public_message(exc),
            "field": public_field(exc),
            "request_id": request_id,
        }
    }
