"""The supervisor's port reservation: one port number for every worker, or a clear refusal."""

from __future__ import annotations

import socket

import pytest

from fairshelf.errors import InvalidArgument
from serving.workers import reserve_port


def test_port_zero_resolves_once_and_workers_can_share_it() -> None:
    held = reserve_port("127.0.0.1", 0)
    try:
        port = held.getsockname()[1]
        assert port > 0
        # What each worker does: bind the same port with SO_REUSEPORT and listen.
        worker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", port))
        worker.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = worker.accept()  # the listening worker, not the holder, gets it
            conn.close()
        worker.close()
    finally:
        held.close()


def test_a_port_held_by_another_server_is_refused_with_the_field_named() -> None:
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        with pytest.raises(InvalidArgument, match=r"cannot listen on 127\.0\.0\.1") as err:
            reserve_port("127.0.0.1", other.getsockname()[1], "http_port")
        assert err.value.field == "http_port" and "--http-port" in str(err.value)
    finally:
        other.close()
