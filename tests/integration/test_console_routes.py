"""The console's routes over a real server (serving/console/): sign-in and sessions, cookies,
CSRF, the Content-Security-Policy, roles, bad input, and pages that read through the service."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from console_support import ConsoleClient, csrf_of, text_of
from serving_support import KEYS, Clients, running_server, tiny_bundles

from pricing.guardrail_rules import Guardrail
from serving.app import FairshelfServer
from serving.console.routes import CSP

PAGES = [
    "/console",
    "/console/guardrails",
    "/console/guardrails/edit?scope=global",
    "/console/items",
    "/console/items?q=item",
    "/console/fairness",
]


@pytest.fixture(scope="module")
def console(server: FairshelfServer) -> Iterator[ConsoleClient]:
    """A console client signed in with the pricing key."""
    c = ConsoleClient(server)
    assert c.sign_in("pricing").status_code == 303
    yield c
    c.close()


def _item(server: FairshelfServer) -> str:
    return str(server.holder.require().bundle.item_ids[0])


def test_pages_need_a_session(server: FairshelfServer) -> None:
    c = ConsoleClient(server)
    for path in PAGES:
        resp = c.http.get(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/console/signin?next=")
    # A forged or tampered cookie is no session.
    c.http.cookies.set("fairshelf_console", "eyJyIjoiYWRtaW4ifQ.forged.sig", path="/console")
    assert c.http.get("/console").status_code == 303
    c.close()


def test_sign_in_sets_a_strict_http_only_expiring_cookie(server: FairshelfServer) -> None:
    c = ConsoleClient(server)
    resp = c.sign_in("admin")
    assert resp.status_code == 303 and resp.headers["location"] == "/console"
    cookie = next(h for h in resp.headers.get_list("set-cookie") if "fairshelf_console=" in h)
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "max-age", "path"} <= attrs
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attrs  # plain HTTP on loopback
    assert KEYS["admin"] not in cookie
    assert c.http.get("/console").status_code == 200
    # Behind a TLS-terminating proxy the cookie is Secure.
    page = c.http.get("/console/signin")
    tls = c.http.post(
        "/console/signin",
        data={"csrf": csrf_of(page.text), "api_key": KEYS["admin"], "next": "/console"},
        headers={"x-forwarded-proto": "https"},
    )
    assert "; secure" in tls.headers["set-cookie"].lower()
    c.close()


def test_sign_out_ends_the_session(server: FairshelfServer) -> None:
    c = ConsoleClient(server)
    c.sign_in("admin")
    resp = c.post("/console/signout", {})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/signin"
    assert c.http.get("/console").status_code == 303
    c.close()


def test_storefront_and_wrong_keys_are_refused(server: FairshelfServer) -> None:
    c = ConsoleClient(server)
    resp = c.sign_in("storefront")
    assert resp.status_code == 403
    assert "Storefront keys cannot use the console" in resp.text
    assert "fairshelf_console=" not in resp.headers.get("set-cookie", "")
    resp = c.sign_in(None, key="sk-not-a-real-key-at-all-000")
    assert resp.status_code == 401 and "not valid" in resp.text
    c.close()


def test_sign_in_needs_its_form_token(server: FairshelfServer) -> None:
    c = ConsoleClient(server)
    c.http.get("/console/signin")
    resp = c.http.post("/console/signin", data={"csrf": "guess", "api_key": KEYS["admin"]})
    assert resp.status_code == 403 and "fairshelf_console=" not in resp.headers.get(
        "set-cookie", ""
    )
    c.close()


def test_every_page_has_a_strict_csp_and_no_inline_script(console: ConsoleClient) -> None:
    for path in [*PAGES, "/console/signin", "/console/items/nope"]:
        resp = console.http.get(path)
        assert resp.headers["content-security-policy"] == CSP, path
        assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", resp.text, re.S)
        assert scripts and all('src="/console/static/' in a and not body for a, body in scripts)
        assert " style=" not in resp.text and "<style" not in resp.text
        assert re.search(r"\son[a-z]+=", resp.text) is None  # no inline event handler


def test_static_assets_are_served_from_the_package(console: ConsoleClient) -> None:
    for name, ctype in (("console.css", "text/css"), ("console.js", "text/javascript")):
        resp = console.http.get(f"/console/static/{name}")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(ctype)
    assert console.http.get("/console/static/../routes.py").status_code == 404
    assert console.http.get("/console/static/LICENSE.md").status_code == 404


def test_writes_need_the_session_token_and_this_origin(
    server: FairshelfServer, console: ConsoleClient
) -> None:
    version = server.pricing.store.count()  # type: ignore[union-attr]
    form = {"scope": "global", "expected_version": str(version), "max_change_pct": "0.3",
            "reason": "csrf test", "action": "save"}  # fmt: skip
    no_token = console.http.post("/console/guardrails/edit", data=form)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    wrong = console.http.post("/console/guardrails/edit", data={**form, "csrf": "x" * 32})
    assert wrong.status_code == 403
    elsewhere = console.post(
        "/console/guardrails/edit", form, headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    assert server.pricing.store.count() == version  # type: ignore[union-attr]
    # A token of another session does not pass either.
    other = ConsoleClient(server)
    other.sign_in("admin")
    stolen = console.http.post("/console/guardrails/edit", data={**form, "csrf": other.csrf()})
    assert stolen.status_code == 403
    other.close()


def test_save_shows_field_errors_next_to_the_field(console: ConsoleClient) -> None:
    page = console.http.get("/console/guardrails/edit?scope=category:nowhere")
    version = re.search(r'name="expected_version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    base = {"scope": "category:nowhere", "expected_version": version, "action": "save"}
    no_reason = console.post("/console/guardrails/edit", {**base, "floor": "1", "reason": " "})
    assert no_reason.status_code == 400
    assert "reason is required" in text_of(no_reason.text, "err-reason")
    not_number = console.post("/console/guardrails/edit", {**base, "floor": "ten", "reason": "r"})
    assert not_number.status_code == 400 and "floor" in text_of(not_number.text, "err-floor")
    assert 'value="ten"' in not_number.text  # the form comes back as typed
    bad_ending = console.post(
        "/console/guardrails/edit", {**base, "price_ending": "0.999", "reason": "r"}
    )
    assert bad_ending.status_code == 400
    assert "price_ending" in text_of(bad_ending.text, "err-price_ending")
    crossed = console.post(
        "/console/guardrails/edit", {**base, "floor": "9", "ceiling": "3", "reason": "r"}
    )
    assert crossed.status_code == 400 and 'aria-invalid="true"' in crossed.text
    bad_version = console.post("/console/guardrails/edit", {**base, "expected_version": "x"})
    assert bad_version.status_code == 400


def test_save_then_conflict_shows_the_other_change(
    server: FairshelfServer, console: ConsoleClient
) -> None:
    version = server.pricing.store.count()  # type: ignore[union-attr]
    base = {"scope": "category:conflict", "expected_version": str(version), "action": "save"}
    first = console.post("/console/guardrails/edit", {**base, "floor": "2", "reason": "first"})
    assert first.status_code == 303
    assert first.headers["location"] == f"/console/guardrails?saved={version + 1}"
    late = console.post("/console/guardrails/edit", {**base, "floor": "3", "reason": "late"})
    assert late.status_code == 409
    conflict = text_of(late.text, "conflict")
    assert "expected version" in conflict and "first" in conflict
    assert f'name="expected_version" value="{version + 1}"' in late.text
    assert server.pricing.store.get("category:conflict").floor == 2  # type: ignore[union-attr]


def test_reason_is_shown_as_text(console: ConsoleClient, server: FairshelfServer) -> None:
    version = server.pricing.store.count()  # type: ignore[union-attr]
    reason = "<script>alert(1)</script> & <b>bold</b>"
    form = {"scope": "category:escape", "expected_version": str(version), "floor": "1",
            "reason": reason, "action": "save"}  # fmt: skip
    assert console.post("/console/guardrails/edit", form).status_code == 303
    page = console.http.get("/console/guardrails").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold" not in page


def test_preview_changes_nothing(server: FairshelfServer, console: ConsoleClient) -> None:
    pricing = server.pricing
    assert pricing is not None and pricing.quotes is not None
    version = pricing.store.count()
    priced = pricing.history.count()
    form = {"scope": "global", "expected_version": str(version), "ceiling": "5", "reason": "",
            "action": "preview"}  # fmt: skip
    resp = console.post("/console/guardrails/edit", form)
    assert resp.status_code == 200
    counts = re.search(r"<strong>(\d+)</strong> of (\d+) items would change", resp.text)
    assert counts is not None
    # Every item of the catalogue is priced, some move, and none ends above the new ceiling.
    assert int(counts.group(2)) == len(pricing.quotes.catalog)
    assert int(counts.group(1)) > 0
    proposed = re.findall(r'<td class="num">[\d.]+</td><td class="num">([\d.]+)</td>', resp.text)
    assert proposed and all(float(p) <= 5.0 for p in proposed)
    assert "<svg" in resp.text and "Largest moves" in resp.text
    assert pricing.store.count() == version
    assert pricing.history.count() == priced
    assert pricing.quotes.guardrails.version == version


def test_history_paginates_and_rollback_restores(
    server: FairshelfServer, console: ConsoleClient
) -> None:
    store = server.pricing.store  # type: ignore[union-attr]
    for n in range(25):
        store.put(
            Guardrail(scope="category", key="paged", floor=1 + n),
            author="test",
            reason=f"step {n}",
        )
    total = store.count()
    pages_n = -(-total // 20)
    first = console.http.get("/console/guardrails")
    assert f"page 1 of {pages_n}" in first.text and f'id="v{total}"' in first.text
    last = console.http.get(f"/console/guardrails?page={pages_n}")
    assert 'id="v1"' in last.text
    beyond = console.http.get(f"/console/guardrails?page={pages_n + 5}")
    assert beyond.status_code == 200 and f"page {pages_n} of {pages_n}" in beyond.text
    target = total - 3
    no_reason = console.post(
        "/console/guardrails/rollback",
        {"version": str(target), "expected_version": str(total), "reason": ""},
    )
    assert no_reason.status_code == 400
    assert "reason is required" in text_of(no_reason.text, f"rb-err-{target}")
    done = console.post(
        "/console/guardrails/rollback",
        {"version": str(target), "expected_version": str(total), "reason": "undo"},
    )
    assert done.status_code == 303
    assert store.current().rules == store.get_version(target).rules
    stale = console.post(
        "/console/guardrails/rollback",
        {"version": str(target), "expected_version": str(total), "reason": "again"},
    )
    assert stale.status_code == 409 and "undo" in text_of(stale.text, "conflict")


def test_effective_guardrail_names_the_scope_of_each_field(
    server: FairshelfServer, console: ConsoleClient
) -> None:
    item = _item(server)
    page = console.http.get(f"/console/guardrails?item={item}")
    table = text_of(page.text, "effective")
    assert item in table and "floor" in table and ("global" in table or "default" in table)
    unknown = console.http.get("/console/guardrails?item=no-such-item")
    assert unknown.status_code == 200 and "unknown item" in text_of(unknown.text, "eff-err")


def test_item_page_quotes_and_explanation(
    server: FairshelfServer, console: ConsoleClient, clients: Clients
) -> None:
    item = _item(server)
    quote = clients.http.post(
        "/v1/prices/quote", json={"item_ids": [item]}, headers=Clients.hdr("storefront")
    ).json()["quotes"][0]
    page = console.http.get(f"/console/items/{item}?days=3")
    assert page.status_code == 200
    assert quote["quote_id"] in page.text and "<polyline" in page.text
    assert (
        console.http.get(f"/console/items?q={item}").headers["location"] == f"/console/items/{item}"
    )
    why = console.http.get(f"/console/quotes/{quote['quote_id']}")
    assert why.status_code == 200 and "Final price" in text_of(why.text, "explanation-summary")
    assert console.http.get("/console/quotes/q_nope").status_code == 404


def test_fairness_page_verify_and_export(console: ConsoleClient) -> None:
    page = console.http.get("/console/fairness")
    assert page.status_code == 200 and "Existing vs new shoppers" in page.text
    verified = console.post("/console/fairness/verify", {})
    assert verified.status_code == 200 and text_of(verified.text, "chain-status").startswith(
        "Verified"
    )
    export = console.http.get("/console/fairness/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert '"trailer"' in export.text.splitlines()[-1]
    assert "Verified up to record" in console.http.get("/console").text


@pytest.mark.parametrize(
    "path",
    [
        "/console/guardrails?page=-1",
        "/console/guardrails?page=1e99",
        "/console/guardrails/edit",
        "/console/guardrails/edit?scope=planet:mars",
        "/console/items/%00%ff",
        "/console/items/x?days=0",
        "/console/items/x?days=abc",
        "/console/items?q=" + "x" * 300,
        "/console/fairness?since=yesterday",
        "/console/quotes/" + "q" * 500,
    ],
)
def test_bad_input_is_a_page_with_the_message_never_a_500(
    console: ConsoleClient, path: str
) -> None:
    resp = console.http.get(path)
    assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert resp.headers["content-type"].startswith("text/html")
    assert text_of(resp.text, "page-error")


def test_malformed_forms_are_refused_with_a_message(console: ConsoleClient) -> None:
    token = console.csrf()
    as_json = console.http.post("/console/guardrails/edit", json={"csrf": token})
    assert as_json.status_code == 400 and "x-www-form-urlencoded" in as_json.text
    binary = console.http.post(
        "/console/guardrails/edit",
        content=b"csrf=" + token.encode() + b"&scope=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert binary.status_code == 400 and "UTF-8" in binary.text
    huge = console.http.post(
        "/console/guardrails/edit", data={"csrf": token, "reason": "x" * 70_000}
    )
    assert huge.status_code == 400


def test_console_calls_are_timed_as_operations(
    server: FairshelfServer, console: ConsoleClient
) -> None:
    console.http.get("/console/guardrails")
    text = httpx.get(f"{console.base}/metrics").text
    assert 'operation="GetGuardrails",transport="console"' in text


def test_repeated_failed_sign_ins_are_slowed_down(tmp_path: pytest.TempPathFactory) -> None:
    root = tmp_path  # type: ignore[assignment]
    with running_server(tiny_bundles(root / "b"), root / "db.sqlite") as srv:  # type: ignore[operator]
        c = ConsoleClient(srv)
        codes = [c.sign_in(None, key=f"sk-wrong-key-{n:020d}").status_code for n in range(4)]
        assert codes[:3] == [401, 401, 401]
        assert codes[3] == 429
        locked = c.sign_in("admin")  # even the right key waits out the delay
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        assert "try again in" in locked.text
        c.close()


def test_fairness_report_is_reused_until_recomputed_on_request(
    console: ConsoleClient, clients: Clients, server: FairshelfServer
) -> None:
    first = text_of(console.http.get("/console/fairness").text, "computed-at")
    clients.http.post(
        "/v1/prices/quote", json={"item_ids": [_item(server)]}, headers=Clients.hdr("storefront")
    )
    time.sleep(1.1)
    again = console.http.get("/console/fairness").text
    assert text_of(again, "computed-at") == first
    fresh = console.http.get("/console/fairness?fresh=1").text
    assert text_of(fresh, "computed-at") != first


def test_versions_at_name_the_set_in_force(server: FairshelfServer) -> None:
    store = server.pricing.store  # type: ignore[union-attr]
    history = sorted((c.at, c.version) for c in store.history(limit=1000))
    assert len(history) > 10
    first = history[0][0]
    probes = [first - timedelta(seconds=1)] + [at for at, _ in history]
    probes += [at + timedelta(microseconds=1) for at, _ in history] + [datetime.now(UTC)]
    probes.sort()
    expected = [max([v for at, v in history if at <= t], default=0) for t in probes]
    assert store.versions_at(probes) == expected
    assert store.versions_at([]) == []
