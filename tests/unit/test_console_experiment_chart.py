"""The experiment readout's SVG chart: one interval per relative effect, labels escaped."""

from __future__ import annotations

import re
from typing import Any

from serving.console.experiment_charts import effect_chart, path_chart


def _row(label: str, rel: float | None, lo: float, hi: float, control: float) -> dict[str, Any]:
    effect = {"relative": rel, "rel_ci_low": lo, "rel_ci_high": hi, "control": control}
    return {
        "label": label,
        "variant": "b",
        "effect": effect,
        "seq_ci_low": -0.5 * control,
        "seq_ci_high": 1.0 * control,
    }


def _x(svg: str, cls: str) -> list[tuple[float, float]]:
    return [
        (float(a), float(b))
        for a, b in re.findall(rf'<line class="{cls}" x1="([-\d.]+)" x2="([-\d.]+)"', svg)
    ]


def test_each_relative_effect_is_drawn_with_both_intervals_around_zero() -> None:
    rows = [
        _row("Conversion", 0.2, 0.1, 0.3, 0.25),
        _row("AOV", -0.1, -0.3, 0.1, 20.0),
        _row("no relative", None, 0.0, 0.0, 0.0),
        {"label": "CTR", "variant": "b", "effect": None},
    ]
    svg = str(effect_chart(rows, "effects"))
    fixed, seq = _x(svg, "ci"), _x(svg, "seq")
    assert len(fixed) == 2 and len(seq) == 2
    (zero, _), *_ = _x(svg, "zero")
    # Conversion's interval lies right of zero, AOV's straddles it; always-valid is wider.
    assert zero < fixed[0][0] < fixed[0][1]
    assert fixed[1][0] < zero < fixed[1][1]
    assert all(s[0] < f[0] and s[1] > f[1] for s, f in zip(seq, fixed, strict=True))
    assert "+20.00% [+10.00%, +30.00%]" in svg and "no relative" not in svg
    assert "nan" not in svg.lower()


def test_labels_are_escaped_and_an_empty_readout_says_so() -> None:
    svg = str(effect_chart([_row("<script>x</script>", 0.1, 0.0, 0.2, 1.0)], "<t>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;t&gt;" in svg
    empty = str(effect_chart([], "effects"))
    assert "no metric has a relative effect in this window" in empty


def _look(i: int, absolute: float) -> dict[str, Any]:
    return {
        "metric": "conversion", "variant": "b", "at": f"day {i}", "units": 10 * i,
        "absolute": absolute, "ci_low": absolute - 0.1, "ci_high": absolute + 0.1,
        "seq_ci_low": absolute - 0.3, "seq_ci_high": absolute + 0.3, "seq_p_value": 0.5,
    }  # fmt: skip


def test_the_path_shades_both_intervals_over_the_looks() -> None:
    svg = str(path_chart([_look(1, 0.2), _look(2, 0.1), _look(3, 0.15)], "<path>"))
    assert svg.count('<circle class="look"') == 3 and "3 daily looks" in svg
    assert '<polygon class="seq"' in svg and '<polygon class="ci"' in svg
    assert "day 2: 0.1 [0, 0.2], always-valid [-0.2, 0.4], 20 shoppers" in svg
    assert "&lt;path&gt;" in svg and "<path>" not in svg
    # One look is drawn as bars; a look with an undefined number is left out.
    one = str(path_chart([_look(1, 0.2), {**_look(2, 0.1), "ci_low": None}], "one"))
    assert one.count('<circle class="look"') == 1 and '<line class="ci"' in one
    assert "no look yet" in str(path_chart([], "none"))
