"""Settings of the online recommendation path.

One :class:`RecsysConfig` is built by the service from its settings object and passed to
:class:`recsys.recommender.Recommender`; nothing in ``recsys`` reads the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExperimentConfig(BaseModel):
    """A randomised experiment over shoppers.

    Parameters
    ----------
    name:
        Experiment name; part of the hash so that two experiments split shoppers independently.
    salt:
        Changing the salt reshuffles every shopper (start of a new experiment run).
    split:
        Variant -> share of shoppers. Shares must be >= 0 and sum to 1 (within 1e-6). The
        recommender understands ``"default"`` (the bundle's own evaluated blend), ``"als"`` and
        ``"two_tower"`` (that retriever alone); any other name is served like ``"default"``
        and only reported.
    """

    model_config = ConfigDict(frozen=True)

    name: str = "retriever"
    salt: str = "v1"
    split: dict[str, float] = Field(default_factory=lambda: {"default": 1.0})

    @model_validator(mode="after")
    def _check_split(self) -> ExperimentConfig:
        if not self.split:
            raise ValueError("split must name at least one variant")
        if any(v < 0 for v in self.split.values()):
            raise ValueError("split shares must be >= 0")
        total = sum(self.split.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split shares must sum to 1, got {total}")
        return self


class RecsysConfig(BaseModel):
    """Tuning of retrieval, filtering and re-ranking.

    Parameters
    ----------
    oversample:
        Candidates fetched from the index per requested item, before filters and re-ranking.
    max_candidates:
        Upper bound of the widened search when filters remove too many candidates; past it the
        recommender scans the whole filtered catalog with one matrix product instead.
    scan_below:
        When a category filter leaves at most about this many items, they are scored directly
        (contiguous slices, exact) instead of asking the index for ``k * oversample / share``
        neighbours, which costs more for small shares.
    diversity_lambda:
        Penalty, in units of the normalised score range, for each item already chosen from the
        same top-level category (0 disables diversity re-ranking).
    category_cap:
        At most this many items of one top-level category in a list when the catalog allows
        (``None`` disables the cap).
    fatigue_threshold:
        Impressions without a click, cart or purchase after which an item is demoted.
    fatigue_penalty:
        Normalised-score penalty per impression at or beyond the threshold.
    item_boosts, category_boosts:
        Business boosts added to the normalised score (item_id / category path prefix ->
        boost; negative values bury).
    fold_in_min_events:
        A shopper unknown to the bundle needs at least this many weighted recent events to get
        a fold-in (ALS) or session (two-tower) vector instead of trending.
    ef_search:
        HNSW query beam width for the bundle's approximate indexes; ``None`` keeps the value
        stored in the bundle (``manifest.*.index.ef_search``): the smallest beam that met the
        trainer's recall@20 target, with its recall measured on other users. Lower is
        faster with lower recall than the manifest records; flat indexes ignore it.
    experiment:
        Variant assignment.
    """

    model_config = ConfigDict(frozen=True)

    oversample: int = Field(default=4, ge=1, le=100)
    max_candidates: int = Field(default=4000, ge=10)
    scan_below: int = Field(default=20_000, ge=0)
    diversity_lambda: float = Field(default=0.1, ge=0.0)
    category_cap: int | None = Field(default=None, ge=1)
    fatigue_threshold: int = Field(default=3, ge=1)
    fatigue_penalty: float = Field(default=0.15, ge=0.0)
    item_boosts: dict[str, float] = Field(default_factory=dict)
    category_boosts: dict[str, float] = Field(default_factory=dict)
    fold_in_min_events: int = Field(default=1, ge=1)
    ef_search: int | None = Field(default=None, ge=1)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
