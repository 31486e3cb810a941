"""The trainer keeps freed blocks mapped instead of paging them in again for every block."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from training.memory import retain_freed_memory

BLOCK = 16 * 1024 * 1024  # one evaluation score block


def _faults_per_block(rounds: int, alive: int = 5) -> float:
    """Minor page faults per block when ``alive`` blocks are in use at once, as in a blend."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(rounds):
        blocks = []
        for _ in range(alive):
            block = np.empty(BLOCK // 4, dtype=np.float32)
            block.fill(float(i))  # touch every page
            blocks.append(block)
        del blocks, block
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (rounds * alive)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc thresholds only")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    assert retain_freed_memory() is True
    _faults_per_block(2)  # the first blocks map their pages once
    # A fresh 16 MB block takes 4,096 faults (glibc's own thresholds: about 500 a block on
    # average with five alive at once); a reused one takes none.
    assert _faults_per_block(20) < 64
