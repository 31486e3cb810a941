"""The console's promotion pages over a real server: publishing and ending through the API's own
operations, the server's errors next to their fields, CSRF, roles and escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_support import ConsoleClient, signed_in, text_of
from serving_support import KEYS, Clients

from serving.app import FairshelfServer
from serving.console.routes import CSP


@pytest.fixture(scope="module")
def console(server: FairshelfServer) -> Iterator[ConsoleClient]:
    """A console client signed in with the pricing key."""
    yield from signed_in(server, "pricing")


def _local(at: datetime) -> str:
    """``at`` as a browser's datetime-local field sends it (UTC wall time, minutes)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _form(name: str, **over: str) -> dict[str, str]:
    ends = datetime.now(UTC) + timedelta(days=2)
    form = {"name": name, "title": "Winter sale", "description": "Everything 10 % off.",
            "starts_at": "", "ends_at": _local(ends), "reason": "seasonal campaign"}  # fmt: skip
    return {**form, **over}


def _listed(clients: Clients) -> dict[str, Any]:
    resp = clients.http.get("/v1/promotions", headers=clients.hdr())
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_publish_and_end_through_the_console_reach_the_api_and_quotes(
    server: FairshelfServer, clients: Clients, console: ConsoleClient
) -> None:
    page = console.http.get("/console/promotions")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert 'href="/console/promotions" aria-current="page"' in page.text
    assert " style=" not in page.text and re.search(r"\son[a-z]+=", page.text) is None
    resp = console.post("/console/promotions/publish", _form("winter"))
    assert resp.status_code == 303, resp.text
    version = int(resp.headers["location"].rsplit("=", 1)[1])

    listed = _listed(clients)
    assert listed["running"] == ["winter"] and listed["version"] == version
    change = listed["history"][0]
    assert change["author"] == "role:pricing" and change["reason"] == "seasonal campaign"
    assert change["promotion"]["title"] == "Winter sale"

    # A quote that names no promotion still carries it.
    item = str(server.holder.require().bundle.item_ids[2])
    quote = clients.http.post("/v1/prices/quote", json={"item_ids": [item]}, headers=clients.hdr())
    assert quote.status_code == 200, quote.text
    quote_id = quote.json()["quotes"][0]["quote_id"]
    explained = clients.http.get(f"/v1/prices/quotes/{quote_id}", headers=clients.hdr()).json()
    assert '["winter"]' in explained["explanation"]["quote"]["context_key"]

    page = console.http.get(f"/console/promotions?saved={version}").text
    assert f"promotions are now at version {version}" in text_of(page, "saved")
    running = text_of(page, "running")
    assert "winter" in running and "seasonal campaign" in running and "role:pricing" in running

    no_reason = console.post("/console/promotions/end", {"name": "winter", "reason": " "})
    assert no_reason.status_code == 400
    assert "reason is required" in text_of(no_reason.text, "end-err-winter")
    ended = console.post("/console/promotions/end", {"name": "winter", "reason": "stock ran out"})
    assert ended.status_code == 303
    assert _listed(clients)["running"] == []
    page = console.http.get("/console/promotions").text
    assert "winter" in text_of(page, "ended") and "stock ran out" in text_of(page, "ended")
    again = console.post("/console/promotions/end", {"name": "winter", "reason": "twice"})
    assert again.status_code == 409 and "already ended" in text_of(again.text, "end-error")


def test_scheduled_promotion_with_rfc3339_times_is_listed_and_withdrawn(
    clients: Clients, console: ConsoleClient
) -> None:
    starts = datetime.now(UTC) + timedelta(days=3)
    form = _form("spring", starts_at=starts.astimezone().isoformat(),
                 ends_at=(starts + timedelta(days=1)).isoformat())  # fmt: skip
    assert console.post("/console/promotions/publish", form).status_code == 303
    assert "spring" in text_of(console.http.get("/console/promotions").text, "scheduled")
    resp = console.post("/console/promotions/end", {"name": "spring", "reason": "cancelled"})
    assert resp.status_code == 303
    assert "withdrawn" in text_of(console.http.get("/console/promotions").text, "ended")
    assert "spring" not in _listed(clients)["running"]


