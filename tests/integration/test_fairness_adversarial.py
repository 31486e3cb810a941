"""The adversarial suite of the fairness guard (SPEC §7): every attack must be caught.

Each test wires the real pricing engine, the guard and real SQLite audit and quote logs, runs
one attack, and checks three things: the attack was caught with a clear message, the audit log
and the violations metric recorded it, and nothing shopper-dependent reached a response.
"""

from __future__ import annotations

import ast
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from fairness_fixtures import (
    _STASH,
    AT,
    ITEM_IDS,
    ContextVarSnoopPolicy,
    DeclaresTenurePolicy,
    GlobalStashPolicy,
    HonestPolicy,
    RefusesLoyalPolicy,
    RequestObjectSnoopPolicy,
    ShopperAwareContext,
    ShopperCachePolicy,
    StackSnoopPolicy,
    ctx_at,
    make_shop,
)

from fairshelf.errors import InvalidArgument, PolicyRejected
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.consistency import audit_quotes
from pricing.fairness.metrics import violations_seen
from pricing.fairness.programs import DiscountProgram, Eligibility, ProgramBook
from pricing.fairness.quotes import GUARD_BLOCKED, GUARD_OK, GUARD_QUARANTINED
from pricing.fairness.report import verify_audit_log
from pricing.fairness.shopper import Shopper, request_scope
from pricing.guardrails import GuardrailSet
from pricing.policies.registry import register_policy
from pricing.policy import PricingPolicy

ROOT = Path(__file__).resolve().parents[2]

NEWCOMER = Shopper("new-1", tenure_days=2, orders=0, device="web")
LOYAL = Shopper("loyal-1", tenure_days=900, orders=40, device="ios", member=True)


def _honest_prices(tmp_path: Path) -> dict[str, float]:
    shop = make_shop(tmp_path / "honest.db", HonestPolicy(), ())
    try:
        return {q.item_id: q.list_price for q in shop.service.quote(ITEM_IDS, ctx_at())}
    finally:
        shop.close()


# -- G1: declared shopper input ------------------------------------------------------------


def test_policy_declaring_a_shopper_input_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyRejected, match=r"shopper-level input\(s\) \['tenure'\].*rule G1"):
        register_policy(DeclaresTenurePolicy)
    with pytest.raises(PolicyRejected, match="tenure"):
        make_shop(tmp_path / "g1.db", DeclaresTenurePolicy())


def test_guard_refuses_a_decision_naming_a_shopper_input(tmp_path: Path) -> None:
    # An engine whose policy slipped past the load check (inputs mutated after load).
    policy = HonestPolicy()
    shop = make_shop(tmp_path / "g1b.db", policy)
    try:
        type(policy).inputs = frozenset({"base_price", "device"})
        with pytest.raises(PolicyRejected, match=r"non-public input\(s\) \['device'\]"):
            shop.service.quote(["sku-001"], ctx_at())
    finally:
        type(policy).inputs = frozenset({"base_price", "competitor_prices", "item_id"})
        shop.close()


# -- G2: undeclared shopper reads through side channels ------------------------------------


def _run_side_channel(
    tmp_path: Path, policy: object, ctx_for: object = None
) -> tuple[list[list[float]], list[str], dict[str, float]]:
    """Quote every item to a newcomer, a loyal iOS member and a newcomer again."""
    fair = _honest_prices(tmp_path)
    shop = make_shop(tmp_path / "attack.db", policy, ())  # type: ignore[arg-type]
    try:
        served: list[list[float]] = []
        statuses: list[str] = []
        for shopper in (NEWCOMER, LOYAL, NEWCOMER, LOYAL):
            ctx = ShopperAwareContext(at=AT, shopper=shopper) if ctx_for else ctx_at()
            with request_scope("req-1", shopper):  # the serving layer's own request scope
                quotes = shop.service.quote(ITEM_IDS, ctx, shopper)
            served.append([q.list_price for q in quotes])
            statuses += [q.guard_status for q in quotes]
        messages = [r.payload["message"] for r in shop.audit.records() if r.kind == "g2_violation"]
        assert verify_audit_log(shop.audit).ok
        summary = audit_quotes(shop.quotes.iter_quotes())
        assert summary.ok, summary.g3 + summary.g4
        return served, statuses + messages, fair
    finally:
        shop.close()


