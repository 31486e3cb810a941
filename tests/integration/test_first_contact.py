"""What a new user and a schema-driven client meet first: ``fairshelf serve`` without keys,
taken ports, wrong methods, and an OpenAPI document that states the rules the server enforces.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_support import Clients

from pricing.guardrail_rules import SCOPE_ID_PATTERN
from recsys.types import MAX_K
from serving.app import FairshelfServer
from serving.store.events_store import MAX_BATCH


def _serve(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSHELF_")}
    argv = [sys.executable, "-m", "fairshelf.cli.main", "serve", "--host", "127.0.0.1"]
    argv += ["--db", f"sqlite:///{tmp_path / 'first.db'}", "--log-format", "console", *flags]
    return subprocess.Popen(
        argv, env={**base, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stderr_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> str:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed; stderr was:\n{''.join(seen)}")


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_serve_without_keys_says_how_to_set_one(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--http-port", "0", "--grpc-port", "0")
    try:
        out = _stderr_until(proc, "fairshelf serving:")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "no API key is configured" in out and "FAIRSHELF_API_KEYS" in out
    assert "FAIRSHELF_AUTH_ENABLED=false" in out


def test_serve_with_a_key_gives_no_such_warning(tmp_path: Path) -> None:
    env = {"FAIRSHELF_API_KEYS": '{"sk-first-contact-000000000001": "admin"}'}
    proc = _serve(tmp_path, "--http-port", "0", "--grpc-port", "0", env=env)
    try:
        out = _stderr_until(proc, "fairshelf serving:")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "no API key is configured" not in out


@pytest.mark.parametrize(("flag", "setting"), [("--http-port", "http"), ("--grpc-port", "grpc")])
def test_a_taken_port_is_one_line_and_exit_code_2(
    tmp_path: Path, taken_port: int, flag: str, setting: str
) -> None:
    other = "--grpc-port" if flag == "--http-port" else "--http-port"
    proc = _serve(tmp_path, flag, str(taken_port), other, "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert f"{taken_port}" in lines[0] and flag in lines[0] and setting.upper() in lines[0]


def test_wrong_method_is_405_with_allow(clients: Clients) -> None:
    r = clients.http.request("TRACE", "/v1/recommend", headers=clients.hdr())
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    r = clients.http.put("/v1/guardrails/history", json={}, headers=clients.hdr("admin"))
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = clients.http.post("/v1/guardrails/global", json={}, headers=clients.hdr("admin"))
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {
        "DELETE",
        "GET",
        "HEAD",
        "PUT",
    }


def test_openapi_states_the_rules_and_the_metrics_format(
    clients: Clients, server: FairshelfServer
) -> None:
    doc = clients.http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    k = schemas["RecommendIn"]["properties"]["k"]
    assert k["minimum"] == 1 and k["maximum"] == MAX_K
    assert "user_id" in schemas["RecommendIn"]["required"]
    assert schemas["LogEventsIn"]["properties"]["events"]["maxItems"] == MAX_BATCH
    assert "reason" in schemas["PutGuardrailsIn"]["required"]
    put = doc["paths"]["/v1/guardrails/{scope}"]["put"]
    scope = next(p for p in put["parameters"] if p["name"] == "scope")
    assert scope["schema"]["pattern"] == SCOPE_ID_PATTERN
    report = doc["paths"]["/v1/audit/report"]["get"]["parameters"]
    since = next(p for p in report if p["name"] == "since")
    assert {"type": "string", "format": "date-time"} in since["schema"]["anyOf"]
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    r = clients.http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")


def test_an_invalid_timestamp_is_refused_naming_the_field(clients: Clients) -> None:
    for bad in ("2024-05-01", "20240501T120000Z", "2024-05-01T12:00:00"):
        r = clients.http.get(
            "/v1/audit/report", params={"since": bad}, headers=clients.hdr("admin")
        )
        assert r.status_code == 400 and r.json()["error"]["field"] == "since", bad
    ok = clients.http.get(
        "/v1/audit/report",
        params={"since": "2024-05-01T12:00:00+08:00"},
        headers=clients.hdr("admin"),
    )
    assert ok.status_code == 200


def test_a_taken_port_under_workers_is_one_line_too(tmp_path: Path, taken_port: int) -> None:
    proc = _serve(tmp_path, "--workers", "2", "--http-port", str(taken_port), "--grpc-port", "0")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err, err
    line = next(line for line in err.splitlines() if line.startswith("error:"))
    assert str(taken_port) in line and "--http-port" in line and "FAIRSHELF_HTTP_PORT" in line