def test_server_errors_are_shown_next_to_their_field(
    clients: Clients, console: ConsoleClient
) -> None:
    before = _listed(clients)["version"]
    yesterday = _local(datetime.now(UTC) - timedelta(days=1))
    cases = {
        "name": (_form("Bad Name!"), 400, "must be 1-64 characters"),
        "title": (_form("no-title", title="  "), 400, "needs a public title"),
        "starts_at": (_form("old", starts_at=yesterday), 400, "before it is published"),
        "ends_at": (_form("open", ends_at=""), 400, "ends_at is required"),
        "reason": (_form("why", reason=""), 400, "reason is required"),
    }
    for field, (form, status, message) in cases.items():
        resp = console.post("/console/promotions/publish", form)
        assert resp.status_code == status, (field, resp.text)
        assert message in text_of(resp.text, f"err-{field}"), field
        assert re.search(rf'id="p-{field}"[^>]*aria-invalid="true"', resp.text), field
    garbage = console.post("/console/promotions/publish", _form("late", ends_at="tomorrow"))
    assert garbage.status_code == 400
    assert "RFC 3339" in text_of(garbage.text, "err-ends_at")
    # The form comes back as typed, in a text field a browser will not blank.
    assert re.search(r'id="p-ends_at" name="ends_at" value="tomorrow" type="text"', garbage.text)
    assert 'id="p-starts_at" name="starts_at" value="" type="datetime-local"' in garbage.text
    assert _listed(clients)["version"] == before
    # A name is never reused: the 409 is shown on the name field too.
    assert console.post("/console/promotions/publish", _form("once")).status_code == 303
    reused = console.post("/console/promotions/publish", _form("once"))
    assert reused.status_code == 409 and "never reused" in text_of(reused.text, "err-name")
    unknown = console.post("/console/promotions/end", {"name": "never", "reason": "r"})
    assert unknown.status_code == 404 and "was ever published" in text_of(unknown.text, "end-error")


def test_writes_need_the_session_token_and_this_origin(
    server: FairshelfServer, clients: Clients, console: ConsoleClient
) -> None:
    before = _listed(clients)["version"]
    no_token = console.http.post("/console/promotions/publish", data=_form("csrf"))
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    wrong = console.http.post("/console/promotions/publish", data={**_form("csrf"), "csrf": "x"})
    assert wrong.status_code == 403
    elsewhere = console.post(
        "/console/promotions/publish", _form("csrf"), headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    end = console.http.post("/console/promotions/end", data={"name": "once", "reason": "r"})
    assert end.status_code == 403
    other = ConsoleClient(server)
    other.sign_in("admin")
    stolen = console.http.post(
        "/console/promotions/publish", data={**_form("csrf"), "csrf": other.csrf()}
    )
    assert stolen.status_code == 403
    other.close()
    assert _listed(clients)["version"] == before


def test_storefront_sees_nothing(server: FairshelfServer, clients: Clients) -> None:
    before = _listed(clients)["version"]
    c = ConsoleClient(server)
    assert c.sign_in("storefront").status_code == 403
    assert c.http.get("/console/promotions").status_code == 303  # to the sign-in page
    resp = c.http.post("/console/promotions/publish", data=_form("shop"))
    assert resp.status_code == 303 and resp.headers["location"].startswith("/console/signin")
    # Its API key is no console session either.
    page = c.http.get("/console/promotions", headers={"x-api-key": KEYS["storefront"]})
    assert page.status_code == 303
    c.close()
    assert _listed(clients)["version"] == before


def test_text_is_escaped_and_bad_forms_are_no_500(console: ConsoleClient) -> None:
    script = "<script>alert(1)</script>"
    form = _form("escape", title=f"{script} & <b>sale</b>", reason=script)
    assert console.post("/console/promotions/publish", form).status_code == 303
    page = console.http.get("/console/promotions").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;sale&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>sale" not in page
    # An error page echoes what was typed as text as well.
    bad = console.post("/console/promotions/publish", _form(script))
    assert bad.status_code == 400 and "<script>alert" not in bad.text
    for path, data in (
        ("/console/promotions/publish", {}),
        ("/console/promotions/end", {}),
        ("/console/promotions/publish", {"name": "x" * 5000, "ends_at": "\x00"}),
    ):
        resp = console.post(path, data)
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
    as_json = console.http.post("/console/promotions/publish", json={"name": "j"})
    assert as_json.status_code == 400 and "x-www-form-urlencoded" in as_json.text
    assert console.http.get("/console/promotions?saved=abc").status_code == 400
