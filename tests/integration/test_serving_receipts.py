"""Quote receipts from a running server with checkpoints switched on (rule G5).

The server seals every quote batch and signs checkpoints into a directory; the receipt comes
over HTTP and gRPC, and the standard-library-plus-cryptography script of ``docs/fairness.md``
checks it offline, and refuses it once edited.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_support import Clients, grpc_error, running_server, tiny_bundles
from typer.testing import CliRunner

from fairshelf.cli.main import app
from fairshelf.errors import InvalidArgument
from proto.fairshelf.v1 import pricing_pb2
from serving.app import FairshelfServer
from serving.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("keys")
    result = CliRunner().invoke(app, ["audit", "keygen", "--out", str(root / "cp.key")])
    assert result.exit_code == 0, result.output
    return root / "cp.key", root / "cp.key.pub"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]
) -> Iterator[FairshelfServer]:
    root = tmp_path_factory.mktemp("receipts")
    with running_server(
        tiny_bundles(root / "bundles"),
        root / "db.sqlite",
        checkpoint_sinks=[str(root / "checkpoints")],
        checkpoint_key_file=keys[0],
        checkpoint_every_records=1,
        checkpoint_every_seconds=0.2,
    ) as srv:
        yield srv


def _receipt(clients: Clients, quote_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        resp = clients.http.get(f"/v1/prices/quotes/{quote_id}/receipt", headers=clients.hdr())
        assert resp.status_code == 200, resp.text
        receipt: dict[str, Any] = resp.json()["receipt"]
        if receipt["checkpoint"] is not None or time.monotonic() > deadline:
            return receipt
        time.sleep(0.1)


def _script(tmp_path: Path) -> Path:
    doc = (ROOT / "docs" / "fairness.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- receipt-verifier -->\s*```python\n(.*?)```", doc, re.S)
    assert match, "the receipt verifier is missing from docs/fairness.md"
    script = tmp_path / "verify_receipt.py"
    script.write_text(match.group(1), encoding="utf-8")
    return script


def _offline(
    tmp_path: Path, receipt: dict[str, Any], *keys: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(_script(tmp_path)), str(path), *map(str, keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_receipt_checks_offline_and_an_edited_one_does_not(
    server: FairshelfServer, clients: Clients, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    item = str(server.holder.require().bundle.item_ids[3])
    resp = clients.http.post(
        "/v1/prices/quote",
        json={"item_ids": [item], "shopper": {"user_id": "u-receipt", "tenure_days": 900}},
        headers=clients.hdr(),
    )
    assert resp.status_code == 200, resp.text
    quote_id = resp.json()["quotes"][0]["quote_id"]
    receipt = _receipt(clients, quote_id)
    assert receipt["checkpoint"] is not None, "no checkpoint was signed"
    assert receipt["quote"]["quote_id"] == quote_id
    assert receipt["batch"]["kind"] == "quote_batch"

    ok = _offline(tmp_path, receipt, keys[1])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"OK: quote {quote_id} is in batch seq {receipt['batch']['seq']}" in ok.stdout

    # gRPC gives the same document, as exact JSON text.
    reply = clients.pricing.GetQuoteReceipt(
        pricing_pb2.QuoteReceiptRequest(quote_id=quote_id), metadata=clients.md()
    )
    assert json.loads(reply.receipt_json) == receipt

    cheaper = json.loads(json.dumps(receipt))
    cheaper["quote"]["list_price"] -= 1
    assert "the leaf is not this quote" in _offline(tmp_path, cheaper, keys[1]).stdout
    forged_leaf = json.loads(json.dumps(receipt))
    row = json.loads(forged_leaf["leaf"])
    row[5] -= 1
    forged_leaf["leaf"] = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
    forged_leaf["quote"]["list_price"] = row[5]
    bad = _offline(tmp_path, forged_leaf, keys[1])
    assert bad.returncode == 1 and "not under its batch's Merkle root" in bad.stdout
    other = tmp_path / "other.key"
    assert CliRunner().invoke(app, ["audit", "keygen", "--out", str(other)]).exit_code == 0
    wrong_key = _offline(tmp_path, receipt, Path(f"{other}.pub"))
    assert wrong_key.returncode == 1 and "none of the given keys" in wrong_key.stdout


def test_unknown_quote_has_no_receipt(clients: Clients) -> None:
    resp = clients.http.get("/v1/prices/quotes/q_nope/receipt", headers=clients.hdr())
    assert resp.status_code == 404 and "quote_id" in resp.text
    err = grpc_error(
        clients.pricing.GetQuoteReceipt,
        pricing_pb2.QuoteReceiptRequest(quote_id="q_nope"),
        metadata=clients.md(),
    )
    assert err["code"] == "NOT_FOUND"


def test_the_servers_log_verifies_against_its_checkpoints(
    server: FairshelfServer, keys: tuple[Path, Path]
) -> None:
    assert server.pricing is not None and server.pricing.quotes is not None
    server.pricing.quotes.flush()
    checkpointer = server.pricing.checkpointer
    assert checkpointer is not None
    checkpointer.checkpoint(force=True)
    sink = checkpointer.sinks[0].name
    result = CliRunner().invoke(
        app,
        ["audit", "verify", "--db", server.settings.db_url, "--checkpoints", sink,
         "--public-key", str(keys[1])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "OK chain, batches and checkpoints verified" in result.output


def test_checkpoint_settings_are_checked_and_the_key_is_never_shown(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    from serving.checkpointer import build_checkpointer
    from serving.store.audit_store import AuditStore
    from serving.store.db import Database

    db = Database(str(tmp_path / "s.db"))
    audit = AuditStore(db)
    pem = keys[0].read_text()
    with_key = load_settings(None, checkpoint_key=pem, checkpoint_sinks=[str(tmp_path / "cp")])
    assert pem not in repr(with_key) and "PRIVATE" not in repr(with_key)
    assert build_checkpointer(with_key, audit) is not None
    for overrides, field in [
        ({"checkpoint_sinks": [str(tmp_path / "cp")]}, "checkpoint_key"),
        ({"checkpoint_key_file": keys[0]}, "checkpoint_sinks"),
        ({"checkpoint_sinks": ["log"], "checkpoint_key": "not a key"}, "checkpoint_key"),
        ({"checkpoint_sinks": ["log"], "checkpoint_key_file": keys[1]}, "checkpoint_key"),
        ({"checkpoint_sinks": ["log", str(tmp_path)], "checkpoint_key": pem}, "checkpoint_sinks"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            build_checkpointer(load_settings(None, **overrides), audit)
        assert caught.value.field == field
        assert "PRIVATE" not in str(caught.value)
    db.close()


def test_keygen_refuses_to_overwrite_a_key(keys: tuple[Path, Path]) -> None:
    assert keys[0].stat().st_mode & 0o777 == 0o600
    before = keys[0].read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", "from fairshelf.cli.main import main; main()", "audit", "keygen",
         "--out", str(keys[0])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "not overwriting a key" in done.stderr
    assert keys[0].read_bytes() == before
