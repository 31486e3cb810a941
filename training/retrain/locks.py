"""The bundles directory's lock: one job at a time may train into it and move ``current``.

A ``flock`` on ``bundles_dir/.lock`` is held for the whole job. The kernel drops it when the
process ends however it ends (``kill -9`` included), so a killed job never leaves a stale lock
behind. Jobs on several machines sharing one PostgreSQL database also take an advisory lock
there (the command line passes it in: training does not reach databases).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fairshelf.errors import FailedPrecondition, NotFound

LOCK_FILE = ".lock"
POLL_SECONDS = 0.2


class LockBusy(FailedPrecondition):
    """Another job holds the lock (and did not let go within the wait allowed)."""


@contextmanager
def bundles_lock(bundles_dir: Path, wait_seconds: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock of ``bundles_dir`` for the ``with`` block.

    Parameters
    ----------
    bundles_dir:
        The bundles directory.
    wait_seconds:
        How long to wait for another holder to finish; 0 gives up at once.

    Raises
    ------
    NotFound
        If the directory does not exist (a typo must not start an empty one).
    LockBusy
        If the lock is still held by another process after ``wait_seconds``.
    """
    root = Path(bundles_dir)
    if not root.is_dir():
        raise NotFound(f"no such bundles directory: {root}", field="bundles")
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    raise LockBusy(
                        f"another job holds the lock of {root} (pid {holder or 'unknown'})"
                    ) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)
