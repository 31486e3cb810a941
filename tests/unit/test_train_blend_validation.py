"""training.blend_search.validation_recall: the chosen blend's score read from its trials."""

from __future__ import annotations

from training.blend_search import KEY, validation_recall


def test_each_mode_is_the_best_of_its_own_step() -> None:
    trials: list[dict[str, object]] = [
        {"step": "discovery", "als": 1.0, "novel_" + KEY: 0.11},
        {"step": "discovery", "als": 0.5, "trend": 0.5, "novel_" + KEY: 0.1321},
        {"step": "repeat", "repeat_weight": 0.2, KEY: 0.30},
        {"step": "repeat", "repeat_weight": 0.6, KEY: 0.31666},
        {"step": "exclude_purchased", KEY: 0.05},
    ]
    assert validation_recall(trials) == {"novel": 0.1321, "all": 0.3167}


def test_leaving_bought_items_out_counts_when_it_won() -> None:
    trials: list[dict[str, object]] = [
        {"step": "discovery", "novel_" + KEY: 0.2},
        {"step": "repeat", KEY: 0.07},
        {"step": "exclude_purchased", KEY: 0.2057},
    ]
    assert validation_recall(trials)["all"] == 0.2057


def test_no_search_no_scores() -> None:
    assert validation_recall([]) == {}
