"""The domain error tree shared by every core package.

It lives in the shared kernel, which imports no part, so recsys, pricing, training and
serving all depend on it without depending on each other. ``serving/errors.py`` maps each
class to exactly one gRPC status code and one HTTP status, so both transports always agree.
"""

from __future__ import annotations


class FairshelfError(Exception):
    """Base of every error the core raises on purpose.

    Parameters
    ----------
    message:
        Human-readable text that names what is wrong (field, value, file, row).
    field:
        The request field, column or setting at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidArgument(FairshelfError):
    """The caller sent something malformed or out of range."""


class DataValidationError(InvalidArgument):
    """A data file breaks the canonical schema; names the file, row and column."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"column {column!r}" if column else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message, field=column)
        self.file = file
        self.row = row
        self.column = column


class NotFound(FairshelfError):
    """A named thing (item, quote, scope, bundle) does not exist."""


class MethodNotAllowed(FairshelfError):
    """The resource exists but does not answer to this method (HTTP only: gRPC has no methods
    on a path).

    Parameters
    ----------
    message:
        What was asked and what is allowed.
    allow:
        The methods the resource does answer to (the ``Allow`` header of RFC 9110).
    """

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class PortInUse(InvalidArgument):
    """A port in the settings cannot be listened on (taken by another process, or not
    permitted); names the port and the setting."""


class AlreadyExists(FairshelfError):
    """A create collided with an existing record."""


class PermissionDenied(FairshelfError):
    """The caller's role may not do this."""


class Unauthenticated(FairshelfError):
    """No valid credentials were presented."""


class PolicyRejected(FairshelfError):
    """A pricing policy or discount program breaks a fairness rule (SPEC §7)."""


class FailedPrecondition(FairshelfError):
    """The system is not in a state that allows the operation (e.g. guardrail version conflict)."""


class Unavailable(FairshelfError):
    """Something the operation needs is down for now (e.g. the quote log cannot store); the
    same request may succeed later."""


class ModelUnavailable(Unavailable):
    """No usable model bundle is loaded, or a bundle failed validation."""
