"""serving.http_responses: the JSON bytes every prepared HTTP answer is written as."""

from __future__ import annotations

import json

from serving.errors import REQUEST_ID_METADATA_KEY
from serving.http_responses import json_bytes, json_messages, json_response
from serving.logging import new_request_id


def test_compact_utf8_json_with_the_request_id_header() -> None:
    body = {
        "items": [{"item_id": "Ü-1", "score": 0.30000000000000004, "reason": "profile"}],
        "personalized": True,
        "variant": "default",
        "tiny": 1e-05,
        "none": None,
    }
    response = json_response(body, "req-1", 200)
    raw = bytes(response.body)
    assert (
        raw
        == (
            '{"items":[{"item_id":"Ü-1","score":0.30000000000000004,"reason":"profile"}],'
            '"personalized":true,"variant":"default","tiny":0.00001,"none":null}'
        ).encode()
    )
    assert json.loads(raw) == body  # the same values as json.dumps would give
    headers = dict(response.headers)
    assert headers["content-type"] == "application/json"
    assert headers[REQUEST_ID_METADATA_KEY] == "req-1"
    assert headers["content-length"] == str(len(raw))


def test_non_finite_numbers_become_null_not_invalid_json() -> None:
    raw = bytes(json_response({"score": float("nan"), "price": float("inf")}, "r").body)
    assert json.loads(raw) == {"score": None, "price": None}


def test_prepared_messages_are_the_json_response_sent_as_is() -> None:
    body = {"items": [{"item_id": "I1", "score": 0.5, "reason": "profile"}], "request_id": "r"}
    response = json_response(body, "req-9")
    start, reply = json_messages(json_bytes(body), "req-9")
    assert start == {"type": "http.response.start", "status": 200, "headers": response.raw_headers}
    assert reply == {"type": "http.response.body", "body": response.body}
    assert json_messages(b"{}", "r", 503)[0]["status"] == 503


def test_request_ids_are_fresh_32_hex_digits() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
