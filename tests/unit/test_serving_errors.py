"""serving.errors: one status per domain error, the same on both transports."""

from __future__ import annotations

import grpc
import pytest

from fairshelf import errors as e
from serving.errors import (
    ERROR_TABLE,
    INTERNAL_MESSAGE,
    DeadlineExceeded,
    error_body,
    status_for,
)


@pytest.mark.parametrize(
    ("exc", "code", "http"),
    [
        (e.InvalidArgument("k bad", field="k"), grpc.StatusCode.INVALID_ARGUMENT, 400),
        (e.DataValidationError("bad", file="f.csv", row=3, column="x"),
         grpc.StatusCode.INVALID_ARGUMENT, 400),
        (e.Unauthenticated("no key"), grpc.StatusCode.UNAUTHENTICATED, 401),
        (e.PermissionDenied("role"), grpc.StatusCode.PERMISSION_DENIED, 403),
        (e.NotFound("item"), grpc.StatusCode.NOT_FOUND, 404),
        (e.AlreadyExists("dup"), grpc.StatusCode.ALREADY_EXISTS, 409),
        (e.FailedPrecondition("version"), grpc.StatusCode.FAILED_PRECONDITION, 409),
        (e.PolicyRejected("G1"), grpc.StatusCode.FAILED_PRECONDITION, 422),
        (e.ModelUnavailable("none"), grpc.StatusCode.UNAVAILABLE, 503),
        (e.Unavailable("quote log down"), grpc.StatusCode.UNAVAILABLE, 503),
        (DeadlineExceeded("late"), grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)  # fmt: skip
def test_each_domain_error_has_one_status(
    exc: e.FairshelfError, code: grpc.StatusCode, http: int
) -> None:
    status = status_for(exc)
    assert (status.grpc_code, status.http_status) == (code, http)
    body = error_body(exc, "rid-1")["error"]
    assert body["code"] == code.name and body["message"] == exc.message
    assert body["request_id"] == "rid-1" and body["field"] == exc.field


def test_every_domain_error_class_is_in_the_table() -> None:
    classes = [
        c for c in vars(e).values() if isinstance(c, type) and issubclass(c, e.FairshelfError)
    ]
    assert set(classes) <= set(ERROR_TABLE)


def test_subclass_follows_its_parent() -> None:
    class Custom(e.NotFound):
        pass

    assert status_for(Custom("x")).http_status == 404


def test_bugs_do_not_leak_details() -> None:
    for exc in (KeyError("secret-internal"), e.FairshelfError("internal detail")):
        body = error_body(exc, "r")["error"]
        assert body["code"] == "INTERNAL" and body["message"] == INTERNAL_MESSAGE
        assert status_for(exc).http_status == 500
