"""The router's own event-loop thread (for synchronous callers) and its HTTP client pools, one
per event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx

from router.dispatch.pool import ClientPool

T = TypeVar("T")


class ClientPools:
    def __init__(self, max_connections: int, shards: int, trust_env: bool) -> None:
        self.max_connections = max_connections
        self.shards = shards
        self.trust_env = trust_env
        self._pools: dict[asyncio.AbstractEventLoop, ClientPool] = {}

    def client(self) -> httpx.AsyncClient:
        """A pooled client of the running loop."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool.is_closed:
            for old in [x for x in self._pools if x.is_closed()]:
                del self._pools[old]  # loops already gone (e.g. earlier `asyncio.run`s)
            pool = self._pools[loop] = ClientPool(self.max_connections, self.shards,
                                                  self.trust_env)
        return pool.client()

    async def aclose(self) -> None:
        """Close the pool of the running loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()


class LoopThread:
    """An event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="router-loop",
                                          daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def close(self, last: Coroutine[Any, Any, None] | None = None) -> None:
        """Run `last` on the loop, finish what is pending and stop it, as `asyncio.run` does:
        cancel the remaining tasks, close async generators, then close the loop."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            if last is not None:
                last.close()
            return

        async def finish() -> None:
            if last is not None:
                await last
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        loop.close()
