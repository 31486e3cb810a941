"""Several serving processes on one host, sharing the HTTP and gRPC ports.

One Python process runs requests on one core at a time (the interpreter lock), so a host
with N cores runs N workers: each a whole server (the replicas of docs/serving.md) over the
same database and bundles directory, listening with ``SO_REUSEPORT`` so that the kernel
spreads connections over them.

The supervisor serves nothing itself. It holds the two ports for the workers (a bound socket
that never listens, so port 0 resolves once and every worker gets the same number), gives
every worker the same pseudonym key (one shopper's audit pseudonym must not depend on the
worker that served the call) and one metrics directory (``/metrics`` on any worker reports
all of them), waits until every worker is up before it reports the server started, restarts
a worker that dies, and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import multiprocess

from fairshelf.errors import FailedPrecondition, InvalidArgument, PortInUse
from serving.cpu_affinity import WORKER_CPU_ENV, worker_cpu
from serving.logging import get_logger
from serving.settings import Settings

log = get_logger("fairshelf.workers")

READY_FD_ENV = "FAIRSHELF_READY_FD"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A worker that dies sooner than this after its start counts as crash-looping: the delay
# before the next start doubles (up to the cap) instead of spinning.
_STABLE_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 30.0


def reserve_port(host: str, port: int, setting: str = "port") -> socket.socket:
    """A bound, never listening ``SO_REUSEPORT`` socket holding ``port`` (0: a free one).

    Raises
    ------
    InvalidArgument
        The port cannot be bound (field ``setting``), e.g. another server holds it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        flag = setting.replace("_", "-")
        raise PortInUse(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --{flag} "
            f"or FAIRSHELF_{setting.upper()}",
            field=setting,
        ) from None
    return sock


