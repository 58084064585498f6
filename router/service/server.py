"""Run the service under uvicorn: check everything first, then serve.

Before a socket opens, the keys file, the policies directory (every policy admitted) and the
catalog with its overlays are read; anything wrong stops start-up with every problem. With no
keys file the service only listens on loopback. Each worker then derives every named policy
before it takes a request (`/readyz`).

`--workers N`: N processes share the port (uvicorn's supervisor). SIGHUP to the supervisor is
forwarded to every worker, which reloads in place, all or nothing (uvicorn's own SIGHUP would
restart the workers, losing their circuit state). Metrics are summed over the workers through
prometheus-client's multiprocess directory. SIGTERM: stop accepting, finish in-flight requests
within `graceful_s`, write every queued record, exit 0.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import tempfile

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from router.catalog.refresh import source_of
from router.common.problems import Problem, RefusedError
from router.service.keys import CallerKeys
from router.service.policies import load_named
from router.service.protocol import MAX_HEAD_BYTES
from router.service.settings import ENVIRONMENT, ServiceSettings, is_loopback

APP = "router.service.app:from_environment"


class ServeRefused(RefusedError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("serve", problems)


def preflight(settings: ServiceSettings) -> None:
    """Everything that can be checked before serving; raises with every problem found."""
    problems: list[Problem] = []
    if settings.keys is None and not is_loopback(settings.host):
        problems.append(Problem(
            code="serve.open_without_keys", pointer="--host",
            message=f"refusing to listen on `{settings.host}` without caller keys: anyone who "
                    "reaches it could spend your provider keys",
            hint="pass `--keys FILE` (`unhardcoded keys new --file FILE --id NAME`), or listen "
                 "on 127.0.0.1"))
    if not 1 <= settings.workers <= 64:
        problems.append(Problem(code="serve.workers", pointer="--workers",
                                message="`--workers` is 1-64"))
    for check in (lambda: CallerKeys.load(settings.keys) if settings.keys else None,
                  lambda: load_named(settings.policies),
                  lambda: source_of(settings.catalog, settings.overlays).load()):
        try:
            check()
        except RefusedError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ServeRefused(problems)


class ForwardingSupervisor(Multiprocess):
    """uvicorn's supervisor, except that SIGHUP reloads each worker in place, and a worker
    that died and was replaced leaves no live gauges behind in the metrics directory."""

    def keep_subprocess_alive(self) -> None:
        before = {p.pid for p in self.processes}
        super().keep_subprocess_alive()
        gone = before - {p.pid for p in self.processes}
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if gone and metrics_dir:
            from prometheus_client import multiprocess

            for pid in gone:
                if pid is not None:
                    multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]

    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def event_loop() -> str:
    """uvicorn's name for the event loop serving: uvloop where it is installed."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def http_protocol() -> str:
    """The HTTP/1.1 protocol serving (`router.service.protocol`): httptools's parser where it
    is installed, h11 elsewhere; both bound a request head while it arrives."""
    name = "BoundedHttpToolsProtocol" if importlib.util.find_spec("httptools") is not None \
        else "BoundedH11Protocol"
    return f"router.service.protocol:{name}"


def uvicorn_config(settings: ServiceSettings) -> uvicorn.Config:
    # httptools and uvloop, chosen by measurement (benchmarks/README.md, Service under load):
    # at 50 clients uvloop saved ~25 % of the CPU per request, httptools ~5 % more.
    return uvicorn.Config(
        APP, factory=True, http=http_protocol(), loop=event_loop(), host=settings.host,
        port=settings.port, workers=settings.workers,
        lifespan="on", access_log=False, server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.graceful_s)),
        limit_concurrency=settings.max_concurrency, log_level=settings.log_level,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES)


def _stopped(_sig: int, _frame: object) -> None:
    """The stop signal uvicorn re-raises after its graceful shutdown: nothing more to do."""


def serve(settings: ServiceSettings) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop, 3 when a worker could not start."""
    preflight(settings)
    os.environ[ENVIRONMENT] = settings.to_json()
    metrics_dir = None
    if settings.workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="unhardcoded-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        config = uvicorn_config(settings)
        if settings.workers > 1:
            sock = config.bind_socket()
            ForwardingSupervisor(config, sockets=[sock]).run()
            return 0
        server = uvicorn.Server(config)
        # uvicorn re-raises the signal that stopped it once it has shut down gracefully;
        # with these handlers in place that re-raise ends quietly and we exit 0.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stopped)
        server.run()
        return 0 if server.started else 3
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
