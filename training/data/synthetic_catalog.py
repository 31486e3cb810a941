"""The synthetic storefront's catalog and shoppers, with their hidden ground truth.

Items belong to leaf categories; each category has a latent centroid and a mean price
elasticity, each item a latent vector near its category's centroid and its own true elasticity.
Each shopper prefers one or two categories and has a latent vector near those centroids, so the
planted structure is what a trained recommender must find.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Leaf categories: path, typical price (GBP-like units), nouns for titles.
CATEGORIES: Final[tuple[tuple[str, float, tuple[str, ...]], ...]] = (
    ("home/kitchen", 24.0, ("Mug", "Kettle", "Pan", "Knife Set", "Teapot")),
    ("home/garden", 35.0, ("Planter", "Hose", "Trowel", "Bird Feeder", "Lantern")),
    ("electronics/audio", 80.0, ("Headphones", "Speaker", "Earbuds", "Soundbar")),
    ("electronics/accessories", 18.0, ("Cable", "Charger", "Phone Case", "Power Bank")),
    ("fashion/shoes", 60.0, ("Sneakers", "Boots", "Sandals", "Loafers")),
    ("fashion/bags", 45.0, ("Backpack", "Tote", "Wallet", "Duffel")),
    ("beauty/skincare", 15.0, ("Cleanser", "Serum", "Moisturiser", "Sunscreen")),
    ("grocery/snacks", 4.0, ("Crisps", "Nuts", "Chocolate", "Granola")),
    ("grocery/drinks", 6.0, ("Coffee", "Tea", "Juice", "Sparkling Water")),
    ("toys/games", 28.0, ("Puzzle", "Board Game", "Card Game", "Building Set")),
)
BRANDS: Final[tuple[str, ...]] = (
    "Northwind",
    "Alder",
    "Brightline",
    "Cobalt",
    "Fernway",
    "Halcyon",
    "Juniper",
    "Marlow",
    "Oakridge",
    "Pioneer",
)
DEVICES: Final[tuple[str, ...]] = ("ios", "android", "web")
REGIONS: Final[tuple[str, ...]] = ("north", "south", "east", "west", "central")
LATENT_DIM: Final[int] = 8


@dataclass(frozen=True)
class Catalog:
    """Items plus the hidden per-item truth, as aligned arrays (index = item position)."""

    items: pd.DataFrame
    category_index: IntArray
    base_price: FloatArray
    base_conversion: FloatArray
    elasticity: FloatArray
    popularity: FloatArray
    latent: FloatArray
    category_centroids: FloatArray
    category_elasticity: FloatArray


@dataclass(frozen=True)
class Shoppers:
    """Users plus the hidden per-user truth (index = user position)."""

    users: pd.DataFrame
    loyal: npt.NDArray[np.bool_]
    favourites: IntArray  # (n_users, 2); second column is -1 when a user has one favourite
    latent: FloatArray
    region_index: IntArray
    device_index: IntArray
    active_from_day: FloatArray  # first day (fractional, from the window start) they can shop


def make_catalog(rng: np.random.Generator, n_items: int) -> Catalog:
    """Draw the catalog.

    Parameters
    ----------
    rng:
        The generator's random state.
    n_items:
        Number of items (at least the number of categories, so every category is stocked).

    Returns
    -------
    Catalog
        Canonical ``items`` table and the truth arrays aligned with it.
    """
    n_cat = len(CATEGORIES)
    centroids = rng.normal(size=(n_cat, LATENT_DIM))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cat_elasticity = rng.uniform(-2.5, -0.8, size=n_cat)

    # Round-robin then shuffle: every category gets items, sizes differ by at most one.
    cat_idx = rng.permutation(np.arange(n_items, dtype=np.int64) % n_cat)
    typical = np.array([c[1] for c in CATEGORIES])[cat_idx]
    base_price = np.round(typical * rng.lognormal(0.0, 0.35, size=n_items), 2)
    base_price = np.maximum(base_price, 0.5)
    unit_cost = np.round(base_price * rng.uniform(0.35, 0.75, size=n_items), 2)
    stock = rng.integers(5, 400, size=n_items)
    stock[rng.random(n_items) < 0.08] = 0
    elasticity = np.clip(cat_elasticity[cat_idx] + rng.normal(0.0, 0.25, n_items), -3.5, -0.3)
    base_conversion = rng.uniform(0.04, 0.14, size=n_items)
    popularity = rng.lognormal(0.0, 0.8, size=n_items)
    latent = centroids[cat_idx] + rng.normal(0.0, 0.45, size=(n_items, LATENT_DIM))

    brand_idx = rng.integers(0, len(BRANDS), size=n_items)
    noun_pick = rng.integers(0, 1_000, size=n_items)
    titles = [
        f"{BRANDS[b]} {CATEGORIES[c][2][k % len(CATEGORIES[c][2])]} {100 + i % 900}"
        for i, (b, c, k) in enumerate(zip(brand_idx, cat_idx, noun_pick, strict=True))
    ]
    items = pd.DataFrame(
        {
            "item_id": pd.Series([f"I{i:05d}" for i in range(n_items)], dtype="str"),
            "title": pd.Series(titles, dtype="str"),
            "category": pd.Series([CATEGORIES[c][0] for c in cat_idx], dtype="str"),
            "brand": pd.Series([BRANDS[b] for b in brand_idx], dtype="str"),
            "base_price": base_price.astype(np.float64),
            "unit_cost": unit_cost.astype(np.float64),
            "stock": pd.Series(stock, dtype="Int64"),
        }
    )
    return Catalog(
        items=items,
        category_index=cat_idx,
        base_price=base_price.astype(np.float64),
        base_conversion=base_conversion,
        elasticity=elasticity,
        popularity=popularity,
        latent=latent,
        category_centroids=centroids,
        category_elasticity=cat_elasticity,
    )


def make_shoppers(
    rng: np.random.Generator,
    n_users: int,
    days: int,
    start: pd.Timestamp,
    centroids: FloatArray,
    loyal_share: float,
) -> Shoppers:
    """Draw the shoppers.

    Parameters
    ----------
    rng:
        The generator's random state.
    n_users:
        Number of users.
    days:
        Length of the event window in days.
    start:
        First instant of the window (UTC).
    centroids:
        Category latent centroids from :func:`make_catalog`.
    loyal_share:
        Fraction of users in the ``loyal`` segment.

    Returns
    -------
    Shoppers
        Canonical ``users`` table and the truth arrays aligned with it.
    """
    n_cat = centroids.shape[0]
    loyal = rng.random(n_users) < loyal_share
    # Loyal shoppers signed up well before the window; new ones before or during it.
    signup_offset = np.where(
        loyal,
        -rng.uniform(90.0, 900.0, size=n_users),
        rng.uniform(-30.0, max(days * 0.6, 1.0), size=n_users),
    )
    signup_offset = np.floor(signup_offset * 1440.0) / 1440.0  # to the minute
    first = rng.integers(0, n_cat, size=n_users)
    second = (first + rng.integers(1, n_cat, size=n_users)) % n_cat
    has_two = rng.random(n_users) < 0.5
    favourites = np.stack([first, np.where(has_two, second, -1)], axis=1).astype(np.int64)
    fav_mean = np.where(
        has_two[:, None], (centroids[first] + centroids[second]) / 2.0, centroids[first]
    )
    latent = fav_mean + rng.normal(0.0, 0.35, size=(n_users, centroids.shape[1]))
    device_idx = rng.choice(len(DEVICES), size=n_users, p=[0.4, 0.35, 0.25]).astype(np.int64)
    region_idx = rng.integers(0, len(REGIONS), size=n_users)

    signup = start + pd.to_timedelta(np.round(signup_offset * 86400.0), unit="s")
    users = pd.DataFrame(
        {
            "user_id": pd.Series([f"U{i:06d}" for i in range(n_users)], dtype="str"),
            "tenure": pd.Series(np.where(loyal, "loyal", "new"), dtype="str"),
            "device": pd.Series(np.array(DEVICES)[device_idx], dtype="str"),
            "region": pd.Series(np.array(REGIONS)[region_idx], dtype="str"),
            "signup_date": pd.Series(signup).astype("datetime64[us, UTC]"),
        }
    )
    return Shoppers(
        users=users,
        loyal=loyal,
        favourites=favourites,
        latent=latent,
        region_index=region_idx.astype(np.int64),
        device_index=device_idx,
        active_from_day=np.maximum(signup_offset, 0.0),
    )
