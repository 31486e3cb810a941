"""Train only the two-tower model; the entry point for multi-process runs.

Usage (one machine, two processes, gloo on CPU)::

    torchrun --nproc_per_node=2 -m training.two_tower_main \
        --events events.parquet --items items.parquet --out vectors.npz [--cut YYYY-MM-DD]

The same code runs as a single process (``python -m training.two_tower_main ...``). Rank 0
writes the item vectors, the user vectors (row = user index) and the user ids to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from torch import distributed as dist

from training.config import load_config
from training.fit import fit_window
from training.trainer import parse_cut, prepare
from training.two_tower_train import init_distributed


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, train under the current process group, write vectors on rank 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cut", default=None)
    ap.add_argument("--config", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    distributed = init_distributed()
    try:
        cfg = load_config(args.config, {"show_progress": False})
        data = prepare(args.events, args.items, cfg)
        ev = data.events
        if args.cut:
            ev = ev[ev["timestamp"] < parse_cut(args.cut)]
        fitted = fit_window(ev, data.catalog, cfg, args.seed, [], True)
        rank = dist.get_rank() if distributed else 0
        if rank == 0 and fitted.tt_items is not None and fitted.tt_users is not None:
            np.savez(
                Path(args.out),
                item_vectors=fitted.tt_items,
                user_vectors=fitted.tt_users,
                user_ids=fitted.user_ids.to_numpy(dtype=str),
                world_size=np.int64(dist.get_world_size() if distributed else 1),
            )
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
