"""The one settings object of the server: ``FAIRSHELF_*`` environment variables and a file.

Precedence, highest first: explicit arguments (the CLI flags), environment variables
(``FAIRSHELF_HTTP_PORT=8081``; nested values with ``__`` such as ``FAIRSHELF_RECSYS__OVERSAMPLE``
or a JSON string such as ``FAIRSHELF_API_KEYS='{"sk-1": "admin"}'``), the config file (TOML,
JSON or YAML), then the defaults below. The object is built once and passed in; nothing deeper
reads the environment.
"""

from __future__ import annotations

import json
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fairshelf.errors import InvalidArgument
from recsys.config import RecsysConfig


class Role(StrEnum):
    """What an API key may do (see :mod:`serving.auth` for the operation table)."""

    STOREFRONT = "storefront"
    PRICING = "pricing"
    ADMIN = "admin"


class Settings(BaseSettings):
    """Everything the server can be configured with.

    Parameters
    ----------
    bundles_dir:
        Directory holding model bundles; the server serves ``bundles_dir/current``.
    db_url:
        ``sqlite:///path.db`` (WAL, the default) or ``postgresql+psycopg://...``.
    host:
        Interface both transports bind to.
    http_port, grpc_port:
        Ports; 0 picks a free port (reported in the logs and by the running server).
    api_keys:
        API key -> role. Keys are compared in constant time and never logged or printed.
    auth_enabled:
        When false every call runs with the admin role (local development only).
    pseudonym_key:
        Secret (at least 16 characters) keying the HMAC pseudonyms under which the audit log
        names shoppers (opt-out changes), so the append-only log holds no shopper id. Keep it
        secret and the same on every replica and across restarts, or one shopper's changes no
        longer line up; when unset a random key is made per process (with a warning).
    console_secret, console_session_seconds:
        Key (at least 16 characters) signing the console's session cookies, and how long a
        console sign-in lasts. Keep the secret the same on every worker and replica; when
        unset a random one is made per process (sessions then end at a restart).
    price_epoch_seconds:
        Length of a price epoch: every shopper sees the same price within one (rule G3). Must
        divide a day evenly (e.g. 900, 3600).
    pricing_enabled:
        Wire the pricing operations (fairness guard over the pricing engine).
    pricing_policy, pricing_policy_params:
        A registered pricing policy (``static``, ``markdown``, ``elasticity_optimal``,
        ``competitor_match``) and its parameters; shopper-level inputs are refused (rule G1).
    currency:
        ISO code reported on quotes.
    programs_file:
        JSON document of the published discount programs (rule G4): a list of programs, or an
        object with a ``programs`` list, each as ``DiscountProgram.to_json`` writes it. A
        program that could raise a price or lacks public text stops the server at start.
    reload_interval_seconds:
        How often the bundle watcher looks at ``bundles_dir/current``.
    grpc_max_workers:
        Threads serving gRPC calls.
    grpc_max_connection_age_seconds, grpc_max_connection_age_grace_seconds:
        A gRPC connection is asked to close (GOAWAY) after about this long (grpc adds +-10%
        jitter), its calls in flight given the grace to finish; clients reconnect at once.
        A storefront keeps one gRPC channel open for hours, so without this every call of a
        client would stay on the worker (or replica) its connection first reached, however
        busy; reconnecting lets the kernel (``SO_REUSEPORT``) or a TCP load balancer spread
        them again.
    workers:
        Serving processes on this host sharing both ports (``SO_REUSEPORT``); one Python
        process runs requests on one core at a time, so set it to the cores to use.
    pin_workers:
        Keep each worker and all its threads on one core (worker ``i`` on the ``i``-th core
        this process may use, round robin): less CPU per call on a host whose cores serve
        fairshelf alone, worse when other work shares them (see :mod:`serving.cpu_affinity`).
    reuse_port:
        Bind both ports with ``SO_REUSEPORT`` so that several processes share them (set for
        each worker by ``workers``; a lone server leaves it off so a second one on the same
        port fails to start instead of silently sharing it).
    log_format, log_level:
        ``json`` for production, ``console`` for a terminal.
    quote_batch_seconds:
        How long the quote writer gathers quotes before committing them as one batch, sealed by
        one audit record: longer means fewer audit records under light traffic, and more
        quote-log rows a process crash can lose.
    checkpoint_sinks:
        Where signed checkpoints of the audit log go, outside its database: directories,
        database URLs, or ``log`` (the log stream); the first one numbers them. Empty: none.
    checkpoint_key, checkpoint_key_file:
        The Ed25519 private key (PKCS#8 PEM) signing checkpoints, as text (best from the
        environment, ``FAIRSHELF_CHECKPOINT_KEY``) or a secret file; never logged.
    checkpoint_every_records, checkpoint_every_seconds:
        A checkpoint is signed once the log grew by this many records, or this long after the
        last one when it grew at all.
    recsys:
        Retrieval, filter and re-ranking tuning passed to the recommender.
    exposure_logging, exposure_buffer, exposure_batch:
        Log every Recommend answer for experiment readouts, holding at most
        ``exposure_buffer`` exposures in memory (more are dropped and counted) and writing
        ``exposure_batch`` per transaction.
    attribution_window_hours:
        How long after a showing a click or purchase of a shown item is credited to it in
        ``GET /v1/experiments/{name}/report``.
    """

    model_config = SettingsConfigDict(
        env_prefix="FAIRSHELF_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    bundles_dir: Path | None = None
    db_url: str = "sqlite:///fairshelf.db"
    host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    api_keys: dict[str, Role] = Field(default_factory=dict, repr=False)
    auth_enabled: bool = True
    pseudonym_key: SecretStr | None = Field(default=None, repr=False)
    console_secret: SecretStr | None = Field(default=None, repr=False)
    console_session_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    price_epoch_seconds: int = Field(default=900, ge=1)
    pricing_enabled: bool = True
    pricing_policy: str = "elasticity_optimal"
    pricing_policy_params: dict[str, Any] = Field(default_factory=dict)
    currency: str = "EUR"
    programs_file: Path | None = None
    reload_interval_seconds: float = Field(default=5.0, gt=0)
    grpc_max_workers: int = Field(default=8, ge=1, le=256)
    grpc_max_concurrent_rpcs: int = Field(default=128, ge=1)
    grpc_max_connection_age_seconds: float = Field(default=60.0, gt=0)
    grpc_max_connection_age_grace_seconds: float = Field(default=10.0, ge=0)
    workers: int = Field(default=1, ge=1, le=64)
    pin_workers: bool = False
    reuse_port: bool = False
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    recsys: RecsysConfig = Field(default_factory=RecsysConfig)
    quote_batch_seconds: float = Field(default=1.0, gt=0, le=60)
    checkpoint_sinks: list[str] = Field(default_factory=list)
    checkpoint_key: SecretStr | None = Field(default=None, repr=False)
    checkpoint_key_file: Path | None = None
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=60.0, gt=0)
    exposure_logging: bool = True
    exposure_buffer: int = Field(default=100_000, ge=1)
    exposure_batch: int = Field(default=1000, ge=1)
    attribution_window_hours: float = Field(default=168.0, gt=0)

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, value: dict[str, Role]) -> dict[str, Role]:
        # Short keys are guessable; the message must not echo the key itself.
        for n, key in enumerate(value):
            if len(key) < 16:
                raise ValueError(f"api key #{n + 1} is shorter than 16 characters")
        return value

    @field_validator("pseudonym_key", "console_secret")
    @classmethod
    def _pseudonym_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short key would let anyone holding the log brute-force shopper ids back.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the key must be at least 16 characters")
        return value


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidArgument(f"config file {path} does not exist", field="config")
    suffix = path.suffix.lower()
    text = path.read_text()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml  # optional: only needed for YAML config files

            data = yaml.safe_load(text) or {}
        else:
            raise InvalidArgument(
                f"config file {path} must end in .toml, .json, .yaml or .yml", field="config"
            )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"config file {path} is not valid: {exc}", field="config") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"config file {path} must hold a table/object", field="config")
    # A [fairshelf] table is accepted too, so the file can be shared with other tools.
    inner = data.get("fairshelf", data)
    return dict(inner) if isinstance(inner, dict) else data


class _FileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, an optional file, the environment and ``overrides``.

    Parameters
    ----------
    config_file:
        TOML, JSON or YAML file with the fields of :class:`Settings` (optionally under a
        ``[fairshelf]`` table).
    **overrides:
        Values that win over everything else (CLI flags); ``None`` values are ignored.

    Returns
    -------
    Settings

    Raises
    ------
    InvalidArgument
        If the file is missing or unreadable, or a value is invalid (naming the field).
    """
    file_data = _read_config_file(Path(config_file)) if config_file is not None else {}
    explicit = {k: v for k, v in overrides.items() if v is not None}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _FileSource(settings_cls, file_data))

    try:
        loaded = _Loaded(**explicit)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        # input values are left out: they could be API keys.
        raise InvalidArgument(f"setting {where}: {first['msg']}", field=where) from None
    return loaded
