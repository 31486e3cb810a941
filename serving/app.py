"""One process, both transports: the wiring of stores, model watcher, service, gRPC and HTTP.

:class:`FairshelfServer` builds everything from a :class:`~serving.settings.Settings`, loads
the current bundle (a missing or broken one leaves the server up but not ready), and runs the
gRPC server and uvicorn (in a thread) on the configured ports. Tests, the demo, the benchmark
and ``fairshelf serve`` all start the server through this class.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import uvicorn

from fairshelf.errors import PortInUse
from serving.experiment_reports import ExperimentReports
from serving.exposure_log import ExposureLog
from serving.grpc_server import GrpcServer
from serving.http_app import build_http_app
from serving.http_hot import HotRoutes
from serving.logging import configure_logging, get_logger
from serving.metrics import Metrics
from serving.pricing_wiring import PricingParts, build_pricing
from serving.reload import BundleWatcher, LoadedModel, ModelHolder
from serving.service import FairshelfService
from serving.settings import Settings
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.events_store import EventsStore
from serving.store.exposures_store import ExposuresStore
from serving.store.optouts_store import OptOutsStore

log = get_logger("fairshelf.server")


class _NotifyingHolder(ModelHolder):
    """A model holder that tells the gRPC health service about each swap."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Any] = []

    def swap(self, model: LoadedModel) -> None:
        super().swap(model)
        for listener in self.listeners:
            try:
                listener(model)
            except Exception as exc:  # a listener must not undo or block the swap
                log.error("swap_listener_failed", bundle=model.bundle_id, error=repr(exc))


def _bind_http(settings: Settings) -> socket.socket:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only for such a
    # socket, and without it a response written in two parts waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((settings.host, settings.http_port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PortInUse(
                f"cannot listen for HTTP on {settings.host}:{settings.http_port} "
                f"({exc.strerror}); choose another with --http-port or FAIRSHELF_HTTP_PORT",
                field="http_port",
            ) from None
        raise
    return sock


def _warn_if_nobody_can_call(settings: Settings) -> None:
    if settings.auth_enabled and not settings.api_keys:
        log.warning(
            "no_api_keys",
            message=(
                "no API key is configured, so every call will be refused with 401 "
                'UNAUTHENTICATED; set keys with FAIRSHELF_API_KEYS=\'{"<key>": "admin"}\' '
                "(roles: storefront, pricing, admin) or api_keys in --config, or run with "
                "FAIRSHELF_AUTH_ENABLED=false for local development only"
            ),
        )


