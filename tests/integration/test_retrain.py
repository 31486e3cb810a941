"""``fairshelf retrain`` and ``fairshelf bundles`` as real processes over a real SQLite event log
and tiny real trainings (training.retrain, fairshelf.cli.retrain_cmd, fairshelf.cli.bundles_cmd).

The gate's figures are printed (``-s``) so a run shows the decisions it took.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from retrain_support import (
    bundles_cmd,
    fairshelf,
    retrain_args,
    run_report,
    setup,
    start_fairshelf,
)

from pricing.fairness.report import verify_audit_log
from recsys.bundle import load_bundle
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from training.retrain.registry import current_id, list_bundles

pytestmark = pytest.mark.timeout(300)


def _gate_line(report: dict) -> str:  # type: ignore[type-arg]
    gate = report["gate"]
    cells = [
        f"{name} {c['champion']:.4f}->{c['challenger']:.4f} "
        f"diff {c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
        for name, c in gate["comparisons"].items()
    ]
    return (
        f"{report['outcome']} (exit {report['exit_code']}), {gate['n_users']} shoppers, "
        f"{gate['n_purchases']} purchases: "
        + "; ".join(cells)
        + f"; total {report['timings_seconds']['total']:.1f} s"
    )


def _audit_kinds(db_url: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    db = Database(db_url)
    try:
        store = AuditStore(db)
        assert verify_audit_log(store).ok
        return [(r.kind, r.payload) for r in store.records()]
    finally:
        db.close()


def test_honest_retrain_publishes_and_is_audited(tmp_path: Path) -> None:
    s = setup(tmp_path)
    champion = current_id(s.bundles)
    done = fairshelf(*retrain_args(s, "--keep", "1"))
    assert done.returncode == 0, done.stdout + done.stderr
    report = run_report(s.bundles)
    print("\nhonest:", _gate_line(report))
    assert report["outcome"] == "published"
    new = current_id(s.bundles)
    assert new == report["challenger"] != champion
    # The published bundle loads, verifies and holds the logged events.
    bundle = load_bundle(s.bundles)
    assert bundle.manifest.data.last_event == s.logged["timestamp"].max().to_pydatetime()
    # --keep 1 still keeps the bundle that served before; no work directory is left.
    assert {e.bundle_id for e in list_bundles(s.bundles)} == {champion, new}
    assert not list(s.bundles.glob(".retrain-*"))
    run_dir = sorted((s.bundles / "runs").iterdir())[-1]
    assert {"report.md", "report.json", "gate.png"} <= {p.name for p in run_dir.iterdir()}
    kinds = _audit_kinds(s.db_url)
    assert kinds[-1][0] == "bundle_published"
    assert kinds[-1][1]["bundle_id"] == new and kinds[-1][1]["previous"] == champion
    # A second run, with the files the new champion records, finds nothing new: exit 4.
    again = fairshelf("retrain", "--db", s.db_url, "--bundles", str(s.bundles))
    assert again.returncode == 4, again.stdout + again.stderr
    assert current_id(s.bundles) == new


def test_gate_refuses_a_challenger_trained_on_shuffled_item_ids(tmp_path: Path) -> None:
    s = setup(tmp_path, corrupt_base=True)
    champion = current_id(s.bundles)
    done = fairshelf(*retrain_args(s))
    report = run_report(s.bundles)
    print("\nshuffled:", _gate_line(report))
    assert done.returncode == 3, done.stdout + done.stderr
    assert report["outcome"] == "refused" and report["exit_code"] == 3
    assert "worse than the champion" in report["reason"]
    assert "refused" in done.stdout and "recall@20" in done.stdout
    for c in report["gate"]["comparisons"].values():
        assert c["high"] < -report["gate"]["tolerance"]
    assert current_id(s.bundles) == champion
    assert [e.bundle_id for e in list_bundles(s.bundles)] == [champion]
    assert "refused" in (sorted((s.bundles / "runs").iterdir())[-1] / "report.md").read_text()


def test_two_jobs_at_once_one_publishes_the_other_exits_with_the_lock_code(
    tmp_path: Path,
) -> None:
    s = setup(tmp_path)
    champion = current_id(s.bundles)
    t = time.perf_counter()
    first = start_fairshelf(*retrain_args(s))
    # The second starts once the first holds the lock.
    lock = s.bundles / ".lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        lock.exists() and str(first.pid) in lock.read_text()
    ):
        time.sleep(0.05)
    second = fairshelf(*retrain_args(s))
    out, err = first.communicate(timeout=240)
    print(
        f"\ntwo jobs: first exit {first.returncode}, second exit {second.returncode}, "
        f"{time.perf_counter() - t:.1f} s"
    )
    assert first.returncode == 0, out + err
    assert second.returncode == 5, second.stdout + second.stderr
    assert "locked" in second.stderr
    published = [e.bundle_id for e in list_bundles(s.bundles) if e.bundle_id != champion]
    assert len(published) == 1 and current_id(s.bundles) == published[0]
    # A job allowed to wait runs after the holder and finds nothing new.
    waited = fairshelf(*retrain_args(s, "--lock-wait", "60"))
    assert waited.returncode == 4, waited.stdout + waited.stderr


def test_kill_9_mid_training_leaves_the_bundles_directory_valid(tmp_path: Path) -> None:
    s = setup(tmp_path)
    champion = current_id(s.bundles)
    job = start_fairshelf(*retrain_args(s))
    # Killed once its work directory exists (it is training).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(s.bundles.glob(".retrain-*/*")):
        time.sleep(0.02)
    assert list(s.bundles.glob(".retrain-*")), "the job never started training"
    os.kill(job.pid, signal.SIGKILL)
    job.communicate(timeout=30)
    assert job.returncode == -signal.SIGKILL
    assert current_id(s.bundles) == champion
    assert [e.bundle_id for e in list_bundles(s.bundles)] == [champion]
    load_bundle(s.bundles, verify=True)
    # The lock died with the job; the next run clears the leftovers and publishes.
    done = fairshelf(*retrain_args(s))
    assert done.returncode == 0, done.stdout + done.stderr
    report = run_report(s.bundles)
    assert report["data"]["left_by_killed_runs"]
    assert not list(s.bundles.glob(".retrain-*"))


def test_rollback_and_promote_are_audited_and_named(tmp_path: Path) -> None:
    s = setup(tmp_path)
    champion = current_id(s.bundles)
    assert fairshelf(*retrain_args(s)).returncode == 0
    new = current_id(s.bundles)
    no_reason = bundles_cmd(s, "rollback")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    back = bundles_cmd(s, "rollback", "--reason", "shoppers complain", "--actor", "ops@example")
    assert back.returncode == 0, back.stdout + back.stderr
    assert current_id(s.bundles) == champion
    kind, payload = _audit_kinds(s.db_url)[-1]
    assert kind == "bundle_rolled_back"
    assert payload["bundle_id"] == champion and payload["previous"] == new
    assert payload["actor"] == "ops@example" and payload["reason"] == "shoppers complain"
    verify = fairshelf("audit", "verify", "--db", s.db_url)
    assert verify.returncode == 0 and "OK" in verify.stdout
    forward = bundles_cmd(s, "promote", new, "--reason", "fixed", "--actor", "ops@example")
    assert forward.returncode == 0, forward.stderr
    assert current_id(s.bundles) == new
    assert _audit_kinds(s.db_url)[-1][0] == "bundle_promoted"
    unknown = bundles_cmd(s, "promote", "nope", "--reason", "x")
    assert unknown.returncode == 2 and "no bundle 'nope'" in unknown.stderr
    listed = fairshelf("bundles", "list", "--bundles", str(s.bundles))
    assert listed.returncode == 0 and champion in listed.stdout and new in listed.stdout
    shown = json.loads(fairshelf("bundles", "show", new, "--bundles", str(s.bundles)).stdout)
    assert shown["current"] and shown["gate"]["recall@20"] >= 0
    assert shown["data"]["last_event"].startswith(str(s.logged["timestamp"].max().date()))


def test_dry_run_decides_without_training_or_moving(tmp_path: Path) -> None:
    s = setup(tmp_path)
    champion = current_id(s.bundles)
    done = fairshelf(*retrain_args(s, "--dry-run"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_report(s.bundles)["outcome"] == "passed_dry_run"
    assert current_id(s.bundles) == champion
    assert [e.bundle_id for e in list_bundles(s.bundles)] == [champion]