@pytest.mark.parametrize(
    ("policy_cls", "use_request_object"),
    [
        (ContextVarSnoopPolicy, False),
        (RequestObjectSnoopPolicy, True),
        (StackSnoopPolicy, False),
        (GlobalStashPolicy, False),
        (ShopperCachePolicy, False),
    ],
    ids=["contextvar", "request-object", "call-stack", "global-stash", "shopper-cache"],
)
def test_side_channel_is_caught_and_fair_price_served(
    tmp_path: Path, policy_cls: type[PricingPolicy], use_request_object: bool
) -> None:
    _STASH.clear()
    before = violations_seen("G2", f"{policy_cls.name}@1")
    served, out, fair = _run_side_channel(tmp_path, policy_cls(), use_request_object)
    # Nothing shopper-dependent reached a response: everyone got the honest list price.
    for prices in served:
        assert prices == [fair[i] for i in ITEM_IDS]
    statuses = [s for s in out if s in (GUARD_OK, GUARD_BLOCKED, GUARD_QUARANTINED)]
    messages = [m for m in out if m not in statuses]
    assert GUARD_BLOCKED in statuses
    assert messages and all("rule G2" in m and "with the shopper in scope" in m for m in messages)
    assert violations_seen("G2", f"{policy_cls.name}@1") > before


class AttributeSnoopPolicy(RequestObjectSnoopPolicy):
    """Reads a shopper attached to a plain PublicContext instance after construction."""

    name: ClassVar[str] = "snoop_attribute"


def test_shopper_attached_to_a_plain_context_instance_is_caught(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "attr.db", AttributeSnoopPolicy(), ())
    try:
        # At the epoch start the engine hands the very same context object to the policy.
        ctx = ctx_at(AT.replace(minute=0))
        object.__setattr__(ctx, "shopper", LOYAL)  # a careless handler tags the request
        [q] = shop.service.quote(["sku-008"], ctx, LOYAL)
        [fair] = shop.service.quote(["sku-008"], ctx_at(), NEWCOMER)
        assert q.guard_status == GUARD_BLOCKED and q.list_price == fair.list_price
    finally:
        shop.close()


def test_policy_failing_only_for_some_shoppers_is_caught(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "refuse.db", RefusesLoyalPolicy(), ())
    try:
        quotes = shop.service.quote(["sku-002"], ctx_at(), LOYAL)
        assert quotes[0].guard_status == GUARD_BLOCKED and quotes[0].list_price > 0
        [violation] = [r for r in shop.audit.records() if r.kind == "g2_violation"]
        assert "engine failed only in the shopper's scope" in violation.payload["message"]
    finally:
        shop.close()


def test_caught_policy_is_quarantined_so_a_stash_cannot_taint_later_epochs(tmp_path: Path) -> None:
    _STASH.clear()
    shop = make_shop(tmp_path / "stash.db", GlobalStashPolicy(), ())
    try:
        shop.service.quote(["sku-003"], ctx_at(), LOYAL)  # caught; the stash now holds LOYAL
        later = ctx_at(AT.replace(hour=14))
        [q] = shop.service.quote(["sku-003"], later, NEWCOMER)
        # The stashed loyal shopper would have surcharged this epoch's clean-room price.
        assert q.guard_status == GUARD_QUARANTINED
        assert q.list_price == q.base_price
        assert ("snoop_global", "1") in shop.service.quarantined
        kinds = [r.kind for r in shop.audit.records()]
        assert "policy_quarantined" in kinds
    finally:
        shop.close()


