"""serving.settings: precedence of flags, environment and config file; validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairshelf.errors import InvalidArgument
from serving.settings import Role, load_settings

KEY = "sk-test-0123456789abcdef"


def test_defaults_are_loopback_sqlite() -> None:
    s = load_settings()
    assert s.host == "127.0.0.1"
    assert s.db_url.startswith("sqlite")
    assert s.auth_enabled


def test_precedence_flag_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "fairshelf.toml"
    cfg.write_text(
        f'http_port = 9000\ngrpc_port = 9001\ncurrency = "USD"\n[api_keys]\n"{KEY}" = "pricing"\n'
        "[recsys]\noversample = 7\n"
    )
    monkeypatch.setenv("FAIRSHELF_HTTP_PORT", "9100")
    monkeypatch.setenv("FAIRSHELF_GRPC_PORT", "9101")
    monkeypatch.setenv("FAIRSHELF_RECSYS__DIVERSITY_LAMBDA", "0.3")
    s = load_settings(cfg, grpc_port=9201, db_url=None)
    assert s.grpc_port == 9201  # flag
    assert s.http_port == 9100  # env over file
    assert s.currency == "USD"  # file over default
    assert s.api_keys == {KEY: Role.PRICING}
    assert s.recsys.oversample == 7 and s.recsys.diversity_lambda == 0.3


def test_json_config_and_fairshelf_table(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"fairshelf": {"price_epoch_seconds": 60}}))
    assert load_settings(cfg).price_epoch_seconds == 60


def test_api_keys_never_in_repr(tmp_path: Path) -> None:
    s = load_settings(api_keys={KEY: "admin"})
    assert KEY not in repr(s) and KEY not in str(s)


def test_short_key_rejected_without_echoing_it() -> None:
    with pytest.raises(InvalidArgument) as err:
        load_settings(api_keys={"short-key": "admin"})
    assert "short-key" not in str(err.value)
    assert err.value.field == "api_keys"


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        load_settings(http_port=70000)
    assert err.value.field == "http_port"
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("http_port = [")
    with pytest.raises(InvalidArgument, match="not valid"):
        load_settings(bad)
    unknown = tmp_path / "u.toml"
    unknown.write_text("no_such_setting = 1\n")
    with pytest.raises(InvalidArgument) as err:
        load_settings(unknown)
    assert err.value.field == "no_such_setting"


def test_worker_count_is_bounded() -> None:
    assert load_settings().workers == 1
    assert load_settings(workers=4).workers == 4
    for bad in (0, 65):
        with pytest.raises(InvalidArgument) as err:
            load_settings(workers=bad)
        assert err.value.field == "workers"
