"""Hot reload: watch ``bundles_dir/current``, load and check a new bundle off the request
path, swap it in atomically, refuse a broken one.

Requests read :attr:`ModelHolder.current` once at their start; the swap replaces that one
reference, so a request runs entirely on the old or entirely on the new model, never on a mix.
Checks before a swap: every file's sha256 against the manifest (``load_bundle(verify=True)``),
the ONNX user tower's recorded parity and a probe through onnxruntime when the bundle has
one, and a probe recommendation
for a known shopper and for an unknown one. A bundle that fails any check is refused, counted
in ``fairshelf_bundle_reloads_total{outcome="refused"}``, logged with the reason, and not
tried again until ``current`` points somewhere else; the last good model keeps serving.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fairshelf.errors import FairshelfError, ModelUnavailable
from recsys.bundle import Bundle, load_bundle
from recsys.config import RecsysConfig
from recsys.recommender import Recommender
from recsys.two_tower_runtime import UserTower
from recsys.types import RecommendRequest
from serving.logging import get_logger
from serving.metrics import Metrics

log = get_logger("fairshelf.reload")

# Largest difference tolerated between the ONNX tower and the stored vectors on the probe.
PARITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LoadedModel:
    """A bundle that passed every check, with its recommender."""

    bundle: Bundle
    recommender: Recommender
    path: Path
    loaded_at: datetime

    @property
    def bundle_id(self) -> str:
        """The bundle id (also the ``model_version`` of every response)."""
        return self.bundle.manifest.bundle_id

    @property
    def trained_until(self) -> datetime | None:
        """Time of the last training event: later events are "recent" (fold-in)."""
        return self.bundle.manifest.data.last_event


class ModelHolder:
    """The one reference to the serving model, swapped atomically."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The serving model (``None`` before the first good bundle)."""
        return self._current

    def require(self) -> LoadedModel:
        """The serving model, or :class:`ModelUnavailable`."""
        model = self._current
        if model is None:
            raise ModelUnavailable("no model bundle is loaded yet")
        return model

    def swap(self, model: LoadedModel) -> None:
        """Make ``model`` the serving model (a single reference assignment)."""
        self._current = model


def _check_tower(bundle: Bundle) -> None:
    """The two-tower checks: the parity recorded at export, then a probe through onnxruntime.

    The probe runs the exported graph on a fixed batch (an empty history and short histories
    of real items) and requires finite, unit-norm vectors of the item vectors' dimension, so
    a graph that loads but computes garbage is refused before it serves.
    """
    tt = bundle.manifest.two_tower
    if tt is None or bundle.two_tower_item_vectors is None:
        return
    if not tt.parity_max_abs_diff <= 1e-4:
        raise ModelUnavailable(
            f"bundle {bundle.path}: recorded ONNX parity {tt.parity_max_abs_diff:.2e} > 1e-4"
        )
    tower = UserTower(bundle.path / tt.user_tower, tt.history_length, tt.pad_index)
    n_items = len(bundle.item_ids)
    probe = [[], [0], [n_items - 1, 0], list(range(min(n_items, tt.history_length)))]
    vectors = tower.embed(probe)
    dim = bundle.two_tower_item_vectors.shape[1]
    if vectors.shape != (len(probe), dim) or not np.all(np.isfinite(vectors)):
        raise ModelUnavailable(
            f"bundle {bundle.path}: ONNX user tower gave shape {vectors.shape} or non-finite "
            f"values on the probe (expected {(len(probe), dim)})"
        )
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.abs(norms - 1.0) <= PARITY_TOLERANCE):
        raise ModelUnavailable(
            f"bundle {bundle.path}: ONNX user tower vectors are not unit-norm on the probe"
        )


