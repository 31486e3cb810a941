"""The console's experiment readout page over a real server: two variants served, their
shoppers' traffic logged over HTTP, the readout read through the API's own operation."""

from __future__ import annotations

import html as htmllib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from console_support import ConsoleClient, text_of
from experiment_support import event
from serving_support import Clients, running_server, tiny_bundles

from serving.app import FairshelfServer
from serving.console.routes import CSP

SPLIT = {"default": 0.5, "als": 0.5}
SHOPPERS = 60


def _traffic(http: httpx.Client) -> dict[str, str]:
    """Recommend to every shopper; each clicks a shown item, the als shoppers buy more often."""
    variants: dict[str, str] = {}
    past = datetime.now(UTC) - timedelta(days=3)
    for n in range(SHOPPERS):
        user = f"console-shopper-{n}"
        body = http.post(
            "/v1/recommend", json={"user_id": user, "k": 5}, headers=Clients.hdr()
        ).json()
        variants[user] = body["variant"]
        shown = body["items"][0]["item_id"]
        now = datetime.now(UTC)
        evs = [event(0, user, "i-old", "purchase", 10.0 + n % 5, past)] if n % 3 else []
        evs.append(event(1, user, shown, "click", 20.0, now))
        if n % 2 == 0 if body["variant"] == "als" else n % 4 == 0:
            evs.append(event(2, user, shown, "purchase", 20.0 + n % 3, now))
        resp = http.post("/v1/events", json={"events": evs}, headers=Clients.hdr())
        assert resp.status_code == 200, resp.text
    return variants


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FairshelfServer, dict[str, str]]]:
    """A server running the two-variant experiment ``ranker``, with logged traffic."""
    root: Path = tmp_path_factory.mktemp("console-exp")
    recsys = {"experiment": {"name": "ranker", "salt": "s1", "split": SPLIT}}
    with (
        running_server(tiny_bundles(root / "bundles"), root / "db.sqlite", recsys=recsys) as srv,
        httpx.Client(base_url=f"http://127.0.0.1:{srv.http_port}", timeout=30) as http,
    ):
        variants = _traffic(http)
        deadline = time.monotonic() + 15
        while srv.exposures is not None and srv.exposures.backlog and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.exposures is not None and srv.exposures.backlog == 0
        yield srv, variants


@pytest.fixture(scope="module")
def console(served: tuple[FairshelfServer, dict[str, str]]) -> Iterator[ConsoleClient]:
    """A console client signed in with the pricing key."""
    c = ConsoleClient(served[0])
    assert c.sign_in("pricing").status_code == 303
    yield c
    c.close()


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert body, f"no table #{table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
        if "<td" in r
    ]


