"""The bundles directory as a registry: what is there, which is current, moves and pruning.

Bundles are directories with a ``manifest.json`` (see ``docs/bundle.md``); names starting with
a dot are work in progress (a trainer's staging directory, a retraining job's work directory)
and are never listed, served or pruned here. Every move of ``current`` made through this
module is appended to ``history.jsonl`` (time, bundle, previous bundle, action, who, why), so
``rollback`` knows which bundle served before; a directory without history (bundles written by
``fairshelf train``) falls back to creation order.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fairshelf.errors import FailedPrecondition, ModelUnavailable, NotFound
from recsys.bundle import CURRENT_LINK, MANIFEST, Manifest, read_manifest, set_current

HISTORY = "history.jsonl"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class BundleEntry:
    """One published bundle directory."""

    bundle_id: str
    path: Path
    manifest: Manifest
    is_current: bool


@dataclass(frozen=True)
class Move:
    """One move of ``current``."""

    at: str
    bundle_id: str
    previous: str | None
    action: str
    actor: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form (one line of ``history.jsonl``)."""
        return dict(self.__dict__)


def gate_metrics(bundles_dir: Path) -> dict[str, dict[str, float]]:
    """Bundle id -> the gate's measurement of it (challenger Recall/NDCG@20), from the reports
    of the runs that published it."""
    out: dict[str, dict[str, float]] = {}
    runs = Path(bundles_dir) / RUNS_DIR
    if not runs.is_dir():
        return out
    for report in sorted(runs.glob("*/report.json")):
        try:
            d = json.loads(report.read_text())
        except ValueError:
            continue
        gate = d.get("gate") or {}
        if d.get("challenger") and gate.get("comparisons"):
            out[d["challenger"]] = {k: v["challenger"] for k, v in gate["comparisons"].items()}
    return out


def current_id(bundles_dir: Path) -> str | None:
    """The name of the bundle ``current`` points at, or None."""
    link = Path(bundles_dir) / CURRENT_LINK
    if not link.exists():
        return None
    return Path(os.path.realpath(link)).name


def list_bundles(bundles_dir: Path) -> list[BundleEntry]:
    """Every bundle in the directory, oldest first (by creation time, then name).

    Directories whose manifest does not parse are skipped: they are not bundles a server
    could load.
    """
    root = Path(bundles_dir)
    if not root.is_dir():
        raise NotFound(f"no such bundles directory: {root}")
    current = current_id(root)
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.is_symlink() or not (p / MANIFEST).is_file():
            continue
        try:
            manifest = read_manifest(p)
        except ModelUnavailable:
            continue
        out.append(BundleEntry(p.name, p, manifest, p.name == current))
    return sorted(out, key=lambda e: (e.manifest.created_at, e.bundle_id))


def get_bundle(bundles_dir: Path, bundle_id: str) -> BundleEntry:
    """The bundle named ``bundle_id``.

    Raises
    ------
    NotFound
        If there is no such bundle.
    """
    for entry in list_bundles(bundles_dir):
        if entry.bundle_id == bundle_id:
            return entry
    raise NotFound(f"no bundle {bundle_id!r} in {bundles_dir}", field="bundle_id")


def history(bundles_dir: Path) -> list[Move]:
    """Every recorded move of ``current``, oldest first."""
    path = Path(bundles_dir) / HISTORY
    if not path.is_file():
        return []
    moves = []
    for line in path.read_text().splitlines():
        if line.strip():
            moves.append(Move(**json.loads(line)))
    return moves


def previous_id(bundles_dir: Path) -> str | None:
    """The bundle that served before the current one, if it is still there.

    From the history when its last move is the current bundle's; otherwise the newest bundle
    created before the current one.
    """
    current = current_id(bundles_dir)
    if current is None:
        return None
    present = {e.bundle_id: e for e in list_bundles(bundles_dir)}
    moves = history(bundles_dir)
    if moves and moves[-1].bundle_id == current:
        prev = moves[-1].previous
        return prev if prev in present else None
    entry = present.get(current)
    older = [
        e.bundle_id
        for e in present.values()
        if entry is not None and e.manifest.created_at < entry.manifest.created_at
    ]
    return older[-1] if older else None


def move_current(bundles_dir: Path, bundle_id: str, action: str, actor: str, reason: str) -> Move:
    """Point ``current`` at ``bundle_id`` and record the move in the history.

    The symlink is replaced atomically (:func:`recsys.bundle.set_current`); callers hold the
    bundles directory's lock.

    Raises
    ------
    NotFound
        If the bundle is not in the directory.
    """
    root = Path(bundles_dir)
    entry = get_bundle(root, bundle_id)
    move = Move(
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        bundle_id=bundle_id,
        previous=current_id(root),
        action=action,
        actor=actor,
        reason=reason,
    )
    set_current(root, entry.path)
    with (root / HISTORY).open("a") as fh:
        fh.write(json.dumps(move.as_dict()) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return move


def rollback_target(bundles_dir: Path) -> str:
    """The bundle a rollback would make current.

    Raises
    ------
    FailedPrecondition
        If there is no current bundle or none served before it.
    """
    if current_id(bundles_dir) is None:
        raise FailedPrecondition(f"{bundles_dir} has no current bundle to roll back")
    target = previous_id(bundles_dir)
    if target is None:
        raise FailedPrecondition(f"{bundles_dir}: no earlier bundle to roll back to")
    return target


def prune(bundles_dir: Path, keep: int) -> list[str]:
    """Delete the oldest bundles beyond the newest ``keep``; never the current bundle nor the
    one that served before it. Returns the names deleted."""
    entries = list_bundles(bundles_dir)
    protected = {current_id(bundles_dir), previous_id(bundles_dir)}
    keep_ids = {e.bundle_id for e in entries[-keep:]} if keep > 0 else set()
    removed = []
    for entry in entries:
        if entry.bundle_id in keep_ids or entry.bundle_id in protected:
            continue
        # Renamed out of sight first, so a half-deleted directory is never listed.
        doomed = entry.path.with_name(f".deleting-{entry.bundle_id}")
        os.replace(entry.path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(entry.bundle_id)
    return removed
