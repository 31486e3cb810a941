"""Unit tests of pricing.promotions: publication rules and what a quote carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fairshelf.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from pricing.context import PublicContext
from pricing.fairness.caller_context import DayPseudonyms, day_ref, with_running_promotions
from pricing.promotions import Promotion, PromotionBook

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _promo(name: str, start: datetime, end: datetime) -> Promotion:
    return Promotion(name, f"{name} title", f"{name} text", start, end)


def _book() -> PromotionBook:
    book = PromotionBook().publish(_promo("spring", NOW, NOW + 48 * H), NOW)
    return book.publish(_promo("night", NOW + 10 * H, NOW + 12 * H), NOW)


def test_running_follows_the_windows() -> None:
    book = _book()
    assert book.version == 2
    assert book.running_at(NOW - H) == ()
    assert book.running_at(NOW) == ("spring",)
    assert book.running_at(NOW + 11 * H) == ("night", "spring")
    assert book.running_at(NOW + 12 * H) == ("spring",)
    assert book.running_at(NOW + 48 * H) == ()


def test_a_request_cannot_leave_a_running_promotion_out() -> None:
    assert _book().resolve([], NOW + 11 * H) == ("night", "spring")
    assert _book().resolve(["spring"], NOW + 11 * H) == ("night", "spring")


def test_naming_an_unknown_or_finished_promotion_is_refused() -> None:
    with pytest.raises(NotFound, match="'summer' is not published") as exc:
        _book().resolve(["summer"], NOW)
    assert exc.value.field == "promotions"
    with pytest.raises(FailedPrecondition, match="'night' is not running"):
        _book().resolve(["night"], NOW)


@pytest.mark.parametrize(
    ("name", "title", "start", "end", "match"),
    [
        ("Spring Sale", "t", NOW, NOW + H, "must be 1-64 characters"),
        ("spring", " ", NOW, NOW + H, "needs a public title"),
        ("spring", "t", NOW + H, NOW, "ends"),
        ("spring", "t", NOW, NOW + timedelta(days=400), "longer than 366 days"),
    ],
)
def test_bad_promotions_are_refused(
    name: str, title: str, start: datetime, end: datetime, match: str
) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Promotion(name, title, "text", start, end)


def test_publication_rules() -> None:
    book = _book()
    with pytest.raises(AlreadyExists, match="names are never reused"):
        book.publish(_promo("spring", NOW + 100 * H, NOW + 101 * H), NOW)
    with pytest.raises(InvalidArgument, match="before it is published"):
        book.publish(_promo("late", NOW - H, NOW + H), NOW)
    with pytest.raises(InvalidArgument, match="empty window"):
        book.publish(_promo("empty", NOW, NOW), NOW)


def test_ending_cuts_the_window_and_withdraws_a_future_one() -> None:
    book, ended = _book().end("spring", NOW + 5 * H)
    assert ended.ends_at == NOW + 5 * H
    assert book.running_at(NOW + 6 * H) == ()
    book, withdrawn = book.end("night", NOW + 6 * H)
    assert withdrawn.ends_at == withdrawn.starts_at
    assert book.running_at(NOW + 11 * H) == ()
    with pytest.raises(FailedPrecondition, match="already ended"):
        book.end("spring", NOW + 7 * H)
    with pytest.raises(NotFound):
        book.end("summer", NOW)


def test_document_round_trip() -> None:
    book = _book()
    again = PromotionBook.from_document(book.version, book.to_document())
    assert again.to_document() == book.to_document()
    with pytest.raises(InvalidArgument, match="unknown promotion field"):
        Promotion.from_dict({**book.to_document()[0], "percent": 10})


def test_context_gets_the_running_promotions_and_keeps_its_type() -> None:
    ctx = PublicContext(at=NOW + 11 * H, region="CN")
    out = with_running_promotions(_book(), ctx)
    assert out.promotions == ("night", "spring") and out.region == "CN"
    assert ctx.promotions == ()
    same = PublicContext(at=NOW - H)
    assert with_running_promotions(_book(), same) is same


def test_day_ref_changes_by_day_and_key() -> None:
    key = b"k" * 32
    assert day_ref(key, "", NOW) == ""
    a = day_ref(key, "u1", NOW)
    assert len(a) == 16 and a == day_ref(key, "u1", NOW + 5 * H)
    assert a != day_ref(key, "u1", NOW + 24 * H)
    assert a != day_ref(b"x" * 32, "u1", NOW)
    assert a != day_ref(key, "u2", NOW)


def test_cached_day_pseudonyms_agree_with_day_ref() -> None:
    key = b"k" * 32
    refs = DayPseudonyms(key, max_size=2)
    for shopper in ("u1", "u2", "u3", "u1"):
        for at in (NOW, NOW + 20 * H):
            assert refs.ref(shopper, at) == day_ref(key, shopper, at)
    assert refs.ref("", NOW) == ""