def signal_ready() -> None:
    """Tell the supervisor this worker serves (no-op outside a supervised worker)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
    finally:
        os.close(int(fd))


@dataclass
class _Worker:
    slot: int
    proc: subprocess.Popen[bytes]
    started: float
    ready_fd: int | None
    failures: int = 0
    restart_at: float | None = field(default=None)


class Supervisor:
    """Starts ``settings.workers`` copies of ``fairshelf serve`` and keeps them running.

    Parameters
    ----------
    settings:
        The validated settings (host, ports, workers, pseudonym key).
    worker_args:
        Arguments after ``fairshelf serve`` that every worker gets (bundles, database, config,
        log format); the supervisor adds the ports and ``--workers 1``.
    ready_timeout:
        Seconds a worker has to load its bundle and start listening.
    """

    def __init__(
        self, settings: Settings, worker_args: Sequence[str], ready_timeout: float = 300.0
    ) -> None:
        self.settings = settings
        self.worker_args = list(worker_args)
        self.ready_timeout = ready_timeout
        self.stop_requested = threading.Event()
        self._held: list[socket.socket] = []
        self._workers: list[_Worker] = []
        self._metrics_dir = ""
        self.http_port = 0
        self.grpc_port = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> bool:
        """Hold the ports, start every worker and wait until all of them serve.

        Returns
        -------
        bool
            True once every worker serves; False when a stop was requested meanwhile (SIGTERM,
            Ctrl-C), in which case everything started has been stopped again.

        Raises
        ------
        InvalidArgument
            A port cannot be bound.
        FailedPrecondition
            A worker exited or did not become ready in time (all workers are stopped; the
            worker's own error is on the shared stderr above).
        """
        host = self.settings.host
        http = reserve_port(host, self.settings.http_port, "http_port")
        self._held.append(http)
        try:
            grpc = reserve_port(host, self.settings.grpc_port, "grpc_port")
        except InvalidArgument:
            self.stop()
            raise
        self._held.append(grpc)
        self.http_port, self.grpc_port = http.getsockname()[1], grpc.getsockname()[1]
        self._metrics_dir = tempfile.mkdtemp(prefix="fairshelf-metrics-")
        self._env = self._worker_env()
        try:
            for slot in range(self.settings.workers):
                self._workers.append(self._spawn(slot))
            for worker in self._workers:
                if not self._await_ready(worker):
                    self.stop()
                    return False
        except BaseException:
            self.stop()
            raise
        log.info(
            "workers_started",
            workers=len(self._workers),
            pids=[w.proc.pid for w in self._workers],
            http_port=self.http_port,
            grpc_port=self.grpc_port,
        )
        return True

    def run(self, poll: float = 0.5) -> None:
        """Restart workers that die, until :attr:`stop_requested` is set; then stop all."""
        try:
            while not self.stop_requested.wait(poll):
                self.check_workers()
        finally:
            self.stop()

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every worker, wait up to ``grace`` seconds, then kill what is left."""
        self.stop_requested.set()
        for worker in self._workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in self._workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker_killed", slot=worker.slot, pid=worker.proc.pid)
                worker.proc.kill()
                worker.proc.wait()
            self._close_ready(worker)
        self._workers.clear()
        for sock in self._held:
            sock.close()
        self._held.clear()
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            self._metrics_dir = ""

    # -- workers --------------------------------------------------------------------------

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FAIRSHELF_REUSE_PORT"] = "true"
        env[METRICS_DIR_ENV] = self._metrics_dir
        if self.settings.pseudonym_key is None:
            # Still a per-start key (the workers warn about it), but one for all of them.
            env["FAIRSHELF_PSEUDONYM_KEY"] = secrets.token_urlsafe(32)
        return env

    def _spawn(self, slot: int, failures: int = 0) -> _Worker:
        read_fd, write_fd = os.pipe()
        env = {**self._env, READY_FD_ENV: str(write_fd)}
        if self.settings.pin_workers:
            env[WORKER_CPU_ENV] = str(worker_cpu(slot))
        args = [
            sys.executable,
            "-m",
            "fairshelf.cli.main",
            "serve",
            *self.worker_args,
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--workers",
            "1",
        ]
        try:
            proc = subprocess.Popen(args, env=env, pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        log.info("worker_spawned", slot=slot, pid=proc.pid)
        return _Worker(slot, proc, time.monotonic(), read_fd, failures)

    def _await_ready(self, worker: _Worker) -> bool:
        assert worker.ready_fd is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.stop_requested.is_set():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise FailedPrecondition(
                    f"worker {worker.slot} not ready within {self.ready_timeout} s"
                )
            readable, _, _ = select.select([worker.ready_fd], [], [], min(left, 0.5))
            if readable:
                if os.read(worker.ready_fd, 64).startswith(b"ready"):
                    self._close_ready(worker)
                    return True
                # End of file without the word: the worker is gone (Ctrl-C reaches the
                # workers too, so that is a stop, not a failure, once a stop was asked for).
                code = worker.proc.wait()
                if self.stop_requested.is_set():
                    return False
                raise FailedPrecondition(
                    f"worker {worker.slot} exited with code {code} before serving (its error "
                    "is above)"
                )

    @staticmethod
    def _close_ready(worker: _Worker) -> None:
        if worker.ready_fd is not None:
            os.close(worker.ready_fd)
            worker.ready_fd = None

    def check_workers(self) -> None:
        """Restart any worker that exited (with a growing delay when it keeps crashing)."""
        now = time.monotonic()
        for i, worker in enumerate(self._workers):
            if worker.ready_fd is not None:
                readable, _, _ = select.select([worker.ready_fd], [], [], 0)
                if readable:
                    # The word, or end of file from a worker that died first (handled below).
                    ready = os.read(worker.ready_fd, 64).startswith(b"ready")
                    self._close_ready(worker)
                    if ready:
                        log.info("worker_ready", slot=worker.slot, pid=worker.proc.pid)
            code = worker.proc.poll()
            if code is None or self.stop_requested.is_set():
                continue
            if worker.restart_at is None:
                self._close_ready(worker)
                multiprocess.mark_process_dead(worker.proc.pid, self._metrics_dir)
                failures = worker.failures + 1 if now - worker.started < _STABLE_SECONDS else 0
                delay = min(_MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                worker.failures, worker.restart_at = failures, now + delay
                log.error(
                    "worker_exited",
                    slot=worker.slot,
                    pid=worker.proc.pid,
                    code=code,
                    restart_in=delay,
                )
            if now >= worker.restart_at:
                self._workers[i] = self._spawn(worker.slot, worker.failures)