def test_honest_policy_is_never_flagged(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "honest2.db", HonestPolicy())
    try:
        for shopper in (NEWCOMER, LOYAL, Shopper("x", 50, 3, "android")):
            for q in shop.service.quote(
                ITEM_IDS, ctx_at(competitor_prices={"sku-004": 15.0}), shopper
            ):
                assert q.guard_status == GUARD_OK
        assert shop.audit.count("g2_violation") == 0
    finally:
        shop.close()


# -- G4: published, reduce-only programs ---------------------------------------------------


def test_discount_program_that_raises_a_price_is_refused_at_load() -> None:
    with pytest.raises(PolicyRejected, match=r"would raise prices.*rule G4"):
        DiscountProgram(
            "loyal_fee",
            "Loyalty pricing",
            "Loyal customers pay a small premium.",
            Eligibility.MEMBER,
            percent_off=-5,
        )
    with pytest.raises(PolicyRejected, match="would raise prices"):
        DiscountProgram(
            "app_fee",
            "App fee",
            "Orders in the app cost 2 more.",
            Eligibility.EVERYONE,
            amount_off=-2,
        )
    with pytest.raises(PolicyRejected, match="public title and public text"):
        DiscountProgram("secret", "Secret", "  ", Eligibility.EVERYONE, percent_off=5)


class LoyaltySurchargeProgram(DiscountProgram):
    """A program whose code computes a negative reduction for members: a loyalty surcharge."""

    def reduction(self, price: float) -> float:
        return -round(price * 0.08, 2)


def test_loyalty_surcharge_program_is_refused_at_run_time(tmp_path: Path) -> None:
    sneaky = LoyaltySurchargeProgram(
        "club",
        "Club price",
        "Club members get special prices.",
        Eligibility.MEMBER,
        percent_off=1,
    )
    shop = make_shop(tmp_path / "surcharge.db", HonestPolicy(), (sneaky,))
    try:
        [member] = shop.service.quote(["sku-005"], ctx_at(), LOYAL)
        [other] = shop.service.quote(["sku-005"], ctx_at(), NEWCOMER)
        assert member.final_price == member.list_price == other.final_price
        assert member.discount_lines == ()
        [refused] = [r for r in shop.audit.records() if r.kind == "g4_program_refused"]
        assert "programs may only lower a price" in refused.payload["message"]
        assert violations_seen("G4", "club") >= 1
    finally:
        shop.close()


def test_published_programs_only_lower_and_show_as_lines(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "programs.db", HonestPolicy())
    try:
        [new] = shop.service.quote(["sku-001"], ctx_at(), NEWCOMER)  # kitchen item
        [member] = shop.service.quote(["sku-001"], ctx_at(), LOYAL)
        assert new.list_price == member.list_price
        assert [line.program_id for line in new.discount_lines] == ["welcome10"]
        assert [line.program_id for line in member.discount_lines] == ["member5"]
        for q in (new, member):
            assert q.final_price == round(q.list_price - sum(x.amount for x in q.discount_lines), 2)
            assert q.final_price < q.list_price
    finally:
        shop.close()


def test_quote_log_audit_catches_a_loyalty_surcharge_that_bypassed_the_guard(
    tmp_path: Path,
) -> None:
    shop = make_shop(tmp_path / "bypass.db", HonestPolicy(), ())
    try:
        [new] = shop.service.quote(["sku-006"], ctx_at(), NEWCOMER)
        [loyal] = shop.service.quote(["sku-006"], ctx_at(), LOYAL)
        # A record written by something other than the guard: the loyal shopper charged more.
        forged = loyal._replace(
            quote_id="q_forged",
            list_price=loyal.list_price + 3,
            final_price=loyal.final_price + 3,
        )
        shop.quotes.add([forged])
        summary = audit_quotes(shop.quotes.iter_quotes())
        [g3] = summary.g3
        assert "2 different list prices" in g3.message and "q_forged" in g3.examples
        [g4] = summary.g4
        assert "existing customers paid more than new ones" in g4.message
        assert set(g4.examples) == {"q_forged", new.quote_id}
    finally:
        shop.close()