def load_and_check(path: Path, config: RecsysConfig) -> LoadedModel:
    """Load the bundle at ``path`` and run every check; nothing is swapped here.

    Parameters
    ----------
    path:
        A bundle directory (already resolved from ``current``).
    config:
        Recommender tuning.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelUnavailable
        On a hash mismatch, unreadable file, failed parity or failed probe.
    """
    bundle = load_bundle(path, verify=True)
    _check_tower(bundle)
    recommender = Recommender(bundle, config)
    # Probe: a known shopper (if any) and an unknown one must both get a list.
    probes = ["__fairshelf_probe__"]
    if len(bundle.user_ids):
        probes.append(str(bundle.user_ids[0]))
    for user in probes:
        result = recommender.recommend(RecommendRequest(user_id=user, k=5), [], opted_out=False)
        scores = np.array([it.score for it in result.items], dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise ModelUnavailable(f"bundle {path}: probe recommendation has non-finite scores")
    return LoadedModel(bundle, recommender, path, datetime.now(UTC))


# Young-generation threshold of the cyclic collector while serving. Requests allocate many
# short-lived objects; at CPython's default (700) a collection interrupts about one request in
# a hundred. At 20,000 collections are rarer and, with the long-lived heap frozen, still short:
# the 20-item QuotePrices p99 fell from 0.50-0.71 ms to 0.25-0.51 ms (pricing_bench).
GC_THRESHOLDS = (20_000, 20, 20)


def settle_heap() -> None:
    """Free the previous bundle, then freeze the long-lived heap out of the cyclic collector.

    A bundle is hundreds of thousands of long-lived objects; without the freeze every full
    collection triggered by request garbage would walk all of them, stealing milliseconds
    from requests. The one collection here runs in the watcher thread at swap time; the
    collector's thresholds are then set for request traffic (:data:`GC_THRESHOLDS`).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def resolve_current(bundles_dir: Path) -> Path | None:
    """The bundle ``bundles_dir/current`` points at (or ``bundles_dir`` itself if it is a
    bundle), or ``None`` when there is none yet."""
    if (bundles_dir / "manifest.json").is_file():
        return bundles_dir.resolve()
    link = bundles_dir / "current"
    if not link.exists():
        return None
    return Path(os.path.realpath(link))


class BundleWatcher:
    """Polls ``bundles_dir/current`` and swaps in new bundles that pass the checks.

    Parameters
    ----------
    bundles_dir:
        Directory written by ``fairshelf train``.
    holder:
        Receives good models.
    config:
        Recommender tuning.
    metrics:
        Reload counters and the loaded-bundle gauge.
    interval:
        Seconds between polls.
    loader:
        Loads and checks one bundle (tests may pass a slower or stricter one).
    """

    def __init__(
        self,
        bundles_dir: Path,
        holder: ModelHolder,
        config: RecsysConfig,
        metrics: Metrics,
        interval: float = 5.0,
        loader: Callable[[Path, RecsysConfig], LoadedModel] = load_and_check,
    ) -> None:
        self.bundles_dir = Path(bundles_dir)
        self.holder = holder
        self.config = config
        self.metrics = metrics
        self.interval = interval
        self.loader = loader
        self.refused: dict[Path, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def check_once(self) -> str:
        """Look at ``current`` once.

        Returns
        -------
        str
            ``"unchanged"``, ``"missing"``, ``"loaded"`` or ``"refused"``.
        """
        with self._lock:
            target = resolve_current(self.bundles_dir)
            if target is None:
                return "missing"
            current = self.holder.current
            if (current is not None and current.path == target) or target in self.refused:
                return "unchanged"
            started = time.perf_counter()
            try:
                model = self.loader(target, self.config)
            except (FairshelfError, OSError, ValueError, RuntimeError) as exc:
                reason = str(exc)
                self.refused[target] = reason
                self.metrics.reloads_total.labels("refused").inc()
                log.error(
                    "bundle_refused",
                    bundle=str(target),
                    reason=reason,
                    serving=current.bundle_id if current else None,
                )
                return "refused"
            self.holder.swap(model)
            settle_heap()
            self.metrics.reloads_total.labels("loaded").inc()
            if current is not None:
                self.metrics.bundle_info.remove(current.bundle_id)
            self.metrics.bundle_info.labels(model.bundle_id).set(model.loaded_at.timestamp())
            self.metrics.bundle_created.set(model.bundle.manifest.created_at.timestamp())
            log.info(
                "bundle_loaded",
                bundle=model.bundle_id,
                path=str(target),
                previous=current.bundle_id if current else None,
                seconds=round(time.perf_counter() - started, 3),
            )
            return "loaded"

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once()
            except Exception as exc:  # the watcher must outlive any surprise
                log.error("bundle_watch_failed", error=repr(exc))

    def start(self) -> None:
        """Start polling in a daemon thread (the first check is the caller's job)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fairshelf-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def status(self) -> dict[str, Any]:
        """What the watcher knows, for logs and the model-info operation."""
        return {"bundles_dir": str(self.bundles_dir), "refused": dict(self.refused)}
