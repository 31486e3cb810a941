"""The trainer's configuration: one pydantic model, loaded from a JSON or TOML file.

Every default is generic (no dataset-specific value is hard-wired); where a choice depends on
the data (ALS size, blend weights) the trainer picks it on a validation cut that lies before
the evaluation cut, from the grids given here.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fairshelf.errors import InvalidArgument
from recsys.confidence import DEFAULT_EVENT_WEIGHTS
from recsys.index import IndexSettings
from training.two_tower_train import TwoTowerConfig

ModelName = Literal["als", "two_tower", "hybrid"]


class ConfidenceConfig(BaseModel):
    """How events become ALS confidences (see :class:`recsys.confidence.ConfidenceParams`)."""

    model_config = ConfigDict(extra="forbid")

    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    quantity_weight: float = Field(default=0.0, ge=0)
    quantity_cap: float = Field(default=100.0, ge=1)
    recency_half_life_days: float | None = Field(default=90.0, gt=0)
    transform: Literal["bm25", "none"] = "bm25"
    bm25_k1: float = Field(default=100.0, gt=0)
    bm25_b: float = Field(default=0.8, ge=0, le=1)
    alpha: float = Field(default=1.0, gt=0)


class AlsConfig(BaseModel):
    """ALS hyperparameters; ``factors_grid`` is searched on the validation cut.

    One size by default: every extra size is one more ALS fit of the validation window, and
    validation chose 64 over 128 on Online Retail and MovieLens 100K.
    """

    model_config = ConfigDict(extra="forbid")

    factors_grid: list[int] = Field(default_factory=lambda: [64], min_length=1)
    regularization: float = Field(default=0.1, gt=0)
    iterations: int = Field(default=15, ge=1)
    threads: int = Field(default=0, ge=0, description="0 = all cores")


class HybridGrid(BaseModel):
    """Candidate blend parameters, chosen on the validation cut."""

    model_config = ConfigDict(extra="forbid")

    repeat_weights: list[float] = Field(
        default_factory=lambda: [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    )
    repeat_half_lives_days: list[float] = Field(default_factory=lambda: [30.0, 90.0, 365.0])
    repeat_item_exponents: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0])
    # ALS keeps a share: serving retrieves a shopper's candidates through its index.
    als_weights: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], min_length=1)
    two_tower_weights: list[float] = Field(default_factory=lambda: [0.0, 0.15, 0.3])
    trend_weights: list[float] = Field(
        default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2]
    )
    trend_half_lives_days: list[float] = Field(
        default_factory=lambda: [3.0, 7.0, 14.0],
        min_length=1,
        description="candidate popularity.half_life_days, chosen with the discovery weights",
    )
    ease_weights: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0])
    rp3beta_weights: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0])
    rounds: int = Field(default=2, ge=1, description="coordinate-ascent passes over sources")
    max_users: int = Field(
        default=2000, ge=0, description="validation shoppers sampled per mode; 0 = all"
    )
    depth: int = Field(default=200, ge=20, description="best items kept per source and shopper")


class ItemItemConfig(BaseModel):
    """EASE and RP3beta (:mod:`training.item_models`): baselines and blend sources.

    EASE inverts an (items x items) matrix and RP3beta forms dense row blocks over the catalog,
    so each is fitted only when at most ``*_max_items`` items were bought in the window (larger
    catalogs rely on ALS and the two-tower model). 10,000 by default: the inversion grows with
    the cube of the items and at 18,000 takes minutes on two cores, several times a whole
    training run of that size; raise it where the time is available (EASE stays exact up to
    memory: 8 bytes x items² during the inversion). ``top_k`` weights per item are kept (and
    served).
    """

    model_config = ConfigDict(extra="forbid")

    ease: bool = True
    ease_lambda: float = Field(default=300.0, gt=0)
    ease_max_items: int = Field(default=10_000, ge=0)
    rp3beta: bool = True
    rp3beta_alpha: float = Field(default=1.0, gt=0)
    rp3beta_beta: float = Field(default=0.3, ge=0)
    rp3beta_max_items: int = Field(default=10_000, ge=0)
    top_k: int = Field(default=200, ge=1)


_INDEX_DEFAULTS = IndexSettings()


class IndexConfig(BaseModel):
    """FAISS build settings (see :class:`recsys.index.IndexSettings`, whose defaults these are).

    ``ef_search`` is the largest query beam the trainer may choose: it picks the smallest
    beam whose recall@20 on a sample of user vectors reaches ``recall_target`` plus
    ``recall_margin`` and records recall measured on other users.
    """

    model_config = ConfigDict(extra="forbid")

    exact_below: int | None = Field(default=_INDEX_DEFAULTS.exact_below, ge=0)
    exact_max_work: int = Field(default=_INDEX_DEFAULTS.exact_max_work, ge=0)
    hnsw_m: int = Field(default=_INDEX_DEFAULTS.hnsw_m, ge=2)
    ef_construction: int = Field(default=_INDEX_DEFAULTS.ef_construction, ge=1)
    ef_search: int = Field(default=_INDEX_DEFAULTS.ef_search, ge=1)
    recall_target: float = Field(default=_INDEX_DEFAULTS.recall_target, gt=0, le=1)
    recall_margin: float = Field(default=_INDEX_DEFAULTS.recall_margin, ge=0, lt=1)


class UserCandidatesConfig(BaseModel):
    """Each trained shopper's best items, ranked exactly at export (:mod:`recsys.user_candidates`).

    ``length`` items are kept per shopper (160 covers k = 20 at the default oversampling with
    filters that keep half the catalogue; a request needing more, or widening its search
    because its filters leave too few, goes to the index). A table is skipped when it would
    exceed ``max_megabytes`` (4 bytes per item per shopper; the limit holds for the ALS and
    the two-tower table each), so very large shopper bases fall back to the index alone.
    """

    model_config = ConfigDict(extra="forbid")

    length: int = Field(default=160, ge=0, description="0 writes no table")
    max_megabytes: float = Field(default=1024.0, ge=0)


class PopularityConfig(BaseModel):
    """Recency-weighted popularity ("trending") for unknown shoppers and as a discovery part."""

    model_config = ConfigDict(extra="forbid")

    half_life_days: float = Field(default=14.0, gt=0)
    top_n: int = Field(default=200, ge=1)
    event_weights: dict[str, float] = Field(default_factory=lambda: {"purchase": 1.0})


class EvalConfig(BaseModel):
    """Temporal evaluation settings."""

    model_config = ConfigDict(extra="forbid")

    k_values: list[int] = Field(default_factory=lambda: [5, 10, 20, 50, 100])
    validation_days: int = Field(default=30, ge=1, description="validation cut = cut - this")
    baseline_popularity_days: int = Field(default=30, ge=1)
    max_eval_users: int = Field(default=0, ge=0, description="0 = all; else a seeded sample")


class TrainConfig(BaseModel):
    """Complete trainer configuration (the ``config`` field of the manifest)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName = "hybrid"
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig)
    als: AlsConfig = Field(default_factory=AlsConfig)
    two_tower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    hybrid: HybridGrid = Field(default_factory=HybridGrid)
    item_item: ItemItemConfig = Field(default_factory=ItemItemConfig)
    popularity: PopularityConfig = Field(default_factory=PopularityConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    user_candidates: UserCandidatesConfig = Field(default_factory=UserCandidatesConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    show_progress: bool = True

    def index_settings(self) -> IndexSettings:
        """The FAISS build settings."""
        return IndexSettings(**self.index.model_dump())


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a JSON or TOML config file (or defaults) and apply top-level overrides.

    Raises
    ------
    InvalidArgument
        If the file cannot be parsed or a setting is invalid (names the setting).
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        text = p.read_text()
        try:
            raw = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"config {p}: cannot parse: {exc}", field="config") from exc
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidArgument(f"config: {where}: {first['msg']}", field=where) from exc
