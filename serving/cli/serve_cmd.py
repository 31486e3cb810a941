"""``fairshelf serve``: gRPC and HTTP over the current model bundle, in one process."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer


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
) -> None:
    """Serve recommendations, prices and events over gRPC and HTTP until interrupted.

    Settings come from the flags, then FAIRSHELF_* environment variables, then --config.
    """
    _single_threaded_math()
    from serving.app import FairshelfServer
    from serving.logging import configure_logging
    from serving.settings import load_settings

    settings = load_settings(
        config,
        bundles_dir=bundles,
        http_port=http_port,
        grpc_port=grpc_port,
        db_url=db,
        host=host,
        log_format=log_format,
    )
    configure_logging(settings.log_format, settings.log_level)
    server = FairshelfServer(settings)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    typer.echo(
        f"fairshelf serving: http://{settings.host}:{server.http_port} "
        f"grpc {settings.host}:{server.grpc_port}",
        err=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