class FairshelfServer:
    """Both transports over one service object.

    Parameters
    ----------
    settings:
        Ports (0 = pick free ones), database, bundles directory, keys, tuning.
    pricing:
        Pricing parts to use instead of building them from the settings (tests).
    """

    def __init__(self, settings: Settings, pricing: PricingParts | None = None) -> None:
        self.settings = settings
        configure_logging(settings.log_format, settings.log_level)
        # First, before any thread or connection exists: a taken port then leaves nothing open.
        self._sock = _bind_http(settings)
        self.metrics = Metrics()
        self.db = Database(settings.db_url)
        self.events = EventsStore(self.db)
        self.optouts = OptOutsStore(self.db)
        self.holder = _NotifyingHolder()
        self.watcher: BundleWatcher | None = None
        if settings.bundles_dir is not None:
            self.watcher = BundleWatcher(
                settings.bundles_dir,
                self.holder,
                settings.recsys,
                self.metrics,
                interval=settings.reload_interval_seconds,
            )
        self.pricing = pricing if pricing is not None else build_pricing(settings, self.db)
        self.exposures: ExposureLog | None = None
        if settings.exposure_logging:
            self.exposures = ExposureLog(
                ExposuresStore(self.db),
                self.metrics.exposures_dropped_total,
                self.metrics.exposures_written_total,
                capacity=settings.exposure_buffer,
                batch=settings.exposure_batch,
            )
        experiment = settings.recsys.experiment
        reports = ExperimentReports(self.db, {experiment.name: experiment.split})
        window = timedelta(hours=settings.attribution_window_hours)
        self.service = FairshelfService(
            settings,
            self.holder,
            self.events,
            self.optouts,
            self.metrics,
            guardrails=self.pricing,
            audit_report=self.pricing.audit_report if self.pricing else None,
            # One chain per database: the pricing side's log when pricing is on.
            audit=self.pricing.audit if self.pricing is not None else AuditStore(self.db),
            receipts=self.pricing.receipt if self.pricing is not None else None,
            exposures=self.exposures,
            experiment_report=lambda name, lo, hi: reports.readout(
                name, lo, hi, window=window
            ).to_dict(),
            promotions=self.pricing,
        )
        # Summarise each bundle's shopper history in the watcher thread, not on a quote.
        self.holder.listeners.append(self.service.shopper_facts.on_model)
        if self.pricing is not None:
            # The guard is built when the first bundle arrives (it prices that catalogue)
            # and re-priced on every later swap.
            self.pricing.listeners.append(self._set_quotes)
            self.holder.listeners.append(self.pricing.on_model)
        try:
            self.grpc = GrpcServer(
                self.service,
                settings.host,
                settings.grpc_port,
                settings.grpc_max_workers,
                settings.grpc_max_concurrent_rpcs,
                reuse_port=settings.reuse_port,
                max_connection_age=settings.grpc_max_connection_age_seconds,
                max_connection_age_grace=settings.grpc_max_connection_age_grace_seconds,
            )
        except PortInUse:
            self._sock.close()
            self._close_parts()
            raise
        self.holder.listeners.append(lambda _m: self.grpc.update_health())
        self.app = HotRoutes(build_http_app(self.service, self.metrics), self.service)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                # Named, not "auto": the pure-Python fallbacks cost several times the CPU.
                http="httptools",
                loop="uvloop",
                timeout_graceful_shutdown=2,
            )
        )
        self._http_thread: threading.Thread | None = None

    def _set_quotes(self, quotes: Any) -> None:
        self.service.quotes = quotes

    @property
    def http_port(self) -> int:
        """The bound HTTP port."""
        return int(self._sock.getsockname()[1])

    @property
    def grpc_port(self) -> int:
        """The bound gRPC port."""
        return self.grpc.port

    def start(self, wait_ready: float = 10.0) -> None:
        """Load the current bundle, start the watcher, gRPC and HTTP; return once HTTP listens.

        Parameters
        ----------
        wait_ready:
            Seconds to wait for uvicorn to start accepting connections.
        """
        _warn_if_nobody_can_call(self.settings)
        if self.watcher is not None:
            outcome = self.watcher.check_once()
            if outcome != "loaded":
                log.warning("no_bundle_at_start", outcome=outcome)
            self.watcher.start()
        if self.pricing is not None:
            self.pricing.start()
        if self.exposures is not None:
            self.exposures.start()
        self.grpc.start()
        self._http_thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._sock]},
            name="fairshelf-http",
            daemon=True,
        )
        self._http_thread.start()
        deadline = time.monotonic() + wait_ready
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._http_thread.is_alive():
                raise RuntimeError("HTTP server did not start")
            time.sleep(0.01)
        log.info(
            "server_started",
            host=self.settings.host,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            bundle=self.holder.current.bundle_id if self.holder.current else None,
        )

    def stop(self) -> None:
        """Stop both transports and the watcher, then close the database."""
        if self.watcher is not None:
            self.watcher.stop()
        self._uvicorn.should_exit = True
        if self._http_thread is not None:
            self._http_thread.join(timeout=10)
        self.grpc.stop()
        self._sock.close()
        self._close_parts()
        log.info("server_stopped")

    def _close_parts(self) -> None:
        # The exposure writer flushes into the database, so it stops before the database.
        if self.exposures is not None:
            self.exposures.stop()
        if self.pricing is not None:
            self.pricing.close()
        self.db.close()

    def __enter__(self) -> FairshelfServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C / SIGTERM handled by the caller)."""
        while self._http_thread is not None and self._http_thread.is_alive():
            time.sleep(0.5)
