"""The model bundle: the one contract between the offline trainer and online serving.

A bundle is a directory written by the trainer and read here; ``docs/bundle.md`` describes
every file. Writers stage the directory under a temporary name, record the sha256 of every file
in ``manifest.json``, rename it into place and only then move the ``current`` symlink, so a
reader never sees half a bundle. Readers call :func:`load_bundle` and get typed arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fairshelf.errors import FailedPrecondition, ModelUnavailable, NotFound
from recsys.confidence import ConfidenceParams
from recsys.hybrid import HybridParams
from recsys.index import VectorIndex
from recsys.user_candidates import check_user_candidates

SCHEMA_VERSION = 1
CURRENT_LINK = "current"
MANIFEST = "manifest.json"

# File names inside a bundle directory.
ITEMS = "items.parquet"
USERS = "users.parquet"
INTERACTIONS = "interactions.parquet"
POPULARITY = "popularity.parquet"
ALS_ITEM_FACTORS = "als_item_factors.npy"
ALS_USER_FACTORS = "als_user_factors.npy"
ALS_INDEX = "als_index.faiss"
ALS_USER_CANDIDATES = "als_user_candidates.npy"
TT_USER_TOWER = "two_tower_user.onnx"
TT_ITEM_VECTORS = "two_tower_item_vectors.npy"
TT_USER_VECTORS = "two_tower_user_vectors.npy"
TT_INDEX = "two_tower_index.faiss"
TT_USER_CANDIDATES = "two_tower_user_candidates.npy"
ELASTICITY = "elasticity.parquet"
ITEM_ITEM_FILE = "item_item_{name}.npz"
REPORT = "report.md"
REJECTS = "rejects.csv"


class IndexInfo(BaseModel):
    """How a FAISS index file was built and how good it is."""

    file: str
    kind: Literal["flat", "hnsw"]
    metric: Literal["ip"] = "ip"
    dim: int
    size: int
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    recall_at_20: float = Field(description="recall@20 against exact search on user vectors")
    reason: str = Field(default="", description="why this kind and these parameters")
    p99_search_ms: float | None = Field(
        default=None, description="p99 single-query search time at build (ms)"
    )
    exact_p99_search_ms: float | None = Field(
        default=None, description="p99 single-query exact search time at build (ms)"
    )


class UserCandidatesInfo(BaseModel):
    """Each trained user's best items, ranked offline (:mod:`recsys.user_candidates`)."""

    file: str
    length: int = Field(description="item indices per user, best first")
    # Free text, so that a reader meeting a newer ranking method still serves the rows.
    method: str = "exact"


class AlsInfo(BaseModel):
    """ALS factors; fold-in parameters live in :class:`ConfidenceParams`."""

    factors: int
    iterations: int
    item_factors: str = ALS_ITEM_FACTORS
    user_factors: str = ALS_USER_FACTORS
    index: IndexInfo
    user_candidates: UserCandidatesInfo | None = None


class TwoTowerInfo(BaseModel):
    """Two-tower artefacts; the ONNX user tower embeds any shopper from recent item indices."""

    dim: int
    history_length: int = Field(description="recent items fed to the user tower, newest first")
    pad_index: int = Field(description="index used to pad short histories (= n_items)")
    input_name: str = "recent_items"
    output_name: str = "user_vector"
    user_tower: str = TT_USER_TOWER
    item_vectors: str = TT_ITEM_VECTORS
    user_vectors: str = TT_USER_VECTORS
    index: IndexInfo
    user_candidates: UserCandidatesInfo | None = None
    parity_max_abs_diff: float = Field(description="torch vs onnxruntime at export")
    price_band_edges: list[float] = Field(default_factory=list)


class ItemItemInfo(BaseModel):
    """A sparse item-item model (EASE, RP3beta): a shopper scores ``x_u @ W`` (``x_u`` = 0/1
    row of the items they bought), served as a discovery source of the hybrid blend."""

    file: str
    top_k: int = Field(description="largest weights kept per source item")
    nnz: int
    params: dict[str, float] = Field(default_factory=dict)


class DataSummary(BaseModel):
    """What the bundle was trained on."""

    events_path: str
    items_path: str
    n_events: int
    n_users: int
    n_items: int
    first_event: datetime | None = None
    last_event: datetime | None = None
    reference_time: datetime = Field(description="time at which recency weights were computed")
    dropped_rows: dict[str, int] = Field(default_factory=dict)


