"""The scale-out topology on 127.0.0.1, from Debian packages: a PostgreSQL of its own, three
``fairshelf serve`` replicas as separate processes, haproxy (deploy/haproxy/haproxy.cfg) in
front for HTTP and gRPC, Prometheus (deploy/prometheus) scraping every replica with the alert
rules. Every process is started here and stopped by :meth:`Cluster.stop`, which is safe to call
after any partial start.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from debian_tools import binary, postgres_bin
from serving_support import KEYS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PSEUDONYM_KEY = "cluster-test-pseudonym-key-0001"
# Short on purpose, so that the suite takes minutes: the shortest epoch the clock accepts,
# and a poll well inside it.
EPOCH_SECONDS = 60
POLL_SECONDS = 2.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``predicate`` until true; return the seconds it took, or fail naming ``what``."""
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(step)


def _stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Shop:
    """What the tests ask about: shoppers (some opted out) and items of the served bundle."""

    users: list[str]
    items: list[str]
    opted_out: list[str]
    bundle_id: str


class Postgres:
    """A throwaway PostgreSQL server on its own port and directory."""

    def __init__(self, root: Path) -> None:
        self.bin = postgres_bin()
        self.dir = root / "pg"
        self.port = free_port()
        self.url = f"postgresql+psycopg://fairshelf@127.0.0.1:{self.port}/fairshelf"
        # initdb and the server refuse to run as root: run them as the postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        out = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({out.returncode}): {out.stderr or out.stdout}")

    def init(self) -> None:
        """initdb, start, create the database."""
        self.dir.mkdir(parents=True)
        if self._as:
            # The postgres user must reach its directory inside the suite's private tree.
            self.dir.parent.chmod(0o755)
            subprocess.run(["chown", "postgres", str(self.dir)], check=True)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "fairshelf"
        )
        self.start()
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "fairshelf",
            "fairshelf",
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            opts,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, clean shutdown)."""
        if (self.dir / "data" / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"
            )


@dataclass
class Replica:
    """One ``fairshelf serve`` process with fixed ports (kept across restarts)."""

    name: str
    env: dict[str, str]
    log_path: Path
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        env = {
            **self.env,
            "FAIRSHELF_HTTP_PORT": str(self.http_port),
            "FAIRSHELF_GRPC_PORT": str(self.grpc_port),
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fairshelf.cli.main", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()

    def ready(self) -> bool:
        """Whether /readyz answers 200."""
        return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Wait for readiness; fail at once if the process died."""

        def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"replica {self.name} exited: {tail}")
            return self.ready()

        return wait_for(check, timeout, f"replica {self.name} ready", step=0.2)

    def kill9(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        _stop_process(self.proc)

    def get(self, path: str, role: str = "admin") -> Any:
        resp = httpx.get(f"{self.url}{path}", headers={"x-api-key": KEYS[role]}, timeout=10)
        resp.raise_for_status()
        return resp.json() if "json" in resp.headers.get("content-type", "") else resp.text

    def post(self, path: str, body: Any, role: str = "storefront") -> httpx.Response:
        return httpx.post(
            f"{self.url}{path}", json=body, headers={"x-api-key": KEYS[role]}, timeout=10
        )


class Haproxy:
    """haproxy with the repository's configuration, addresses from the environment."""

    def __init__(self, root: Path, replicas: list[Replica]) -> None:
        self.http_port, self.grpc_port, self.stats_port = free_port(), free_port(), free_port()
        self.log_path = root / "haproxy.log"
        self.env = {
            **os.environ,
            "LB_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "LB_GRPC_BIND": f"127.0.0.1:{self.grpc_port}",
            "LB_STATS_BIND": f"127.0.0.1:{self.stats_port}",
        }
        for n, r in enumerate(replicas, start=1):
            self.env[f"REPLICA_{n}_HOST"] = "127.0.0.1"
            self.env[f"REPLICA_{n}_HTTP_PORT"] = str(r.http_port)
            self.env[f"REPLICA_{n}_GRPC_PORT"] = str(r.grpc_port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cfg = DEPLOY / "haproxy" / "haproxy.cfg"
        log = self.log_path.open("ab")
        # -db: stay in the foreground, so the suite owns the process.
        self.proc = subprocess.Popen(
            [str(binary("haproxy")), "-db", "-f", str(cfg)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: bool(self.states()), 20, "haproxy stats page")

    def states(self) -> dict[tuple[str, str], str]:
        """``(backend, server) -> status`` (``UP``, ``DOWN``, ``UP 1/2`` ...) from the stats CSV."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=2).text
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {
            (row["pxname"], row["svname"]): row["status"]
            for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def stop(self) -> None:
        _stop_process(self.proc)


class Prometheus:
    """Prometheus with deploy/prometheus/prometheus.yml pointed at the local replicas."""

    def __init__(self, root: Path, replicas: list[Replica], lb: Haproxy) -> None:
        self.port = free_port()
        self.dir = root / "prometheus"
        self.log_path = root / "prometheus.log"
        self.replicas = replicas
        self.lb = lb
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        # Seconds instead of the production interval, so the suite sees scrapes and rules fast.
        config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
        config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
        targets = {
            "fairshelf": [f"127.0.0.1:{r.http_port}" for r in self.replicas],
            "haproxy": [f"127.0.0.1:{self.lb.stats_port}"],
        }
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": targets[job["job_name"]]}]
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> None:
        argv = [
            str(binary("prometheus")),
            f"--config.file={self._config()}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200,
            60,
            "prometheus ready",
            step=0.2,
        )

    def api(self, path: str) -> Any:
        body = httpx.get(f"{self.url}/api/v1/{path}", timeout=5).json()
        assert body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        _stop_process(self.proc)


class Cluster:
    """Everything above, started in order and stopped in reverse."""

    def __init__(self, root: Path, bundles: Path) -> None:
        self.root = root
        self.bundles = bundles
        self.pg = Postgres(root)
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "FAIRSHELF_DB_URL": self.pg.url,
            "FAIRSHELF_BUNDLES_DIR": str(bundles),
            "FAIRSHELF_HOST": "127.0.0.1",
            "FAIRSHELF_API_KEYS": json.dumps({key: role for role, key in KEYS.items()}),
            "FAIRSHELF_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "FAIRSHELF_PRICE_EPOCH_SECONDS": str(EPOCH_SECONDS),
            "FAIRSHELF_RELOAD_INTERVAL_SECONDS": str(POLL_SECONDS),
            "FAIRSHELF_LOG_FORMAT": "json",
            "FAIRSHELF_LOG_LEVEL": "warning",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.replicas = [Replica(f"r{n}", env, root / f"r{n}.log") for n in (1, 2, 3)]
        self.lb = Haproxy(root, self.replicas)
        self.prometheus = Prometheus(root, self.replicas, self.lb)

    @property
    def http_url(self) -> str:
        """The balancer's HTTP address."""
        return f"http://127.0.0.1:{self.lb.http_port}"

    @property
    def grpc_target(self) -> str:
        """The balancer's gRPC address."""
        return f"127.0.0.1:{self.lb.grpc_port}"

    def start(self) -> None:
        self.pg.init()
        for r in self.replicas:
            r.start()
        for r in self.replicas:
            r.wait_ready()
        self.lb.start()
        try:
            wait_for(
                lambda: all(s == "UP" for s in self.lb.states().values()),
                30,
                "haproxy sees every replica UP",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.lb.states()}") from None
        self.prometheus.start()

    def stop(self) -> None:
        """Stop everything that runs; every step is attempted even if an earlier one fails."""
        steps: list[Callable[[], None]] = [self.prometheus.stop, self.lb.stop]
        steps += [r.stop for r in self.replicas]
        steps.append(lambda: self.pg.stop("fast"))
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                errors.append(repr(exc))
        if errors:
            raise RuntimeError(f"cluster cleanup: {errors}")

    def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run ``query`` on the cluster's database (the suite's own checks)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.pg.url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(query), params)]
        finally:
            engine.dispose()
