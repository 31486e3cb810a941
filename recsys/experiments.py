"""Deterministic assignment of shoppers to experiment variants (SPEC §5).

A shopper's variant is a pure function of (experiment name, salt, user id): every server
replica, every restart and the offline analysis agree without storing anything. The hash is
BLAKE2b, not Python's ``hash``, because the latter is salted per process.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from itertools import accumulate

from recsys.config import ExperimentConfig
from recsys.types import check_id

_SCALE = float(1 << 64)


def bucket(user_id: str, name: str, salt: str) -> float:
    """Map a shopper to a uniform number in ``[0, 1)`` for one experiment.

    Parameters
    ----------
    user_id:
        Shopper identifier.
    name, salt:
        Experiment name and salt; the separator byte keeps ``("ab", "c")`` and ``("a", "bc")``
        apart.

    Returns
    -------
    float
        A stable pseudo-uniform value.
    """
    key = b"\x1f".join(part.encode("utf-8") for part in (name, salt, user_id))
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class VariantAssigner:
    """Assign shoppers to the variants of one experiment by stable hash.

    Parameters
    ----------
    config:
        Experiment name, salt and split. Variants are taken in sorted-name order so that the
        assignment does not depend on the order of keys in a settings file.
    """

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        names = sorted(config.split)
        shares = [config.split[n] for n in names]
        self._names: tuple[str, ...] = tuple(names)
        self._edges: tuple[float, ...] = tuple(accumulate(shares))

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names, sorted."""
        return self._names

    def assign(self, user_id: str) -> str:
        """Return the variant of ``user_id``.

        Parameters
        ----------
        user_id:
            Shopper identifier.

        Returns
        -------
        str
            A variant name with a non-zero share.

        Raises
        ------
        InvalidArgument
            If ``user_id`` is blank.
        """
        check_id(user_id, "user_id")
        u = bucket(user_id, self.config.name, self.config.salt) * self._edges[-1]
        i = bisect_right(self._edges, u)
        # Zero-share variants have empty intervals; rounding can land exactly on an edge.
        while i < len(self._names) - 1 and self.config.split[self._names[i]] == 0.0:
            i += 1
        return self._names[min(i, len(self._names) - 1)]
