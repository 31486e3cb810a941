"""serving/console/session.py and charts.py: signed sessions, CSRF tokens, the sign-in
throttle, and escaping in the server-drawn charts."""

from __future__ import annotations

import time

from itsdangerous import URLSafeTimedSerializer

from serving.console.charts import grouped_bars, histogram, price_band_chart
from serving.console.session import SessionSigner, SignInThrottle, same_token
from serving.settings import Role

KEYS = {"sk-pricing-000000000000001": Role.PRICING, "sk-admin-00000000000000001": Role.ADMIN}


def test_session_round_trip_and_refusals() -> None:
    signer = SessionSigner(b"s" * 32, 60, KEYS)
    value, session = signer.issue(Role.PRICING, "sk-pricing-000000000000001")
    assert "sk-pricing" not in value
    assert signer.read(value) == session
    assert signer.read(value[:-2] + "xx") is None  # tampered
    assert SessionSigner(b"t" * 32, 60, KEYS).read(value) is None  # another secret
    assert SessionSigner(b"s" * 32, 60, {}).read(value) is None  # key removed since
    # A cookie claiming a role its key does not have is refused even when validly signed.
    forged = URLSafeTimedSerializer(b"s" * 32, salt="fairshelf-console-session").dumps(
        {"r": "admin", "k": session.key_id, "c": "x"}
    )
    assert signer.read(forged) is None
    assert signer.read(None) is None and signer.read("") is None


def test_session_expires() -> None:
    signer = SessionSigner(b"s" * 32, 1, KEYS)
    value, _ = signer.issue(Role.ADMIN, "sk-admin-00000000000000001")
    time.sleep(2.1)
    assert signer.read(value) is None


def test_csrf_comparison() -> None:
    assert same_token("abc", "abc")
    assert (
        not same_token("abc", "abd") and not same_token("abc", None) and not same_token("abc", "")
    )


def test_throttle_doubles_the_wait_after_the_free_failures() -> None:
    t = SignInThrottle(free=2, base=1.0, cap=4.0)
    for _ in range(2):
        assert t.wait_for("a", now=100.0) == 0.0
        t.failed("a", now=100.0)
    assert t.wait_for("a", now=100.0) == 1.0
    assert t.wait_for("a", now=101.0) == 0.0
    t.failed("a", now=101.0)
    assert t.wait_for("a", now=101.0) == 2.0
    for _ in range(5):
        t.failed("a", now=110.0)
    assert t.wait_for("a", now=110.0) == 4.0  # capped
    assert t.wait_for("b", now=110.0) == 0.0  # per address
    t.succeeded("a")
    assert t.wait_for("a", now=110.0) == 0.0


def test_charts_escape_every_text() -> None:
    evil = "<script>alert(1)</script>"
    for svg in (
        price_band_chart([evil, "b"], [1.0, 2.0], [0.5, None], [3.0, None], evil),
        grouped_bars([evil], {evil: [1.0]}, evil),
        histogram([(float("-inf"), 0.0, 3), (0.0, float("inf"), 1)], evil),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_price_chart_draws_the_band_and_every_point() -> None:
    svg = price_band_chart(["a", "b", "c"], [10.0, 12.0, 11.0], [9.0, 9.0, 9.0], [13, 13, 13], "t")
    assert svg.count("<circle") == 3 and 'class="band"' in svg and 'class="price"' in svg
    empty = price_band_chart([], [], [], [], "t")
    assert "no price served" in empty
