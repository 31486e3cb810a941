"""A coarse, deterministic category for Online Retail products, which have none.

The source gives only a free-text description. A product goes to the first group (in the
order below) one of whose keywords appears as a word of its description; otherwise to
``retail/other``. The table is small on purpose: pricing shrinks thin items toward their
category, which needs categories with many items, and a person can read the whole rule here.
"""

from __future__ import annotations

import re
from typing import Final

import pandas as pd

CATEGORY_PREFIX: Final[str] = "retail"
OTHER: Final[str] = f"{CATEGORY_PREFIX}/other"

# (group, keywords). Order matters: "CAKE STAND" is kitchen, not decoration.
KEYWORD_GROUPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("christmas", ("christmas", "xmas", "advent", "santa", "reindeer", "snowflake")),
    (
        "kitchen",
        (
            "mug",
            "cup",
            "cups",
            "bowl",
            "bowls",
            "plate",
            "plates",
            "teapot",
            "jar",
            "jars",
            "tin",
            "tins",
            "cake",
            "baking",
            "spoon",
            "spoons",
            "cutlery",
            "tea",
            "coffee",
            "lunch",
            "apron",
            "kitchen",
            "bottle",
            "jug",
            "tray",
            "napkins",
            "straws",
        ),
    ),
    ("bags", ("bag", "bags", "purse", "tote", "backpack", "shopper")),
    (
        "jewellery",
        ("necklace", "bracelet", "earrings", "ring", "charm", "brooch", "jewel", "diamante"),
    ),
    ("lighting", ("candle", "candles", "light", "lights", "lantern", "holder", "t-light")),
    (
        "stationery",
        (
            "card",
            "cards",
            "paper",
            "wrap",
            "notebook",
            "pen",
            "pencil",
            "pencils",
            "stickers",
            "sticker",
            "tape",
            "book",
            "envelope",
            "calendar",
            "tissues",
        ),
    ),
    ("toys", ("toy", "game", "games", "doll", "puzzle", "dolly", "spaceboy", "children")),
    (
        "home",
        (
            "clock",
            "frame",
            "mirror",
            "cushion",
            "sign",
            "hook",
            "hooks",
            "doormat",
            "vase",
            "drawer",
            "cabinet",
            "box",
            "boxes",
            "basket",
            "storage",
            "hanger",
            "wall",
        ),
    ),
    ("garden", ("garden", "plant", "flower", "pot", "watering", "bird")),
    ("decoration", ("decoration", "ornament", "bunting", "garland", "wreath", "heart")),
)

_WORD = re.compile(r"[a-z][a-z\-]*")


def category_for(description: str | None) -> str:
    """The coarse category path of one product description (``retail/<group>``)."""
    if not description:
        return OTHER
    words = set(_WORD.findall(description.lower()))
    for group, keywords in KEYWORD_GROUPS:
        if words.intersection(keywords):
            return f"{CATEGORY_PREFIX}/{group}"
    return OTHER


def categories_for(descriptions: pd.Series) -> pd.Series:
    """Vector form of :func:`category_for` (same index, ``str`` dtype)."""
    values = [category_for(None if pd.isna(d) else str(d)) for d in descriptions]
    return pd.Series(values, index=descriptions.index, dtype="str")
