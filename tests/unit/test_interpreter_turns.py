"""fairshelf.interpreter_turns: turns and pauses of the background writers."""

from __future__ import annotations

import pytest

from fairshelf.interpreter_turns import Turns, free_in_turns


def test_paced_yields_every_item_in_order_and_pauses_once_per_tick_when_turns_are_over() -> None:
    turns = Turns(turn=0.0, pause=0.0)
    assert list(turns.paced(range(50))) == list(range(50))
    assert turns.pauses == 50


def test_no_pause_within_a_turn() -> None:
    turns = Turns(turn=3600.0, pause=0.0)
    assert list(turns.paced(["a", "b", "c"])) == ["a", "b", "c"]
    turns.tick()
    assert turns.pauses == 0


@pytest.mark.parametrize(
    ("n", "chunk", "pauses"), [(0, 10, 0), (1, 10, 1), (25, 10, 3), (30, 10, 3)]
)
def test_free_in_turns_empties_the_list_a_chunk_at_a_time(n: int, chunk: int, pauses: int) -> None:
    items = [object() for _ in range(n)]
    turns = Turns(turn=0.0, pause=0.0)
    free_in_turns(items, turns, chunk=chunk)
    assert items == []
    assert turns.pauses == pauses
