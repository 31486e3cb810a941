"""``fairshelf serve``: gRPC and HTTP over the current model bundle, in one or more processes."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from serving.settings import Settings


def _single_threaded_math() -> None:
    # Each request is one small query: OpenMP / BLAS thread teams only add spin-waiting (CPU
    # burnt per request) and latency spikes. The setting must be in the environment before
    # the libraries load, because omp_set_num_threads only affects the calling thread and
    # requests run on the transports' own threads.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def serve(
    bundles: Annotated[
        Path | None, typer.Option("--bundles", help="bundles directory (serves its 'current')")
    ] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="HTTP port")] = None,
    grpc_port: Annotated[int | None, typer.Option("--grpc-port", help="gRPC port")] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="sqlite:///file.db or postgresql+psycopg://...")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML, JSON or YAML settings file")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="interface to bind")] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="json or console")] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="serving processes sharing the ports (one per core)"),
    ] = None,
) -> None:
    """Serve recommendations, prices and events over gRPC and HTTP until interrupted.

    Settings come from the flags, then FAIRSHELF_* environment variables, then --config.
    """
    _single_threaded_math()
    from serving.cpu_affinity import pin_from_env
    from serving.logging import configure_logging
    from serving.settings import load_settings
    from serving.workers import READY_FD_ENV, signal_ready

    settings = load_settings(
        config,
        bundles_dir=bundles,
        http_port=http_port,
        grpc_port=grpc_port,
        db_url=db,
        host=host,
        log_format=log_format,
        workers=workers,
    )
    configure_logging(settings.log_format, settings.log_level)
    # Before any server thread starts, so that every one of them inherits the core.
    pin_from_env()
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    if settings.workers > 1:
        _supervise(settings, stop, bundles=bundles, db=db, config=config, log_format=log_format)
        return
    from serving.app import FairshelfServer

    server = FairshelfServer(settings)
    server.start()
    if os.environ.get(READY_FD_ENV):
        signal_ready()  # a supervised worker: the supervisor reports the server started
    else:
        _announce(settings.host, server.http_port, server.grpc_port)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()


def _announce(host: str, http_port: int, grpc_port: int) -> None:
    # Scripts (the demo, the benchmarks) wait for this line to learn the bound ports.
    typer.echo(f"fairshelf serving: http://{host}:{http_port} grpc {host}:{grpc_port}", err=True)


def _supervise(
    settings: Settings,
    stop: threading.Event,
    *,
    bundles: Path | None,
    db: str | None,
    config: Path | None,
    log_format: str | None,
) -> None:
    from serving.workers import Supervisor

    # The workers read the same environment and config file; the flags are passed on.
    args: list[str] = ["--host", settings.host]
    for flag, value in (
        ("--bundles", bundles),
        ("--db", db),
        ("--config", config),
        ("--log-format", log_format),
    ):
        if value is not None:
            args += [flag, str(value)]
    supervisor = Supervisor(settings, args)
    supervisor.stop_requested = stop
    if not supervisor.start():
        return  # stopped while the workers were starting
    _announce(settings.host, supervisor.http_port, supervisor.grpc_port)
    supervisor.run()


def export_events(
    db: Annotated[str, typer.Option("--db", help="database URL of the server's event log")],
    out: Annotated[Path, typer.Option("--out", help="events file to write (.parquet or .csv)")],
    since: Annotated[
        str | None, typer.Option("--since", help="only events after this RFC 3339 time")
    ] = None,
) -> None:
    """Write the logged events as a canonical events file for `fairshelf train --events`."""
    from datetime import UTC, datetime

    from fairshelf.errors import InvalidArgument
    from serving.store.db import Database
    from serving.store.events_store import EventsStore

    lower = None
    if since:
        try:
            lower = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidArgument(f"--since is not an RFC 3339 time: {since!r}") from None
        lower = lower.replace(tzinfo=UTC) if lower.tzinfo is None else lower
    database = Database(db)
    try:
        frame = EventsStore(database).read_canonical(since=lower)
    finally:
        database.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    typer.echo(f"wrote {len(frame):,} events to {out}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``export-events`` to ``app``."""
    app.command("serve")(serve)
    app.command("export-events")(export_events)
