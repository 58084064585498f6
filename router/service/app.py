"""The ASGI application: one `Service` per process, a thin layer over `Router`.

Lifespan: at start-up the caller keys, the named policies and the catalog are loaded (all or
nothing) and every named policy is derived before the server takes a request; `/readyz` says
so. SIGHUP (and `--watch`) reloads keys, policies and catalog with the same all-or-nothing
guarantee; at shutdown the router is closed, which writes every queued record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from router.common.problems import RefusedError
from router.config import RouterConfig
from router.engine.worker import EngineError
from router.facade import Router
from router.records.location import Records, RecordsSetting
from router.records.store import RecordsError
from router.service import heap
from router.service.chat import ChatHandler
from router.service.errors import ServiceError
from router.service.keys import ANONYMOUS, Caller, CallerKeys
from router.service.metrics import Metrics
from router.service.policies import Chooser, PoliciesError, load_named
from router.service.reads import ReadHandler
from router.service.settings import ServiceSettings
from router.service.wire import (
    Message,
    Receive,
    Scope,
    Send,
    discard_body,
    header,
    send_json,
    send_text,
)

log = logging.getLogger("unhardcoded.service")
MAX_HEADER_BYTES = 16 * 1024
Handler = Callable[[Scope, Receive, Send, Caller], Awaitable[int]]


def records_setting(settings: ServiceSettings) -> RecordsSetting:
    if not settings.record:
        return None
    return settings.records if settings.records else Records.FROM_ENVIRONMENT


class Service:
    """Everything one service process holds. `router` may be given (tests, embedding)."""

    def __init__(self, settings: ServiceSettings, router: Router | None = None) -> None:
        self.settings = settings
        self._given_router = router
        self.router: Router | None = router
        self.keys: CallerKeys | None = None
        self.chooser = Chooser({})
        self.metrics = Metrics(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.ready = False
        self.stopping = False
        self._reload_lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self._fingerprint: tuple[Any, ...] = ()
        chat, reads = ChatHandler(self), ReadHandler(self)
        self._routes: dict[str, tuple[str, Handler]] = {
            "/v1/chat/completions": ("POST", chat.complete),
            "/v1/route": ("POST", reads.route),
            "/v1/explain": ("POST", reads.explain),
            "/v1/models": ("GET", reads.models),
            "/v1/traces": ("GET", reads.traces),
            "/v1/traces/{id}": ("GET", reads.trace),
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def startup(self) -> None:
        s = self.settings
        self.keys = CallerKeys.load(s.keys) if s.keys else None
        named = load_named(s.policies)
        if self.router is None:
            config = RouterConfig(records=records_setting(s), store_content=s.store_content)
            self.router = await asyncio.to_thread(
                lambda: Router(s.catalog, overlays=s.overlays, config=config))
        router = self.router
        router.on_decision = self._decided
        self.metrics.observe_router(router)
        for policy in named.values():
            router.register(policy)
            await router.decider_async(policy)  # derived before the first request
        self.chooser = Chooser(named, router.policies.admit)
        self._fingerprint = self._files_fingerprint()
        if threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        if s.watch_s:
            self._watch = asyncio.ensure_future(self._watch_files(s.watch_s))
        heap.settle()
        self.ready = True
        log.info("ready: %d named policies derived over catalog %s", len(named),
                 router.catalog.version[:12])

    async def shutdown(self) -> None:
        self.ready = False
        self.stopping = True
        if self._watch is not None:
            self._watch.cancel()
        router = self.router
        if router is not None and self._given_router is None:
            await router.aclose()
            await asyncio.to_thread(router.close)  # writes every queued record
        self.metrics.close()  # the last counts, to the multiprocess files

    async def reload(self) -> bool:
        """Reload keys, named policies and the catalog; anything refused changes nothing."""
        router = self.router
        if router is None:
            return False
        async with self._reload_lock:
            s = self.settings
            try:
                keys = CallerKeys.load(s.keys) if s.keys else None
                named = await asyncio.to_thread(load_named, s.policies)
                for policy in named.values():
                    router.register(policy)
                    await router.decider_async(policy)
            except (RefusedError, PoliciesError, EngineError) as exc:
                log.error("reload refused, the previous keys and policies stay: %s", exc)
                return False
            self.keys, self.chooser = keys, Chooser(named, router.policies.admit)
            report = await asyncio.to_thread(router.reload)
            heap.settle()
            self._fingerprint = self._files_fingerprint()
            if report.refused:
                log.error("catalog reload refused, the previous catalog stays: %s",
                          "; ".join(report.problems))
                return False
            log.info("reloaded: %d named policies, catalog %s", len(named),
                     router.catalog.version[:12])
            return True

    def _files_fingerprint(self) -> tuple[Any, ...]:
        s = self.settings
        paths: list[Path] = [Path(p) for p in (s.keys, s.catalog, *s.overlays) if p]
        if s.policies:
            with contextlib.suppress(OSError):
                paths += sorted(Path(s.policies).glob("*.json"))
        marks: list[Any] = []
        for p in paths:
            try:
                st = p.stat()
                marks.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                marks.append((str(p), None))
        return tuple(marks)

    async def _watch_files(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self._files_fingerprint() != self._fingerprint:
                await self.reload()

    def _decided(self, decision: Any, seconds: float, policy_name: str | None) -> None:
        self.metrics.decided(policy_name or "inline", decision, seconds)

    # -- requests -----------------------------------------------------------------------------

    def caller(self, scope: Scope) -> Caller:
        if self.keys is None:
            return ANONYMOUS
        found = self.keys.authenticate(header(scope, b"authorization"))
        if found is None:
            raise ServiceError(401, "invalid_api_key",
                               "a valid key is required: `Authorization: Bearer <key>` with a "
                               "key from the service's keys file", None)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except (RefusedError, PoliciesError, EngineError, RecordsError) as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        route, status = path, 500
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        body_read = False

        async def receiving() -> Message:
            nonlocal body_read
            message = await receive()
            body_read = body_read or message["type"] == "http.disconnect" or (
                message["type"] == "http.request" and not message.get("more_body", False))
            return message

        try:
            if path == "/healthz":
                route, status = path, 200
                await send_json(send, 200, {"status": "ok"})
                return
            if path == "/readyz":
                route, status = path, self._ready_status()
                await send_json(send, status, self._ready_body())
                return
            if path == "/metrics":
                route, status = path, 200
                body, content_type = self.metrics.render()
                await send_text(send, 200, body, content_type)
                return
            if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                raise ServiceError(431, "headers_too_large",
                                   f"the request headers are over {MAX_HEADER_BYTES} bytes", None)
            route, handler = self._route(method, path)
            if not self.ready:
                raise ServiceError(503, "not_ready", "the service is starting or stopping", None)
            status = await handler(scope, receiving, tracked, self.caller(scope))
        except ServiceError as exc:
            status = exc.status
            if not started:
                if not body_read and exc.status != 408:  # refused before its body was read
                    await discard_body(receiving)  # (431, 404, 413, …; not a body too slow)
                await send_json(send, exc.status, exc.body())
        except Exception:  # a bug: logged with its traceback, answered in OpenAI's shape
            log.exception("unexpected error serving %s %s", method, route)
            if started:
                raise
            await send_json(send, 500, ServiceError(500, "internal_error", "an internal error; "
                                                    "the service's log has the details").body())
        finally:
            self.metrics.request(route, status, time.perf_counter() - t0)

    def _route(self, method: str, path: str) -> tuple[str, Handler]:
        key = path.rstrip("/") or "/"
        if key.startswith("/v1/traces/"):
            key = "/v1/traces/{id}"
        if key not in self._routes:
            raise ServiceError(404, "not_found", f"no route `{path[:200]}`", None)
        want, handler = self._routes[key]
        if method != want:
            raise ServiceError(405, "method_not_allowed", f"`{key}` takes {want}", None)
        return key, handler

    def _ready_status(self) -> int:
        return 200 if self.ready and not self.stopping else 503

    def _ready_body(self) -> dict[str, Any]:
        router = self.router
        return {"status": "ready" if self._ready_status() == 200 else "not_ready",
                "policies": sorted(self.chooser.named),
                "catalog_version": router.catalog.version if router else None}


def from_environment() -> Service:
    """The app factory uvicorn calls in each worker (`--factory`)."""
    settings = ServiceSettings.from_environment()
    heap.own_process()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per provider call
    return Service(settings)
