"""The console in a real browser: Debian's chromium driven by Playwright against a real server
on loopback over a tiny trained bundle (serving/console/).

The tests sign in and click through the pages as the pricing team would: a guardrail change
with a reason, a lost race to a second writer, a rollback, the new bound in a quote of the
next price epoch, an item's chart and a quote's explanation, the chain check. They also take
the screenshots of docs/console.md (desktop 1280 x 800 and a 390-pixel-wide phone).

Chromium comes from the Debian package (``.ci/chromium.sh`` installs it); without it these
tests fail with that instruction rather than skip.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_support import KEYS, Clients, running_server, tiny_bundles

from serving.app import FairshelfServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# The shortest epoch the clock allows: the quote check waits for the next one, so it runs after
# the other tests have used most of that time.
EPOCH_SECONDS = 60
CHANGED: dict[str, Any] = {}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FairshelfServer]:
    """A server with short price epochs, so a change shows in a quote within seconds."""
    root = tmp_path_factory.mktemp("console_browser")
    with running_server(
        tiny_bundles(root / "bundles"), root / "db.sqlite", price_epoch_seconds=EPOCH_SECONDS
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium from Debian, headless."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (.ci/chromium.sh, run by .ci/run)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, server: FairshelfServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) at the desktop size, signed in as pricing."""
    ctx = browser.new_context(viewport=DESKTOP, base_url=f"http://127.0.0.1:{server.http_port}")
    p = ctx.new_page()
    p.set_default_timeout(15_000)
    _sign_in(p, KEYS["pricing"])
    yield p
    ctx.close()


def _sign_in(p: Any, key: str) -> None:
    p.goto("/console")
    p.fill("#api_key", key)
    p.click("button:has-text('Sign in')")
    p.wait_for_load_state()


def _shot(p: Any, name: str) -> None:
    """A small PNG of the viewport (palette of 64 colours) into docs/console/."""
    from PIL import Image

    SHOTS.mkdir(parents=True, exist_ok=True)
    img = Image.open(io.BytesIO(p.screenshot(type="png"))).convert("RGB")
    img.quantize(colors=64).save(SHOTS / f"{name}.png", optimize=True)


def _open_edit(p: Any, scope: str) -> None:
    p.goto(f"/console/guardrails/edit?scope={scope}")
    assert p.locator("h1 code").inner_text() == scope


