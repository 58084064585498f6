"""Pooled HTTP clients for one event loop.

By default one `LeanClient` over an `Http1Transport` (router/dispatch/http1.py): its pool takes
and returns a connection in constant time, whatever is queued. With `trust_env=True` (proxies
from `HTTP(S)_PROXY`), httpx's own transport, sharded as below.

httpcore's connection pool does work per queued request that grows with the number of queued
requests and pooled connections (encode/httpcore#1035): at 100 concurrent calls to one host a
single `httpx.AsyncClient` spent ~15 ms per call in pool bookkeeping on our 2-core box. Spreading
calls round-robin over a few clients keeps every pool's queue short (0.11 s instead of 1.5 s for
a burst of 100; see benchmarks/README.md). Connections are still pooled and kept alive.
"""

from __future__ import annotations

import itertools

import httpx

from router.dispatch.http1 import Http1Transport, LeanClient

DEFAULT_SHARDS = 16


class ClientPool:
    def __init__(self, max_connections: int, shards: int = DEFAULT_SHARDS,
                 trust_env: bool = False) -> None:
        tls = httpx.create_ssl_context()  # loading CA certificates once costs ~17 ms
        self.clients: list[httpx.AsyncClient]
        if not trust_env:
            transport = Http1Transport(ssl_context=tls, max_connections=max_connections)
            self.clients = [LeanClient(transport)]
        else:
            shards = max(1, min(shards, max_connections))
            per = max(1, max_connections // shards)
            limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
            self.clients = [httpx.AsyncClient(limits=limits, follow_redirects=False,
                                              trust_env=True, verify=tls)
                            for _ in range(shards)]
        self._next = itertools.cycle(self.clients)

    def client(self) -> httpx.AsyncClient:
        return next(self._next)

    @property
    def is_closed(self) -> bool:
        return any(c.is_closed for c in self.clients)

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()