def test_the_page_shows_variants_metrics_and_the_chart(
    served: tuple[FairshelfServer, dict[str, str]], console: ConsoleClient
) -> None:
    server, variants = served
    resp = console.http.get("/console/experiments")  # the configured experiment by default
    assert resp.status_code == 200, resp.text
    html = resp.text
    assert 'href="/console/experiments" aria-current="page"' in html
    # The same numbers as the API's readout: one operation behind both.
    api = httpx.get(
        f"http://127.0.0.1:{server.http_port}/v1/experiments/ranker/report",
        headers=Clients.hdr("pricing"),
        timeout=30,
    ).json()["report"]
    counts = {v: list(variants.values()).count(v) for v in SPLIT}
    assert api["srm"]["observed"] == counts
    shown = {r[0].removesuffix(" (control)"): int(r[1]) for r in _cells(html, "variants")}
    assert shown == counts
    assert "ok" in text_of(html, "srm") and f"p = {api['srm']['p_value']:.3g}" in text_of(
        html, "srm"
    )
    metrics = _cells(html, "metrics")
    labels = {m["label"] for m in api["metrics"]}
    assert {(r[0], r[1]) for r in metrics} == {(m["label"], m["variant"]) for m in api["metrics"]}
    conv = next(m for m in api["metrics"] if m["metric"] == "conversion")
    row = next(r for r in metrics if r[0] == conv["label"])
    e = conv["effect"]
    assert row[4] == f"{e['absolute']:.4g} [{e['ci_low']:.4g}, {e['ci_high']:.4g}]"
    assert row[5].startswith(f"{100 * e['relative']:+.2f}%")
    assert row[6].startswith(f"{conv['cuped']['absolute']:.4g}")
    assert row[7] == f"[{conv['seq_ci_low']:.4g}, {conv['seq_ci_high']:.4g}]"
    assert row[8] == f"{conv['seq_p_value']:.3g}" and row[9] == f"{conv['p_holm']:.3g}"
    # The chart: one interval per metric with a relative effect, labels as text.
    chart = re.search(r'<figure id="effects-chart">(.*?)</figure>', html, re.S)
    assert chart and "<svg" in chart.group(1)
    with_rel = [m for m in api["metrics"] if m["effect"] and m["effect"]["relative"] is not None]
    assert chart.group(1).count('class="ci"') == len(with_rel) > 0
    assert any(label in chart.group(1) for label in labels)
    looks = {(p["metric"], p["variant"]) for p in api["path"]}
    paths = re.search(r'<div class="grid" id="paths">(.*?)</div>', html, re.S)
    assert paths and paths.group(1).count("<figure>") == len(looks) > 0
    assert paths.group(1).count('class="look"') == len(api["path"])
    guard = {r[0]: r for r in _cells(html, "guardrails")}
    assert set(guard) == set(SPLIT) and all(r[1] != "n/a" for r in guard.values())
    assert "NaN" not in html and "nan" not in re.sub(r"<[^>]+>", "", html).split()
    # Strict CSP, no inline script.
    assert resp.headers["content-security-policy"] == CSP
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert all('src="/console/static/' in a and not body for a, body in scripts)
    assert " style=" not in html and re.search(r"\son[a-z]+=", html) is None
    # Timed as the API's operation, on the console transport.
    metrics_text = httpx.get(f"{console.base}/metrics", timeout=30).text
    assert 'operation="GetExperimentReport",transport="console"' in metrics_text


def test_an_unknown_experiment_or_empty_window_is_a_message_not_a_500(
    console: ConsoleClient,
) -> None:
    resp = console.http.get("/console/experiments", params={"name": "nope"})
    assert resp.status_code == 404
    msg = htmllib.unescape(text_of(resp.text, "page-error"))
    assert "no exposures of an experiment named 'nope'" in msg and "'ranker'" in msg
    assert 'value="nope"' in resp.text  # the form keeps what was typed
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    empty = console.http.get("/console/experiments", params={"name": "ranker", "since": later})
    assert empty.status_code == 400 and "no exposures between" in text_of(empty.text, "page-error")
    bad_time = console.http.get("/console/experiments", params={"since": "yesterday"})
    assert bad_time.status_code == 400 and 'aria-invalid="true"' in bad_time.text
    # What is typed comes back as text, never as markup.
    xss = console.http.get("/console/experiments", params={"name": "<script>alert(1)</script>"})
    assert xss.status_code in (400, 404)
    assert "<script>alert" not in xss.text and "&lt;script&gt;" in xss.text


def test_storefront_is_refused_and_admin_may_read(
    served: tuple[FairshelfServer, dict[str, str]],
) -> None:
    shop = ConsoleClient(served[0])
    resp = shop.sign_in("storefront")
    assert resp.status_code == 403 and "fairshelf_console=" not in resp.headers.get(
        "set-cookie", ""
    )
    page = shop.http.get("/console/experiments")
    assert page.status_code == 303 and page.headers["location"].startswith("/console/signin")
    shop.close()
    admin = ConsoleClient(served[0])
    assert admin.sign_in("admin").status_code == 303
    assert admin.http.get("/console/experiments?name=ranker").status_code == 200
    admin.close()
