"""Top-k of dense score blocks for offline evaluation and the blend search.

Evaluating a model means ranking the whole catalog for thousands of shoppers: a block of
``(users, items)`` scores, a mask of what may not be recommended, and the best ``k`` per row.
On a 50,000-item catalog ``numpy.argpartition`` over such a block was over half of a training
run; ``torch.topk`` does the same selection several times faster and on every core. Ties are
broken in no promised order by either (the reference scripts use ``argpartition`` too).

Blocks are sized so that one row block stays below glibc's largest ``mmap`` threshold (32 MB):
larger temporaries are mapped and unmapped on every call, and the page faults of refilling
them cost more than the arithmetic (a quarter of a run's CPU was system time).

The block loops run on one thread (:func:`one_thread`): each block is a few milliseconds of
work, and splitting that over the OpenMP pools of BLAS and torch gains nothing on an idle
host, while on a busy one every parallel region waits for a descheduled thread (the blend
search took 20 s or 60 s from run to run on the same data). Blocks run side by side on the
cores the host leaves idle (:func:`idle_cores`): on an idle host that nearly halves the time,
while on a host busy with other jobs a thread preempted while holding the GIL stalls the
other (the evaluation took 23-34 s on two threads against 18 s on one), so there it is one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

# Elements of one float32 score block (16 MB).
BLOCK_ELEMENTS = 1 << 22
T = TypeVar("T")
U = TypeVar("U")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the enclosed numeric work on one thread (BLAS, OpenMP and torch), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def idle_cores() -> int:
    """Cores this process may use that other work leaves idle now (at least 1).

    As ``make -l`` does, parallel work is sized from the host's load rather than its core
    count. The count is the threads runnable right now (``/proc/loadavg``) less this
    process's own: the one-minute load average would count this process's own threads of the
    previous block and halve its next one.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        mine = sum(1 for task in Path("/proc/self/task").iterdir() if _running(task))
        others = max(0, runnable - mine)
    except (OSError, ValueError, IndexError):
        others = round(max(0.0, os.getloadavg()[0] - 1.0))
    return max(1, min(cores, cores - others))


def _running(task: Path) -> bool:
    try:
        # The state follows the parenthesised command name, which may itself hold spaces.
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError):
        return False


def in_background(name: str, fn: Callable[..., T], *args: object) -> Future[T]:
    """``fn(*args)`` on a thread of its own named ``name``; the result when it is asked for.

    For work nothing needs until the end of a run (the data fingerprint, the elasticities)
    and that runs mostly outside the GIL, so the models train meanwhile. What it reads must
    not change afterwards.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _one_thread_here() -> None:
    # OpenMP's thread count is per calling thread: a pool thread sets its own.
    torch.set_num_threads(1)


def map_blocks(fn: Callable[[U], T], items: Sequence[U], workers: int = 0) -> list[T]:
    """``fn(item)`` for every item (a block start, a grid point), in order, on threads.

    Each call is numpy, scipy and torch work that releases the GIL, so calls run side by
    side, each on one thread (call inside :func:`one_thread`). ``workers`` 0 means
    :func:`idle_cores`. The results do not depend on the number of threads.
    """
    n = workers or idle_cores()
    if n <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(n, len(items)), initializer=_one_thread_here) as pool:
        return list(pool.map(fn, items))


def rows_per_block(n_items: int, most: int = 1024, least: int = 16) -> int:
    """How many shoppers to score at a time for a catalog of ``n_items``."""
    return int(min(most, max(least, BLOCK_ELEMENTS // max(1, n_items))))


def top_k_rows(
    scores: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    drop: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Indices of the ``k`` best scores per row, best first; ``scores`` is overwritten.

    Parameters
    ----------
    scores:
        ``(n_rows, n_items)`` float32 C-contiguous block the caller owns: masked entries are
        set to ``-inf`` in place (no copy of the block).
    k:
        List length, capped at ``n_items``.
    allowed:
        ``(n_items,)`` bool: items that may be ranked at all (``None``: every item).
    drop:
        ``(n_rows, n_items)`` sparse matrix whose positive entries are left out per row (a
        shopper's past purchases in ``novel`` mode).

    Returns
    -------
    numpy.ndarray
        ``(n_rows, min(k, n_items))`` int64 item indices. A row with fewer than ``k`` rankable
        items is padded with masked items, as a full sort would.
    """
    block = np.ascontiguousarray(scores, dtype=np.float32)
    n_rows, n_items = block.shape
    if allowed is not None and not allowed.all():
        block[:, ~allowed] = -np.inf
    if drop is not None and drop.nnz:
        d = sp.csr_matrix(drop)
        rows = np.repeat(np.arange(n_rows), np.diff(d.indptr))
        stored = d.data > 0
        block[rows[stored], d.indices[stored]] = -np.inf
    kk = min(k, n_items)
    if kk == 0 or n_rows == 0:
        return np.zeros((n_rows, kk), dtype=np.int64)
    _, idx = torch.topk(torch.from_numpy(block), kk, dim=1, largest=True, sorted=True)
    return idx.numpy().astype(np.int64, copy=False)


def best_unordered(block: np.ndarray, d: int) -> np.ndarray:
    """Column indices of the ``d`` largest entries of each row, in no particular order.

    ``block`` is ``(n_rows, n_cols)`` float32 with ``d <= n_cols``; it is read, not changed.
    """
    t = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
    _, idx = torch.topk(t, d, dim=1, largest=True, sorted=False)
    return idx.numpy().astype(np.int64, copy=False)