class EvalInfo(BaseModel):
    """The temporal split used for the metrics."""

    cut: str
    validation_cut: str | None = None
    k_values: list[int]
    n_eval_users: dict[str, int] = Field(default_factory=dict, description="per mode")
    validation_recall: dict[str, float] = Field(
        default_factory=dict,
        description="per mode, Recall@20 of the chosen blend on the validation cut's sample",
    )


class Manifest(BaseModel):
    """``manifest.json``: everything needed to trust and use a bundle."""

    model_config = ConfigDict(protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    bundle_id: str
    created_at: datetime
    model: str = Field(description="default ranking model: als | two_tower | hybrid")
    seed: int
    data_fingerprint: str
    data: DataSummary
    config: dict[str, Any]
    library_versions: dict[str, str]
    confidence: ConfidenceParams
    hybrid: HybridParams = Field(description="blend of the default model, used by serving")
    validated_blend: HybridParams | None = Field(
        default=None, description="hybrid blend chosen on the validation cut (for re-evaluation)"
    )
    als: AlsInfo
    two_tower: TwoTowerInfo | None = None
    item_item: dict[str, ItemItemInfo] = Field(
        default_factory=dict, description="name -> sparse item-item model (may be empty)"
    )
    evaluation: EvalInfo | None = None
    # metrics[mode][model][metric]: mode "all" or "novel"; model e.g. "hybrid",
    # "baseline/popularity"; metric e.g. "recall@20".
    metrics: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    timings_seconds: dict[str, float] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")


@dataclass
class Bundle:
    """A loaded bundle. Row ``i`` of every item array is item index ``i``; same for users.

    ``history_*`` is the per-user purchase history in CSR form: the purchases of user ``u`` are
    ``history_items[history_indptr[u]:history_indptr[u + 1]]`` with their buy-again scores.
    """

    path: Path
    manifest: Manifest
    items: pd.DataFrame
    users: pd.DataFrame
    item_ids: np.ndarray
    user_ids: np.ndarray
    als_item_factors: np.ndarray
    als_user_factors: np.ndarray
    als_index: VectorIndex
    history_indptr: np.ndarray
    history_items: np.ndarray
    history_repeat: np.ndarray
    interactions: pd.DataFrame
    popularity: pd.DataFrame
    two_tower_item_vectors: np.ndarray | None
    two_tower_user_vectors: np.ndarray | None
    two_tower_index: VectorIndex | None
    elasticity: pd.DataFrame | None
    # (n_users, length) int32 item indices per trained user, best first; None when not written.
    als_user_candidates: np.ndarray | None = None
    two_tower_user_candidates: np.ndarray | None = None
    # name -> (n_items, n_items) CSR item-item weights (discovery sources of the blend).
    item_item: dict[str, sp.csr_matrix] = field(default_factory=dict)

    def without_user_candidates(self) -> Bundle:
        """The same bundle answering every shopper through its indices (no candidate tables):
        the baseline the tables are measured and tested against."""
        return replace(self, als_user_candidates=None, two_tower_user_candidates=None)

    def item_index(self) -> dict[str, int]:
        """Map item_id -> item index."""
        return {str(x): i for i, x in enumerate(self.item_ids)}

    def user_index(self) -> dict[str, int]:
        """Map user_id -> user index."""
        return {str(x): i for i, x in enumerate(self.user_ids)}

    def purchased(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices bought by user index ``user`` and their buy-again scores."""
        lo, hi = int(self.history_indptr[user]), int(self.history_indptr[user + 1])
        return self.history_items[lo:hi], self.history_repeat[lo:hi]

    def repeat_vector(self, user: int) -> np.ndarray:
        """Dense ``(n_items,)`` buy-again scores of user index ``user`` for the hybrid blend."""
        out = np.zeros(len(self.item_ids), dtype=np.float32)
        idx, rep = self.purchased(user)
        out[idx] = rep
        return out


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> Manifest:
    """Parse ``manifest.json`` of the bundle directory ``path``.

    Raises
    ------
    NotFound
        If there is no manifest.
    ModelUnavailable
        If it does not parse or has an unsupported schema version.
    """
    p = Path(path) / MANIFEST
    if not p.is_file():
        raise NotFound(f"no {MANIFEST} in bundle {path}")
    try:
        raw = json.loads(p.read_text())
        if int(raw.get("schema_version", -1)) > SCHEMA_VERSION:
            raise ModelUnavailable(
                f"bundle {path} has schema version {raw.get('schema_version')}, "
                f"this reader supports <= {SCHEMA_VERSION}"
            )
        return Manifest.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        raise ModelUnavailable(f"bundle {path}: bad {MANIFEST}: {exc}") from exc


def read_files(path: str | Path, manifest: Manifest) -> list[str]:
    """The files :func:`load_bundle` (and the ONNX user tower's loader) read from a bundle."""
    names = [ITEMS, USERS, INTERACTIONS, POPULARITY]
    als = manifest.als
    names += [als.item_factors, als.user_factors, als.index.file]
    if als.user_candidates is not None:
        names.append(als.user_candidates.file)
    tt = manifest.two_tower
    if tt is not None:
        names += [tt.user_tower, tt.item_vectors, tt.user_vectors, tt.index.file]
        if tt.user_candidates is not None:
            names.append(tt.user_candidates.file)
    if (Path(path) / ELASTICITY).is_file():
        names.append(ELASTICITY)
    return names


def verify_files(path: str | Path, manifest: Manifest) -> None:
    """Check that every file listed in the manifest exists with the recorded sha256, and that
    every file the loader reads is among them.

    Raises
    ------
    ModelUnavailable
        On the first missing, altered or unlisted file.
    """
    root = Path(path)
    unlisted = [name for name in read_files(root, manifest) if name not in manifest.files]
    if unlisted:
        raise ModelUnavailable(
            f"bundle {root}: {unlisted[0]} is read but has no sha256 in the manifest"
        )
    for rel, digest in manifest.files.items():
        f = root / rel
        if not f.is_file():
            raise ModelUnavailable(f"bundle {root}: file {rel} listed in manifest is missing")
        if sha256_file(f) != digest:
            raise ModelUnavailable(f"bundle {root}: sha256 mismatch for {rel}")


def resolve_bundle(path: str | Path) -> Path:
    """Turn a bundles directory (with ``current``) or a bundle directory into a bundle path."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        return p.resolve()
    link = p / CURRENT_LINK
    if link.exists():
        return link.resolve()
    raise NotFound(f"{path} is neither a bundle nor a bundles directory with '{CURRENT_LINK}'")


def _load_array(root: Path, name: str) -> np.ndarray:
    return np.load(root / name, allow_pickle=False)


def _load_candidates(
    root: Path,
    info: UserCandidatesInfo | None,
    items: np.ndarray | None,
    users: np.ndarray | None,
) -> np.ndarray | None:
    if info is None or items is None or users is None:
        return None
    # Memory-mapped: worker processes serving the same bundle share one copy in the page cache.
    table = np.load(root / info.file, mmap_mode="r", allow_pickle=False)
    if table.ndim == 2 and table.shape[1] != info.length:
        raise ModelUnavailable(
            f"bundle {root}: {info.file} holds {table.shape[1]} items per user, "
            f"manifest says {info.length}"
        )
    check_user_candidates(
        table, users.shape[0], items.shape[0], f"bundle {root}: {info.file}", (items, users)
    )
    # A plain view: indexing a memmap subclass costs a Python-level hook on every slice.
    return table.view(np.ndarray)


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Load a bundle directory (or the ``current`` bundle of a bundles directory).

    Parameters
    ----------
    path:
        Bundle directory, or a directory holding a ``current`` symlink.
    verify:
        Check the sha256 of every file first (serving always does; it costs one read).

    Returns
    -------
    Bundle

    Raises
    ------
    NotFound
        If nothing is at ``path``.
    ModelUnavailable
        If the manifest is bad, a file is missing or altered, or arrays disagree in shape.
    """
    root = resolve_bundle(path)
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    try:
        items = pd.read_parquet(root / ITEMS)
        users = pd.read_parquet(root / USERS)
        inter = pd.read_parquet(root / INTERACTIONS)
        popularity = pd.read_parquet(root / POPULARITY)
        item_f = _load_array(root, manifest.als.item_factors).astype(np.float32, copy=False)
        user_f = _load_array(root, manifest.als.user_factors).astype(np.float32, copy=False)
        als_index = VectorIndex.load(root / manifest.als.index.file)
        tt_items = tt_users = None
        tt_index = None
        if manifest.two_tower is not None:
            tt_items = _load_array(root, manifest.two_tower.item_vectors)
            tt_users = _load_array(root, manifest.two_tower.user_vectors)
            tt_index = VectorIndex.load(root / manifest.two_tower.index.file)
        elasticity = pd.read_parquet(root / ELASTICITY) if (root / ELASTICITY).is_file() else None
        item_item = {
            name: sp.load_npz(root / info.file).tocsr().astype(np.float32)
            for name, info in manifest.item_item.items()
        }
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"bundle {root}: cannot read: {exc}") from exc
    n_items, n_users = len(items), len(users)
    if item_f.shape[0] != n_items or user_f.shape[0] != n_users or als_index.size != n_items:
        raise ModelUnavailable(f"bundle {root}: ALS arrays do not match items/users")
    if any(m.shape != (n_items, n_items) for m in item_item.values()):
        raise ModelUnavailable(f"bundle {root}: an item-item matrix does not match items")
    if tt_items is not None and tt_items.shape[0] != n_items:
        raise ModelUnavailable(f"bundle {root}: two-tower item vectors do not match items")
    try:
        als_cands = _load_candidates(root, manifest.als.user_candidates, item_f, user_f)
        tt_cands = (
            _load_candidates(root, manifest.two_tower.user_candidates, tt_items, tt_users)
            if manifest.two_tower is not None
            else None
        )
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"bundle {root}: cannot read user candidates: {exc}") from exc
    bought = inter[inter["purchases"] > 0].sort_values(
        ["user_index", "repeat_score"], ascending=[True, False], kind="stable"
    )
    counts = np.bincount(bought["user_index"].to_numpy(), minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Bundle(
        path=root,
        manifest=manifest,
        items=items,
        users=users,
        item_ids=items["item_id"].astype(str).to_numpy(),
        user_ids=users["user_id"].astype(str).to_numpy(),
        als_item_factors=item_f,
        als_user_factors=user_f,
        als_index=als_index,
        history_indptr=indptr,
        history_items=bought["item_index"].to_numpy(dtype=np.int64),
        history_repeat=bought["repeat_score"].to_numpy(dtype=np.float32),
        interactions=inter,
        popularity=popularity,
        two_tower_item_vectors=tt_items,
        two_tower_user_vectors=tt_users,
        two_tower_index=tt_index,
        elasticity=elasticity,
        als_user_candidates=als_cands,
        two_tower_user_candidates=tt_cands,
        item_item=item_item,
    )


class BundleWriter:
    """Stage a bundle directory, then publish it atomically.

    Parameters
    ----------
    bundles_dir:
        Parent directory of all bundles (holds the ``current`` symlink).
    bundle_id:
        Directory name of the new bundle; must not exist yet.
    """

    def __init__(self, bundles_dir: str | Path, bundle_id: str) -> None:
        self.bundles_dir = Path(bundles_dir)
        self.bundle_id = bundle_id
        self.final_path = self.bundles_dir / bundle_id
        if self.final_path.exists():
            raise FailedPrecondition(f"bundle {self.final_path} already exists")
        self.path = self.bundles_dir / f".staging-{bundle_id}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Write a ``.npy`` file (no pickles)."""
        np.save(self.path / name, np.ascontiguousarray(array), allow_pickle=False)

    def save_sparse(self, name: str, matrix: sp.spmatrix) -> None:
        """Write a scipy sparse matrix as ``.npz`` (no pickles)."""
        sp.save_npz(self.path / name, sp.csr_matrix(matrix), compressed=False)

    def save_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Write a Parquet file without the pandas index."""
        frame.to_parquet(self.path / name, index=False)

    def save_index(self, name: str, index: VectorIndex) -> None:
        """Write a FAISS index file."""
        index.save(self.path / name)

    def commit(self, manifest: Manifest, make_current: bool = True) -> Path:
        """Hash every staged file into the manifest, write it, rename into place.

        Returns
        -------
        pathlib.Path
            The published bundle directory.
        """
        files = sorted(p for p in self.path.rglob("*") if p.is_file() and p.name != MANIFEST)
        manifest.files = {str(p.relative_to(self.path)): sha256_file(p) for p in files}
        (self.path / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        os.replace(self.path, self.final_path)
        if make_current:
            set_current(self.bundles_dir, self.final_path)
        return self.final_path


def set_current(bundles_dir: str | Path, bundle_path: str | Path) -> None:
    """Point ``bundles_dir/current`` at ``bundle_path`` atomically (temp symlink + rename)."""
    root = Path(bundles_dir)
    target = Path(bundle_path)
    rel = target.name if target.parent.resolve() == root.resolve() else str(target.resolve())
    tmp = root / f".{CURRENT_LINK}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(rel, tmp)
    os.replace(tmp, root / CURRENT_LINK)
