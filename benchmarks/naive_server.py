"""The benchmark's naive baseline: FastAPI calling implicit's ``recommend`` per request.

No index, no precomputation beyond loading the factors: every request scores the whole
catalog with implicit's brute-force ``recommend`` (filtering the shopper's own items), which
is how many first services are written. Same request body as ``POST /v1/recommend``.

Usage::

    python benchmarks/naive_server.py --bundle DIR [--port 0]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    """Serve on 127.0.0.1 and print ``naive serving: PORT`` once listening."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    app = build_app(args.bundle)
    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    print(f"naive serving: {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_config=None, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
