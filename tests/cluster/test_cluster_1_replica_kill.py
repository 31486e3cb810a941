"""``kill -9`` of one replica under a steady load through haproxy: no acknowledged event is
lost, the failed calls are counted and bounded, the balancer stops sending to the dead replica
within its health interval, and the replica restarts and takes traffic again.

The bound on failed calls: each load thread has one call in flight at a time, so at the moment
of the kill at most ``threads`` calls can be on the victim. Calls sent after the kill meet a
refused connection, which haproxy retries on another replica (``retry-on conn-failure`` with
``option redispatch``), and reads cut off on the victim are resent too (``empty-response``);
only writes in flight on the victim fail (they may have committed, so haproxy does not resend
them; the client does, with the same event ids). Hence failed calls <= threads.
"""

from __future__ import annotations

import time
from collections import Counter

from cluster_load import SteadyLoad
from cluster_topology import Cluster, Shop, wait_for

# haproxy's health bound (deploy/haproxy/haproxy.cfg): the next check within inter (1 s), then
# fall (2) checks fastinter (0.25 s) apart, each failing within timeout check (1 s) at worst.
HEALTH_BOUND_SECONDS = 1.0 + 2 * 0.25 + 1.0


def _states(cluster: Cluster, server: str) -> set[str]:
    return {state for (_, name), state in cluster.lb.states().items() if name == server}


def test_kill_9_one_replica_under_load(cluster: Cluster, shop: Shop) -> None:
    victim = cluster.replicas[0]
    load = SteadyLoad(
        cluster.http_url,
        cluster.grpc_target,
        shop.users,
        shop.items,
        shop.opted_out,
        threads=3,
        tag="kill",
    )
    with load:
        wait_for(
            lambda: any(c.backend == victim.name for c in load.ledger.snapshot()),
            10,
            "the victim serves load",
        )
        time.sleep(1.0)
        killed_at = time.monotonic()
        victim.kill9()
        down_after = wait_for(
            lambda: _states(cluster, victim.name) == {"DOWN"},
            10,
            "haproxy marks the killed replica DOWN",
            step=0.02,
        )
        time.sleep(2.0)  # the two survivors carry the load
        restarted_at = time.monotonic()
        victim.start()
        ready_after = victim.wait_ready()
        wait_for(lambda: _states(cluster, victim.name) == {"UP"}, 15, "replica back UP")
        rejoined_at = time.monotonic()
        wait_for(
            lambda: any(
                c.backend == victim.name and c.started > rejoined_at for c in load.ledger.snapshot()
            ),
            10,
            "replica takes traffic again",
        )
        time.sleep(0.5)
    calls = load.ledger.snapshot()
    failed = [c for c in calls if not c.ok]
    duplicates = load.resend_unacked()
    print(
        f"\n[kill -9] calls {len(calls)}, failed {len(failed)} "
        f"{dict(Counter(c.code for c in failed))}"
        f" (bound {load.threads}); DOWN after {down_after:.2f} s (bound {HEALTH_BOUND_SECONDS} s);"
        f" restart ready in {ready_after:.1f} s, rejoined {rejoined_at - restarted_at:.1f} s after"
        f" restart; {len(load.ledger.acked)} events acknowledged, {duplicates} resent duplicates"
    )
    assert len(failed) <= load.threads, [(c.op, c.transport, c.code) for c in failed]
    assert down_after <= HEALTH_BOUND_SECONDS
    # Failures are the calls in flight at the kill, none after the balancer knew.
    assert all(killed_at - 5.0 <= c.started <= killed_at + down_after for c in failed)
    assert not [c for c in calls if c.code == "TIMEOUT"]
    assert not [
        c for c in calls if c.backend == victim.name and killed_at < c.started < restarted_at
    ]
    # No acknowledged event lost; each stored once (event_id is unique in the store).
    stored = {r[0] for r in cluster.sql("SELECT event_id FROM events WHERE event_id LIKE 'kill-%'")}
    assert load.ledger.acked <= stored and len(stored) == len(load.ledger.acked)
    assert not [c for c in calls if c.user in shop.opted_out and c.personalized]