def _no_horizontal_scroll(p: Any) -> bool:
    return bool(p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_change_a_guardrail_with_a_reason(page: Any, server: FairshelfServer) -> None:
    pricing = server.pricing
    assert pricing is not None and pricing.quotes is not None
    item = str(server.holder.require().bundle.item_ids[3])
    ceiling = round(pricing.quotes.catalog.get(item).base_price * 0.5, 2)
    _quote(server, item)  # priced in this epoch before the change
    _open_edit(page, f"item:{item}")
    page.fill("#f-ceiling", str(ceiling))
    page.fill("#f-reason", "halve the price of one item")
    page.click("#save-button")
    saved = page.locator("#saved").inner_text()
    version = pricing.store.count()
    assert f"version {version}" in saved
    assert "halve the price of one item" in page.locator(f"#v{version}").inner_text()
    CHANGED.update(item=item, ceiling=ceiling, version=version)


def _quote(server: FairshelfServer, item: str) -> dict[str, Any]:
    resp = httpx.post(
        f"http://127.0.0.1:{server.http_port}/v1/prices/quote",
        json={"item_ids": [item]},
        headers=Clients.hdr("storefront"),
    )
    return dict(resp.json()["quotes"][0])


def test_losing_a_race_shows_the_other_change(page: Any, server: FairshelfServer) -> None:
    _open_edit(page, "category:race")
    read_at = int(page.locator("input[name=expected_version]").get_attribute("value"))
    # A second writer saves first, through the API.
    other = httpx.put(
        f"http://127.0.0.1:{server.http_port}/v1/guardrails/category:race",
        json={"values": {"floor": 2.0}, "reason": "second writer got there first",
              "expected_version": read_at},
        headers=Clients.hdr("admin"),
    )  # fmt: skip
    assert other.status_code == 200
    page.fill("#f-floor", "3")
    page.fill("#f-reason", "my change")
    page.click("#save-button")
    conflict = page.locator("#conflict")
    assert "conflict" in conflict.inner_text().lower()
    assert "second writer got there first" in conflict.inner_text()
    assert page.locator("#f-floor").input_value() == "3"  # nothing typed is lost
    assert server.pricing.store.get("category:race").floor == 2.0  # type: ignore[union-attr]
    # Saving again, knowingly, applies on top of the other change.
    page.fill("#f-reason", "my change, after reading theirs")
    page.click("#save-button")
    assert page.locator("#saved").is_visible()
    assert server.pricing.store.get("category:race").floor == 3.0  # type: ignore[union-attr]


def test_roll_back_from_the_history(page: Any, server: FairshelfServer) -> None:
    store = server.pricing.store  # type: ignore[union-attr]
    _open_edit(page, "category:rollback")
    page.fill("#f-floor", "4")
    page.fill("#f-reason", "to be undone")
    page.click("#save-button")
    undone = store.count()
    page.on("dialog", lambda d: d.accept())  # the restore asks for confirmation
    row = page.locator(f"#v{undone - 1}")
    row.locator("input[name=reason]").fill("undo the floor")
    row.locator("button").click()
    page.wait_for_selector("#saved")
    assert store.count() == undone + 1
    assert store.current().rules == store.get_version(undone - 1).rules
    assert "rollback:" in page.locator(f"#v{undone + 1}").inner_text()


def test_reason_with_a_script_renders_as_text(page: Any, server: FairshelfServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    reason = "<script>alert(1)</script>"
    _open_edit(page, "category:xss")
    page.fill("#f-floor", "1")
    page.fill("#f-reason", reason)
    page.click("#save-button")
    version = server.pricing.store.count()  # type: ignore[union-attr]
    cell = page.locator(f"#v{version} td.reason")
    assert cell.inner_text() == reason
    assert cell.locator("script").count() == 0
    page.reload()
    assert dialogs == []


def test_verify_the_chain_and_export(page: Any) -> None:
    page.goto("/console/fairness")
    page.click("#verify-chain")
    status = page.locator("#chain-status").inner_text()
    assert status.startswith("Verified") and "records" in status
    with page.expect_download() as dl:
        page.click("#export-link")
    assert dl.value.suggested_filename == "fairshelf-audit-log.jsonl"


def test_a_storefront_key_is_refused(browser: Any, server: FairshelfServer) -> None:
    ctx = browser.new_context(viewport=DESKTOP, base_url=f"http://127.0.0.1:{server.http_port}")
    p = ctx.new_page()
    _sign_in(p, KEYS["storefront"])
    assert "Storefront keys cannot use the console" in p.locator("#signin-error").inner_text()
    p.goto("/console/guardrails")
    assert "/console/signin" in p.url
    ctx.close()


def test_keyboard_only_edit_of_a_guardrail(page: Any, server: FairshelfServer) -> None:
    _open_edit(page, "category:keyboard")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    order: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        if focused.startswith("f-") or focused.endswith("-button"):
            order.append(focused)
        if focused == "save-button":
            break
    assert order == [
        "f-floor", "f-ceiling", "f-min_margin", "f-max_change_pct", "f-price_ending",
        "f-objective", "f-reason", "preview-button", "save-button",
    ]  # fmt: skip
    # Fill it in with the keyboard only: shift-tab back to the fields, type, activate Save.
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "f-floor"
    page.keyboard.type("abc")
    for _ in range(6):
        page.keyboard.press("Tab")
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    # The server's message sits next to the field, which has the focus for a keyboard user.
    assert "floor" in page.locator("#err-floor").inner_text()
    assert page.evaluate("document.activeElement.id") == "f-floor"
    page.keyboard.press("Control+A")
    page.keyboard.type("1.5")
    for _ in range(8):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#saved")
    assert server.pricing.store.get("category:keyboard").floor == 1.5  # type: ignore[union-attr]


def test_the_new_bound_is_in_a_quote_of_the_next_epoch(page: Any, server: FairshelfServer) -> None:
    assert CHANGED, "runs after test_change_a_guardrail_with_a_reason"
    item, ceiling, version = CHANGED["item"], CHANGED["ceiling"], CHANGED["version"]
    deadline = time.monotonic() + EPOCH_SECONDS + 10

    def bounded(q: dict[str, Any]) -> bool:
        scope, _, at = q["guardrail_version"].rpartition("@")
        return scope == f"item:{item}" and int(at) >= version

    quote = _quote(server, item)
    while not bounded(quote) and time.monotonic() < deadline:
        time.sleep(0.5)
        quote = _quote(server, item)
    assert bounded(quote), quote
    assert quote["list_price"] <= ceiling
    # The item's chart and the quote's explanation, by clicking.
    page.goto("/console/items")
    page.fill("#q", item)
    page.press("#q", "Enter")
    page.wait_for_url(f"**/console/items/{item}")
    assert page.locator("#price-chart svg polyline.price").count() == 1
    assert page.locator("#price-chart svg polygon.band").count() == 1
    page.click(f"a:has-text('{quote['quote_id']}')")
    summary = page.locator("#explanation-summary").inner_text()
    assert quote["guardrail_version"] in summary and f"{quote['list_price']:.2f}" in summary


def test_screenshots_of_every_page_at_desktop_and_phone_sizes(
    browser: Any, server: FairshelfServer
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    item = str(server.holder.require().bundle.item_ids[3])
    # Quotes to long-standing and to new shoppers across the catalogue, for the fairness chart.
    some = [str(i) for i in server.holder.require().bundle.item_ids[:60]]
    for shopper in ({"user_id": "", "tenure_days": 800, "orders": 30}, None):
        body: dict[str, Any] = {"item_ids": some} | ({"shopper": shopper} if shopper else {})
        httpx.post(f"{base}/v1/prices/quote", json=body, headers=Clients.hdr("storefront"))
    quote = httpx.post(
        f"{base}/v1/prices/quote",
        json={"item_ids": [item], "shopper": {"user_id": "", "tenure_days": 800, "orders": 30}},
        headers=Clients.hdr("storefront"),
    ).json()["quotes"][0]
    pages = {
        "overview": "/console",
        "guardrails": "/console/guardrails",
        "guardrail-preview": None,  # a preview is a form post: filled in below
        "item": f"/console/items/{item}?days=1",
        "quote": f"/console/quotes/{quote['quote_id']}",
        "fairness": "/console/fairness",
    }
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        ctx = browser.new_context(viewport=size, base_url=base)
        p = ctx.new_page()
        p.goto("/console/signin")
        _shot(p, f"signin-{size_name}")
        _sign_in(p, KEYS["admin"])
        for name, path in pages.items():
            if path is None:
                _open_edit(p, "global")
                p.fill("#f-min_margin", "0.05")
                p.fill("#f-ceiling", "60")
                p.click("#preview-button")
                p.wait_for_selector("#preview")
                p.locator("#preview").scroll_into_view_if_needed()
            else:
                p.goto(path)
            assert p.locator("#page-error").count() == 0, name
            assert _no_horizontal_scroll(p), f"{name} scrolls sideways at {size['width']} px"
            _shot(p, f"{name}-{size_name}")
        ctx.close()
    shots = sorted(SHOTS.glob("*.png"))
    assert len(shots) >= 14
    assert all(s.stat().st_size < 200_000 for s in shots)