# -- 1,000 shoppers ------------------------------------------------------------------------


def test_thousand_shoppers_same_item_and_epoch_all_get_the_same_price(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "crowd.db", ContextVarSnoopPolicy(), (), buffer_quotes=True)
    devices = ("ios", "android", "web", "mini-program")
    try:
        finals: Counter[float] = Counter()
        for n in range(1000):
            shopper = Shopper(
                f"s{n}", tenure_days=(n * 7) % 1500, orders=n % 23, device=devices[n % 4]
            )
            [q] = shop.service.quote(["sku-007"], ctx_at(AT.replace(minute=n % 60)), shopper)
            finals[q.list_price] += 1
        assert len(finals) == 1
        shop.service.flush()  # quotes reach SQLite through the writer thread
        summary = audit_quotes(shop.quotes.iter_quotes())
        assert summary.quotes == 1000 and summary.ok
        [group] = summary.groups
        assert group.list_dispersion == 0
        assert set(group.mean_list_by_tenure()) == {"new", "regular", "long"}
        # Every loyal shopper's attempt was caught, and only theirs.
        loyal = sum(1 for n in range(1000) if (n * 7) % 1500 >= 365 or n % 23 >= 5)
        assert shop.audit.count("g2_violation") == loyal
    finally:
        shop.close()


# -- not bypassable ------------------------------------------------------------------------

_FORBIDDEN_FOR_SERVING = ("pricing.engine", "pricing.policies", "pricing.policy")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_serving_reaches_prices_only_through_the_guard() -> None:
    offenders = []
    paths = [p for top in ("serving", "recsys", "training") for p in (ROOT / top).rglob("*.py")]
    for path in sorted(paths):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in _FORBIDDEN_FOR_SERVING):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "serving must quote through pricing.fairness only: " + "; ".join(
        offenders
    )


def test_pricing_core_cannot_reach_shopper_data() -> None:
    offenders = []
    for path in sorted((ROOT / "pricing").rglob("*.py")):
        if "fairness" in path.parts:
            continue
        for name in _imports(path):
            if name.split(".")[0] in {"recsys", "serving", "training"} or name.startswith(
                "pricing.fairness"
            ):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "; ".join(offenders)


def test_built_service_loads_policies_through_the_g1_registry(tmp_path: Path) -> None:
    from fairness_fixtures import ITEMS, built_service

    with built_service(tmp_path / "built.db") as service:
        [q] = service.quote(["sku-000"], PublicContext(at=AT), LOYAL)
        assert q.policy_name == "static" and q.list_price == ITEMS[0].base_price
        with pytest.raises(PolicyRejected):
            register_policy(DeclaresTenurePolicy)


class _Unused(HonestPolicy):
    name: ClassVar[str] = "unused"


def test_engine_checks_g1_on_policy_swap() -> None:
    from fairness_fixtures import ITEMS

    engine = PricingEngine(PricingCatalog({s.item_id: s for s in ITEMS}), GuardrailSet(), _Unused())
    with pytest.raises(PolicyRejected, match="rule G1"):
        engine.set_policy(DeclaresTenurePolicy())
    assert ProgramBook().programs == ()


