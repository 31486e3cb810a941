"""``fairshelf serve --workers 2`` as an operator runs it: two worker processes share both ports,
``/metrics`` on any of them counts the calls of all, a killed worker is replaced, SIGTERM
stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from serving_support import KEYS, tiny_bundles

from proto.fairshelf.v1 import recommendations_pb2, recommendations_pb2_grpc
from recsys.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[2]


def _serve_argv(tmp_path: Path, bundles: Path, config: Path | None = None) -> list[str]:
    """``fairshelf serve --workers 2`` on free ports over ``bundles``, as an operator types it."""
    argv = [sys.executable, "-m", "fairshelf.cli.main", "serve", "--workers", "2"]
    argv += ["--bundles", str(bundles), "--db", f"sqlite:///{tmp_path / 'serve.db'}"]
    argv += ["--http-port", "0", "--grpc-port", "0"]
    return argv + (["--config", str(config)] if config is not None else [])


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: the parent pid follows the closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


class Served:
    def __init__(self, proc: subprocess.Popen[str], http_port: int, grpc_port: int) -> None:
        self.proc = proc
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.lines: list[str] = []

    def recommend_http(self, user: str) -> dict:  # type: ignore[type-arg]
        # A fresh connection per call, so that the kernel may hand it to either worker.
        with httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10) as http:
            resp = http.post(
                "/v1/recommend",
                json={"user_id": user, "k": 5},
                headers={"x-api-key": KEYS["storefront"]},
            )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def recommend_grpc(self, user: str) -> recommendations_pb2.RecommendResponse:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = recommendations_pb2_grpc.RecommendationServiceStub(channel)
            return stub.Recommend(
                recommendations_pb2.RecommendRequest(user_id=user, k=5),
                metadata=(("x-api-key", KEYS["storefront"]),),
                timeout=10,
            )

    def counted(self, transport: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10).text
        prefix = (
            f'fairshelf_requests_total{{code="OK",operation="Recommend",transport="{transport}"}}'
        )
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with _serving(tmp_path) as out:
        yield out


@contextmanager
def _serving(tmp_path: Path, settings: str = "") -> Iterator[Served]:
    bundles = tiny_bundles(tmp_path / "bundles")
    config = tmp_path / "serve.toml"
    keys = "\n".join(f'"{key}" = "{role}"' for role, key in KEYS.items())
    config.write_text(f"reload_interval_seconds = 0.5\n{settings}[api_keys]\n{keys}\n")
    proc = subprocess.Popen(
        [*_serve_argv(tmp_path, bundles, config), "--log-format", "console"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    announced = ""
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if line.startswith("fairshelf serving:"):
            announced = line
            break
    if not announced:
        proc.kill()
        proc.wait()
        tail = "".join(seen[-15:])
        pytest.fail(f"fairshelf serve --workers 2 did not start (exit {proc.returncode}):\n{tail}")
    http_port = int(announced.split("http://")[1].split()[0].rsplit(":", 1)[1])
    grpc_port = int(announced.rsplit(":", 1)[1])
    out = Served(proc, http_port, grpc_port)

    def drain() -> None:
        assert proc.stderr is not None
        for text in proc.stderr:
            out.lines.append(text)

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield out
    finally:
        workers = _children(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_two_workers_share_the_ports_and_report_one_set_of_metrics(
    served: Served, tmp_path: Path
) -> None:
    workers = _children(served.proc.pid)
    assert len(workers) == 2, workers
    users = [str(u) for u in load_bundle(tmp_path / "bundles" / "current").user_ids[:10]]

    http_before, grpc_before = served.counted("http"), served.counted("grpc")
    for n in range(30):
        assert served.recommend_http(users[n % len(users)])["items"]
        assert served.recommend_grpc(users[n % len(users)]).items
    # Whichever worker answers the scrape, it counts the calls of both.
    for _ in range(5):
        assert served.counted("http") - http_before == 30
        assert served.counted("grpc") - grpc_before == 30

    # A worker that dies is replaced; the other one serves meanwhile, and counts survive.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: not _alive(victim), 10, "killed worker gone")
    for n in range(5):
        assert served.recommend_http(users[n])["items"]
    _wait(lambda: len(_children(served.proc.pid) - {victim}) == 2, 120, "worker replaced")
    assert served.counted("http") - http_before >= 35

    # SIGTERM to the supervisor stops every worker and frees the ports.
    current = _children(served.proc.pid)
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=60) == 0
    assert not [pid for pid in current if _alive(pid)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{served.http_port}/healthz", timeout=2)


def _cores_of_threads(pid: int) -> set[frozenset[int]]:
    """The distinct core sets of the threads of ``pid``."""
    return {
        frozenset(os.sched_getaffinity(int(task.name)))
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning two workers needs 2 cores")
def test_pinned_workers_keep_every_thread_on_a_core_of_their_own(tmp_path: Path) -> None:
    with _serving(tmp_path, "pin_workers = true\n") as served:
        users = [str(u) for u in load_bundle(tmp_path / "bundles" / "current").user_ids[:4]]
        for user in users:  # both transports' threads are running
            assert served.recommend_http(user)["items"]
            assert served.recommend_grpc(user).items
        workers = sorted(_children(served.proc.pid))
        assert len(workers) == 2
        cores = [_cores_of_threads(pid) for pid in workers]
        # Every thread of a worker (gRPC's included) on the same single core ...
        assert all(len(c) == 1 and len(next(iter(c))) == 1 for c in cores), cores
        # ... and the two workers on different cores; the supervisor stays free.
        assert cores[0] != cores[1]
        assert _cores_of_threads(served.proc.pid) == {frozenset(os.sched_getaffinity(0))}


def test_a_worker_that_cannot_start_stops_the_server_with_its_error(tmp_path: Path) -> None:
    bundles = tiny_bundles(tmp_path / "bundles")
    programs = tmp_path / "programs.json"
    programs.write_text("{not json")
    config = tmp_path / "serve.toml"
    config.write_text(f'programs_file = "{programs}"\n')
    done = subprocess.run(
        _serve_argv(tmp_path, bundles, config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "programs.json" in done.stderr  # the worker's own message names the file
    assert "exited with code 2 before serving" in done.stderr
    assert "Traceback" not in done.stderr
    assert "fairshelf serving:" not in done.stderr


def test_sigterm_while_the_workers_start_stops_them_cleanly(tmp_path: Path) -> None:
    bundles = tiny_bundles(tmp_path / "bundles")
    proc = subprocess.Popen(
        _serve_argv(tmp_path, bundles), cwd=ROOT, stderr=subprocess.PIPE, text=True, env=ENV
    )
    # Once both workers exist (they take seconds to import and load), stop the supervisor.
    _wait(lambda: len(_children(proc.pid)) == 2, 60, "workers spawned")
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr and "error:" not in stderr
    assert not [pid for pid in workers if _alive(pid)]
