"""A synthetic storefront whose ground truth is known (SPEC §3).

``generate_store`` writes a canonical event log, catalog and user table plus the hidden truth
(per-item true price elasticity and conversion, per-user favourite categories and latent
tastes, the loyalty segment), so tests and the pricing simulator can check answers.

The model, in one paragraph: each shopper has sessions at a rate set by their segment (loyal
shoppers shop more). A session shows some items (``impression``) and the shopper views a few,
chosen mostly from their favourite categories and, inside a category, by latent affinity. A
view becomes a ``purchase`` with probability ``pricing.demand_curve.conversion`` at that day's
shown price, which every shopper sees alike; purchases are preceded by ``click`` and
``add_to_cart``, other views sometimes click or add to cart without buying. Bought items come
back later as buy-again views with a higher conversion, and a few purchases are returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from fairshelf.errors import InvalidArgument
from training.data.canonical import EVENT_DTYPES
from training.data.synthetic_catalog import (
    CATEGORIES,
    LATENT_DIM,
    REGIONS,
    make_catalog,
    make_shoppers,
)
from training.data.synthetic_sessions import SessionModel, simulate_events

ProgressFn = Callable[[str, float], None]

EVENTS_FILE: Final[str] = "events.parquet"
ITEMS_FILE: Final[str] = "items.parquet"
USERS_FILE: Final[str] = "users.parquet"
TRUTH_ITEMS_FILE: Final[str] = "truth_items.parquet"
TRUTH_USERS_FILE: Final[str] = "truth_users.parquet"
TRUTH_FILE: Final[str] = "truth.json"


@dataclass(frozen=True)
class StorePaths:
    """Where a generated store lives on disk."""

    root: Path
    events: Path
    items: Path
    users: Path
    truth_items: Path
    truth_users: Path
    truth: Path

    @classmethod
    def in_dir(cls, root: Path | str) -> StorePaths:
        """The standard file layout under ``root``."""
        r = Path(root)
        return cls(
            root=r,
            events=r / EVENTS_FILE,
            items=r / ITEMS_FILE,
            users=r / USERS_FILE,
            truth_items=r / TRUTH_ITEMS_FILE,
            truth_users=r / TRUTH_USERS_FILE,
            truth=r / TRUTH_FILE,
        )


@dataclass(frozen=True)
class SyntheticStore:
    """A generated store loaded into memory: canonical tables plus the ground truth."""

    paths: StorePaths
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    truth_items: pd.DataFrame
    truth_users: pd.DataFrame
    truth: dict[str, Any]


def generate_store(
    out_dir: Path | str,
    *,
    users: int,
    items: int,
    days: int,
    seed: int,
    start: str = "2026-01-01",
    model: SessionModel | None = None,
    progress: ProgressFn | None = None,
) -> StorePaths:
    """Generate a synthetic store and write it to ``out_dir``.

    Parameters
    ----------
    out_dir:
        Directory to write into (created if missing; existing store files are replaced).
    users, items, days:
        Number of shoppers, catalog size (at least 10, one per leaf category) and window length.
    seed:
        Random seed; the same arguments and seed give byte-identical tables.
    start:
        First day of the window (ISO date, UTC).
    model:
        Behavioural parameters; :class:`SessionModel` defaults when omitted.
    progress:
        Called with ``(stage, fraction_done)`` as the work advances (for progress bars).

    Returns
    -------
    StorePaths
        Paths of the six files written.

    Raises
    ------
    InvalidArgument
        If a size is out of range or ``start`` is not a date.
    """
    if users < 1:
        raise InvalidArgument(f"users must be >= 1, got {users}", field="users")
    if items < len(CATEGORIES):
        raise InvalidArgument(
            f"items must be >= {len(CATEGORIES)} (one per leaf category), got {items}",
            field="items",
        )
    if days < 1:
        raise InvalidArgument(f"days must be >= 1, got {days}", field="days")
    try:
        start_ts = pd.Timestamp(start, tz="UTC").normalize()
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"start is not a date: {start!r}", field="start") from exc
    params = model or SessionModel()
    report = progress or (lambda _stage, _fraction: None)

    rng = np.random.default_rng(seed)
    report("catalog", 0.0)
    catalog = make_catalog(rng, items)
    shoppers = make_shoppers(
        rng, users, days, start_ts, catalog.category_centroids, params.loyal_share
    )
    report("sessions", 0.1)
    events = simulate_events(
        rng,
        catalog,
        shoppers,
        days=days,
        start=start_ts,
        model=params,
        progress=lambda f: report("events", 0.1 + 0.75 * f),
    )
    report("writing", 0.85)

    paths = StorePaths.in_dir(out_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    events.to_parquet(paths.events, index=False)
    catalog.items.to_parquet(paths.items, index=False)
    shoppers.users.to_parquet(paths.users, index=False)

    truth_items = pd.DataFrame(
        {
            "item_id": catalog.items["item_id"],
            "category": catalog.items["category"],
            "base_price": catalog.base_price,
            "true_elasticity": catalog.elasticity,
            "category_elasticity": catalog.category_elasticity[catalog.category_index],
            "base_conversion": catalog.base_conversion,
            "popularity": catalog.popularity,
        }
    )
    for k in range(LATENT_DIM):
        truth_items[f"latent_{k}"] = catalog.latent[:, k]
    truth_items.to_parquet(paths.truth_items, index=False)

    cat_names = np.array([c[0] for c in CATEGORIES])
    fav = shoppers.favourites
    truth_users = pd.DataFrame(
        {
            "user_id": shoppers.users["user_id"],
            "tenure": shoppers.users["tenure"],
            "device": shoppers.users["device"],
            "region": shoppers.users["region"],
            "favourite_category": pd.Series(cat_names[fav[:, 0]], dtype="str"),
            "second_category": pd.Series(
                [cat_names[c] if c >= 0 else None for c in fav[:, 1]], dtype="str"
            ),
        }
    )
    for k in range(LATENT_DIM):
        truth_users[f"latent_{k}"] = shoppers.latent[:, k]
    truth_users.to_parquet(paths.truth_users, index=False)

    truth = {
        "seed": seed,
        "users": users,
        "items": items,
        "days": days,
        "start": start_ts.isoformat(),
        "end": (start_ts + pd.Timedelta(days=days)).isoformat(),
        "events": len(events),
        "categories": [c[0] for c in CATEGORIES],
        "regions": list(REGIONS),
        "latent_dim": LATENT_DIM,
        "model": asdict(params),
        "demand_law": {
            "function": "pricing.demand_curve.conversion",
            "formula": "P(purchase | view) = clip(base_conversion * (price / base_price) "
            "** true_elasticity, 0, 0.95); buy-again views multiply base_conversion by "
            "model.rebuy_conversion_lift",
            "price": "shown unit_price of the day: base_price * factor, the same for every "
            "shopper on that day",
        },
    }
    paths.truth.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    report("done", 1.0)
    return paths


def load_store(root: Path | str) -> SyntheticStore:
    """Load a store written by :func:`generate_store`.

    Parameters
    ----------
    root:
        The directory given to :func:`generate_store`.

    Returns
    -------
    SyntheticStore
        All tables in canonical dtypes, plus ``truth.json`` as a dict.
    """
    paths = StorePaths.in_dir(root)
    events = pd.read_parquet(paths.events).astype(EVENT_DTYPES)
    return SyntheticStore(
        paths=paths,
        events=events,
        items=pd.read_parquet(paths.items),
        users=pd.read_parquet(paths.users),
        truth_items=pd.read_parquet(paths.truth_items),
        truth_users=pd.read_parquet(paths.truth_users),
        truth=json.loads(paths.truth.read_text(encoding="utf-8")),
    )


def generate_and_load(
    out_dir: Path | str,
    *,
    users: int,
    items: int,
    days: int,
    seed: int,
    start: str = "2026-01-01",
) -> SyntheticStore:
    """Generate a store (see :func:`generate_store`) and load it back in one call."""
    generate_store(out_dir, users=users, items=items, days=days, seed=seed, start=start)
    return load_store(out_dir)
