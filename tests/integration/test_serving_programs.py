"""Published discount programs from the ``programs_file`` setting: quotes over HTTP carry each
applied program on its own line, and an invalid program stops the server at start (rule G4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_support import KEYS, Clients, running_server, tiny_bundles

from fairshelf.errors import InvalidArgument, PolicyRejected
from serving.api_models import QuotePricesOut
from serving.app import FairshelfServer
from serving.settings import load_settings

PROGRAMS: list[dict[str, Any]] = [
    {
        "program_id": "welcome10",
        "title": "Welcome offer",
        "public_text": "New customers get 10% off their first order.",
        "eligibility": "new_customer",
        "percent_off": 10,
    },
    {
        "program_id": "coupon-save1",
        "title": "SAVE1 coupon",
        "public_text": "Enter SAVE1 for 1.00 off any item.",
        "eligibility": "coupon_code",
        "amount_off": 1.0,
        "code": "SAVE1",
    },
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FairshelfServer]:
    root = tmp_path_factory.mktemp("programs")
    path = root / "programs.json"
    path.write_text(json.dumps({"programs": PROGRAMS}))
    with running_server(
        tiny_bundles(root / "bundles"), root / "db.sqlite", programs_file=path
    ) as srv:
        yield srv


def _quote(clients: Clients, item: str, shopper: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"item_ids": [item]}
    if shopper is not None:
        body["shopper"] = shopper
    resp = clients.http.post("/v1/prices/quote", json=body, headers=clients.hdr())
    assert resp.status_code == 200, resp.text
    # Built without a model on the hot path: byte for byte what the published model gives.
    assert (
        resp.content == QuotePricesOut.model_validate_json(resp.content).model_dump_json().encode()
    )
    data = resp.json()
    quote: dict[str, Any] = data["quotes"][0]
    return quote


def test_quotes_carry_the_published_program_lines(
    server: FairshelfServer, clients: Clients
) -> None:
    bundle = server.holder.require().bundle
    item = str(bundle.item_ids[4])
    per_user = bundle.interactions.groupby("user_index")["purchases"].sum()
    buyer = str(bundle.user_ids[int(per_user.index[int(per_user.to_numpy().argmax())])])

    anonymous = _quote(clients, item, None)
    # An anonymous visitor has no orders: the new-customer program is theirs too.
    assert [d["program"] for d in anonymous["discounts"]] == ["welcome10"]
    fair = anonymous["list_price"]

    newcomer = _quote(clients, item, {"user_id": "never-bought-anything"})
    assert [d["program"] for d in newcomer["discounts"]] == ["welcome10"]
    line = newcomer["discounts"][0]
    assert line["title"] == "Welcome offer" and line["public_text"] == PROGRAMS[0]["public_text"]
    assert line["amount"] == pytest.approx(round(fair * 0.10, 2))
    # Same list price for everyone; only the published line lowers the final price.
    assert newcomer["list_price"] == fair
    assert newcomer["final_price"] == pytest.approx(fair - line["amount"])

    # A shopper with orders in the training history is no new customer (server-side facts).
    loyal = _quote(clients, item, {"user_id": buyer, "coupon_codes": ["SAVE1"]})
    assert [d["program"] for d in loyal["discounts"]] == ["coupon-save1"]
    assert loyal["list_price"] == fair
    assert loyal["final_price"] == pytest.approx(fair - 1.0)

    explained = clients.http.get(f"/v1/prices/quotes/{loyal['quote_id']}", headers=clients.hdr())
    assert explained.status_code == 200
    assert "coupon-save1" in json.dumps(explained.json()["explanation"])
    report = clients.http.get("/v1/audit/report", headers=clients.hdr("admin")).json()
    assert report["report"]["g4_violations"] == 0


@pytest.mark.parametrize(
    ("program", "field"),
    [
        ({**PROGRAMS[0], "percent_off": -5}, "percent_off"),
        ({**PROGRAMS[0], "public_text": " "}, "public_text"),
    ],
)
def test_an_invalid_program_stops_the_server_at_start(
    tmp_path: Path, program: dict[str, Any], field: str
) -> None:
    path = tmp_path / "programs.json"
    path.write_text(json.dumps([program]))
    settings = load_settings(
        None,
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        http_port=0,
        grpc_port=0,
        api_keys={key: role for role, key in KEYS.items()},
        programs_file=path,
    )
    with pytest.raises(PolicyRejected) as err:
        FairshelfServer(settings)
    assert err.value.field == field
    assert str(path) in str(err.value) and "welcome10" in str(err.value)


def test_a_missing_or_malformed_programs_file_is_refused(tmp_path: Path) -> None:
    from serving.pricing_wiring import load_programs

    with pytest.raises(InvalidArgument) as err:
        load_programs(tmp_path / "absent.json")
    assert err.value.field == "programs_file"
    bad = tmp_path / "bad.json"
    bad.write_text('{"programs": 3}')
    with pytest.raises(InvalidArgument):
        load_programs(bad)
