"""Constant-elasticity demand: the one demand law shared by the synthetic store and the simulator.

Expected purchase probability of a shopper who views an item at price ``p`` is

    q(p) = q0 * (p / p0) ** elasticity,   clipped to [0, q_max]

where ``p0`` is the item's base price, ``q0`` its conversion at the base price and
``elasticity`` < 0 its true price elasticity. A log-log regression of units on price recovers
``elasticity`` exactly in expectation, which is what makes the generator a fair test of the
estimator.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAX_CONVERSION = 0.95


def conversion(
    price: FloatArray | float,
    base_price: FloatArray | float,
    base_conversion: FloatArray | float,
    elasticity: FloatArray | float,
) -> FloatArray:
    """Purchase probability per view at ``price`` under constant elasticity.

    Parameters
    ----------
    price, base_price:
        Shown price and the item's reference price (same units, > 0).
    base_conversion:
        Purchase probability per view at the base price, in (0, 1).
    elasticity:
        True price elasticity (negative for ordinary goods).

    Returns
    -------
    numpy.ndarray
        Probabilities in [0, MAX_CONVERSION].
    """
    ratio = np.asarray(price, dtype=np.float64) / np.asarray(base_price, dtype=np.float64)
    q = np.asarray(base_conversion, dtype=np.float64) * np.power(ratio, elasticity)
    return np.clip(q, 0.0, MAX_CONVERSION)


def expected_units(
    price: FloatArray | float,
    base_price: FloatArray | float,
    base_units: FloatArray | float,
    elasticity: FloatArray | float,
) -> FloatArray:
    """Expected units sold per period at ``price`` (``base_units`` at the base price)."""
    ratio = np.asarray(price, dtype=np.float64) / np.asarray(base_price, dtype=np.float64)
    return np.asarray(base_units, dtype=np.float64) * np.power(ratio, elasticity)
