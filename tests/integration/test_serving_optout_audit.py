"""Every personalization change through a running server lands in the hash-chained audit log
(rule G5), naming the shopper only by a keyed pseudonym (the ``pseudonym_key`` setting)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from serving_support import Clients, running_server, tiny_bundles

from fairshelf.errors import InvalidArgument
from pricing.fairness.optout_audit import OPTOUT_KIND, pseudonym
from proto.fairshelf.v1 import shoppers_pb2
from serving.app import FairshelfServer
from serving.settings import load_settings

PSEUDONYM_KEY = "test-pseudonym-key-0000000000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FairshelfServer]:
    root = tmp_path_factory.mktemp("optout-audit")
    with running_server(
        tiny_bundles(root / "bundles"), root / "db.sqlite", pseudonym_key=PSEUDONYM_KEY
    ) as srv:
        yield srv


def _optout_records(server: FairshelfServer) -> list[Mapping[str, Any]]:
    assert server.service.audit is not None
    return [r.payload for r in server.service.audit.records() if r.kind == OPTOUT_KIND]


def test_every_personalization_change_is_audited_under_a_pseudonym(
    server: FairshelfServer, clients: Clients
) -> None:
    ref = pseudonym("shopper-optout-1", PSEUDONYM_KEY.encode())
    before = len(_optout_records(server))
    off = clients.http.put(
        "/v1/shoppers/shopper-optout-1/personalization",
        json={"enabled": False},
        headers=clients.hdr(),
    )
    assert off.status_code == 200, off.text
    # The same choice again changes nothing and is not recorded again.
    clients.shoppers.SetPersonalization(
        shoppers_pb2.SetPersonalizationRequest(user_id="shopper-optout-1", enabled=False),
        metadata=clients.md(),
    )
    clients.shoppers.SetPersonalization(
        shoppers_pb2.SetPersonalizationRequest(user_id="shopper-optout-1", enabled=True),
        metadata=clients.md(),
    )
    records = _optout_records(server)[before:]
    assert [(r["shopper_ref"], r["personalized"], r["source"]) for r in records] == [
        (ref, False, "api:http"),
        (ref, True, "api:grpc"),
    ]
    assert "shopper-optout-1" not in str(records)
    report = clients.http.get("/v1/audit/report", headers=clients.hdr("admin")).json()
    assert report["report"]["chain"]["ok"] is True


def test_pseudonym_key_must_be_long() -> None:
    with pytest.raises(InvalidArgument) as err:
        load_settings(None, pseudonym_key="short")
    assert err.value.field == "pseudonym_key" and "short" not in str(err.value)
