"""The benchmark's naive baseline: FastAPI calling implicit's ``recommend`` per request.

No index, no precomputation beyond loading the factors: every request scores the whole
catalog with implicit's brute-force ``recommend`` (filtering the shopper's own items), which
is how many first services are written. Same request body as ``POST /v1/recommend``.

With ``--workers N`` uvicorn runs N worker processes on one listening socket (each loads the
factors and serves on one core), so the baseline gets the same number of processes as
fairshelf in the benchmark's comparison.

Usage::

    python benchmarks/naive_server.py --bundle DIR [--port 0] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

BUNDLE_ENV = "FAIRSHELF_NAIVE_BUNDLE"


class Body(BaseModel):
    user_id: str
    k: int = 20


def build_app(bundle: Path) -> FastAPI:
    """Load the ALS factors of ``bundle`` into an implicit model and serve it."""
    from implicit.cpu.als import AlternatingLeastSquares

    items = pd.read_parquet(bundle / "items.parquet")["item_id"].astype(str).to_numpy()
    users = pd.read_parquet(bundle / "users.parquet")["user_id"].astype(str).tolist()
    inter = pd.read_parquet(bundle / "interactions.parquet")
    user_index = {u: i for i, u in enumerate(users)}
    y = np.load(bundle / "als_item_factors.npy")
    x = np.load(bundle / "als_user_factors.npy")
    model = AlternatingLeastSquares(factors=y.shape[1], num_threads=1)
    model.item_factors = y
    model.user_factors = x
    liked = sp.csr_matrix(
        (inter["weight"].to_numpy(), (inter["user_index"], inter["item_index"])),
        shape=(len(users), len(items)),
    )
    app = FastAPI(title="naive baseline")

    @app.post("/v1/recommend")
    def recommend(body: Body) -> dict[str, Any]:
        u = user_index.get(body.user_id)
        if u is None:
            raise HTTPException(404, "unknown user")
        ids, scores = model.recommend(u, liked[u], N=body.k)
        return {
            "items": [
                {"item_id": items[i], "score": float(s)} for i, s in zip(ids, scores, strict=True)
            ]
        }

    return app


def create_app() -> FastAPI:
    """The app of one uvicorn worker process: the bundle comes from the environment."""
    return build_app(Path(os.environ[BUNDLE_ENV]))


def main() -> None:
    """Serve on 127.0.0.1 and print ``naive serving: PORT`` once listening."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = p.parse_args()
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says it is TCP; without it, a response written as headers then
    # body waits for the client's delayed ACK (40 ms) under the asyncio loop.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", args.port))
    if args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        os.environ[BUNDLE_ENV] = str(args.bundle.resolve())
        config = uvicorn.Config(
            "naive_server:create_app",
            factory=True,
            workers=args.workers,
            log_config=None,
            access_log=False,
            log_level="warning",
        )
        print(f"naive serving: {sock.getsockname()[1]}", file=sys.stderr, flush=True)
        Multiprocess(config, sockets=[sock]).run()
        return
    app = build_app(args.bundle)
    print(f"naive serving: {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_config=None, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