def test_concurrent_requests_across_an_epoch_boundary_stay_consistent(tmp_path: Path) -> None:
    shop = make_shop(tmp_path / "threads.db", ContextVarSnoopPolicy(), (), buffer_quotes=True)
    shoppers = [NEWCOMER, LOYAL, Shopper("m", 120, 3, "android")]

    def ask(n: int) -> list[tuple[str, int, float]]:
        at = AT.replace(minute=50) + timedelta(minutes=n % 20)
        quotes = shop.service.quote(ITEM_IDS[:4], ctx_at(at), shoppers[n % 3])
        return [(q.item_id, q.epoch, q.list_price) for q in quotes]

    try:
        with ThreadPoolExecutor(4) as pool:
            results = [row for rows in pool.map(ask, range(120)) for row in rows]
        prices: dict[tuple[str, int], set[float]] = {}
        for item_id, epoch, price in results:
            prices.setdefault((item_id, epoch), set()).add(price)
        assert len({epoch for _, epoch in prices}) == 2  # both sides of the hour
        assert all(len(p) == 1 for p in prices.values()), prices
        shop.service.flush()
        assert audit_quotes(shop.quotes.iter_quotes()).ok
        assert verify_audit_log(shop.audit).ok
    finally:
        shop.close()


@pytest.mark.parametrize("region", ["200031", "31.2304,121.4737", "CN-31-Xuhui", "Shanghai"])
def test_precise_location_cannot_pass_as_public_region(tmp_path: Path, region: str) -> None:
    shop = make_shop(tmp_path / "region.db", HonestPolicy(), ())
    try:
        with pytest.raises(InvalidArgument, match="not a coarse market code") as err:
            shop.service.quote(["sku-001"], ctx_at(region=region), NEWCOMER)
        assert err.value.field == "region"
        [q] = shop.service.quote(["sku-001"], ctx_at(region="CN-31"), NEWCOMER)
        assert q.guard_status == GUARD_OK
    finally:
        shop.close()


def test_naive_order_is_fooled_by_a_global_stash_but_the_guard_is_not(tmp_path: Path) -> None:
    from fairness_fixtures import ITEMS

    from pricing.fairness.shopper import REQUEST_SCOPE, RequestScope

    _STASH.clear()
    policy, item, ctx = GlobalStashPolicy(), ITEMS[1], ctx_at()
    # Naive differential: shopper's run first, shopper-free run second. They agree: fooled.
    token = REQUEST_SCOPE.set(RequestScope("naive", LOYAL))
    personal = policy.propose(item, ctx, "revenue").price
    REQUEST_SCOPE.reset(token)
    shopper_free = policy.propose(item, ctx, "revenue").price
    assert personal == shopper_free > HonestPolicy().propose(item, ctx, "revenue").price
    # The guard computes the shopper-free price first: caught, fair price served.
    _STASH.clear()
    shop = make_shop(tmp_path / "naive.db", GlobalStashPolicy(), ())
    try:
        [q] = shop.service.quote([item.item_id], ctx, LOYAL)
        assert q.guard_status == GUARD_BLOCKED
        assert q.list_price == HonestPolicy().propose(item, ctx, "revenue").price
    finally:
        shop.close()


def test_cross_thread_stack_read_is_contained(tmp_path: Path) -> None:
    """The one channel the clean room cannot close: reading the requesting thread's stack.

    The first shopper of an epoch can taint that epoch's pinned price; the guard catches the
    policy at the first shopper who differs, every shopper of the epoch still pays the same
    list price (G3 holds), and the quarantine serves base prices from the next epoch on.
    """
    from fairness_fixtures import CrossThreadSnoopPolicy

    shop = make_shop(tmp_path / "threads_snoop.db", CrossThreadSnoopPolicy(), ())
    try:
        [first] = shop.service.quote(["sku-009"], ctx_at(), LOYAL)
        [second] = shop.service.quote(["sku-009"], ctx_at(), NEWCOMER)
        assert second.guard_status == GUARD_BLOCKED
        assert second.list_price == first.list_price  # one price for the epoch
        [later] = shop.service.quote(["sku-009"], ctx_at(AT.replace(hour=13)), NEWCOMER)
        assert later.guard_status == GUARD_QUARANTINED and later.list_price == later.base_price
        assert audit_quotes(shop.quotes.iter_quotes()).ok
    finally:
        shop.close()
