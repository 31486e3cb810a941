"""Tests of fairshelf.demo.ranking_rows: the demo's recommendation table reads in order."""

from __future__ import annotations

from fairshelf.demo import ranking_rows


def test_items_moved_by_re_ranking_say_so() -> None:
    items = [
        {"item_id": "a", "score": 1.0, "reason": "als"},
        {"item_id": "b", "score": 0.88, "reason": "als"},
        {"item_id": "c", "score": 0.67, "reason": "als"},
        {"item_id": "d", "score": 0.78, "reason": "als"},
        {"item_id": "e", "score": 0.56, "reason": "als"},
    ]
    rows = ranking_rows(items)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[2]["relevance"] == "0.67 (#4)" and rows[2]["moved"].startswith("up 1")
    assert rows[3]["relevance"] == "0.78 (#3)" and rows[3]["moved"].startswith("down 1")
    assert rows[0]["moved"] == "" and rows[4]["moved"] == ""


def test_a_list_in_relevance_order_moves_nothing() -> None:
    items = [{"item_id": str(i), "score": 1.0 - i / 10, "reason": "x"} for i in range(4)]
    assert all(r["moved"] == "" for r in ranking_rows(items))
