"""Two-tower examples: histories from earlier visits only, all and novel targets, windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.two_tower_data import TwoTowerData, build_examples

DAY = 86_400 * 10**9

# user 0: visit 10 buys 1, 2 (day 0); visit 11 buys 3 and 1 again (day 1); visit 12 buys 4
# (day 9); user 1: one visit (no history before it, so no visit example)
USER = np.array([0, 0, 0, 0, 0, 1])
ITEM = np.array([1, 2, 3, 1, 4, 0])
TS = np.array([0, 1, DAY, DAY + 1, 9 * DAY, 0])
SESS = np.array([10, 10, 11, 11, 12, 13])


def build(**kw: Any) -> TwoTowerData:
    return build_examples(USER, ITEM, TS, SESS, np.ones(6, bool), 2, 5, 3, **kw)


def targets(data: TwoTowerData, row: int) -> tuple[list[int], list[bool]]:
    _, item, novel = data.targets_of(np.array([row]))
    return item.tolist(), novel.tolist()


def test_visit_rows_see_only_earlier_visits_and_flag_novel_targets() -> None:
    data = build(reconstruction=False)
    assert data.n_rows == 2 and data.row_user.tolist() == [0, 0]
    assert data.histories[0].tolist() == [2, 1, 5]  # newest first, padded with n_items
    assert targets(data, 0) == ([1, 3], [False, True])  # item 1 is bought again
    assert data.histories[1].tolist() == [1, 3, 2]
    assert targets(data, 1) == ([4], [True])
    assert data.final_histories.tolist() == [[4, 1, 3], [0, 5, 5]]
    assert not data.reconstruction.any()


def test_novel_only_target_window_and_reconstruction_rows() -> None:
    novel = build(reconstruction=False, novel_targets_only=True)
    assert targets(novel, 0) == ([3], [True])
    # A 10-day window adds the purchases of the later visits to the first example.
    wide = build(reconstruction=False, target_window=10.0)
    assert targets(wide, 0)[0] == [1, 3, 4]
    full = build()
    # One reconstruction row per shopper: final history -> everything bought in the window.
    rec = np.flatnonzero(full.reconstruction)
    assert full.row_user[rec].tolist() == [0, 1]
    assert full.histories[rec[0]].tolist() == [4, 1, 3]
    assert targets(full, int(rec[0]))[0] == [1, 2, 3, 4]
    assert targets(full, int(rec[1]))[0] == [0]
    pos, item, _ = full.targets_of(np.array([rec[1], 0]))
    assert pos.tolist() == [0, 1, 1] and item.tolist() == [0, 1, 3]
