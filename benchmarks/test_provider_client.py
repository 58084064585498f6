"""The provider call's HTTP client: CPU per call, httpx's default client against the router's
`LeanClient` over `Http1Transport` (router/dispatch/http1.py).

The fake OpenAI-compatible provider runs in its own process (`benchmarks.service_load
provider`), so the client process's CPU time is the client's alone. Each variant sends 2,000
sequential POSTs of the service benchmark's request (≈1,100 characters) after 200 warm-up
calls, reads and parses each JSON answer, and reports CPU and wall time per call; the variants
are interleaved over three rounds.

Run: python -m pytest benchmarks/test_provider_client.py --benchmark-only -s
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from benchmarks.service_load import KEY, Provider, provider_process
from benchmarks.test_dispatch_overhead import REQUEST
from router.dispatch.http1 import Http1Transport, LeanClient, new_request

CALLS = 2000
WARM = 200
ROUNDS = 3
BODY = json.dumps({**REQUEST, "model": "gpt-5-nano"}).encode()
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _calls(client: httpx.AsyncClient, url: str, n: int) -> None:
    for _ in range(n):
        request = new_request(client, "POST", url, BODY, HEADERS, 10.0)
        response = await client.send(request, stream=True)
        data = await response.aread()
        await response.aclose()
        assert response.status_code == 200, data[:200]
        json.loads(data)


def _measure(make: Callable[[], httpx.AsyncClient], url: str) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        async with make() as client:
            await _calls(client, url, WARM)
            c0, t0 = _cpu_s(), time.perf_counter()
            await _calls(client, url, CALLS)
            return (_cpu_s() - c0) / CALLS * 1e3, (time.perf_counter() - t0) / CALLS * 1e3
    return asyncio.run(run())


VARIANTS: dict[str, Callable[[], httpx.AsyncClient]] = {
    "httpx AsyncClient (default transport)": lambda: httpx.AsyncClient(follow_redirects=False),
    "LeanClient + Http1Transport": lambda: LeanClient(
        Http1Transport(ssl_context=ssl.create_default_context())),
}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with provider_process() as p:
        yield p


def test_provider_client_cpu_per_call(benchmark: Any, provider: Provider) -> None:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}

    def rounds() -> None:
        for _ in range(ROUNDS):
            for name, make in VARIANTS.items():
                results[name].append(_measure(make, provider.chat_url))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    print("\n| client | CPU ms / call (median, range) | wall ms / call (median) |")
    print("|---|---|---|")
    for name, got in results.items():
        cpu = sorted(c for c, _ in got)
        wall = sorted(w for _, w in got)
        median = cpu[len(cpu) // 2]
        benchmark.extra_info[f"{name} cpu_ms"] = round(median, 3)
        print(f"| {name} | {median:.2f} ({cpu[0]:.2f}–{cpu[-1]:.2f}) | "
              f"{wall[len(wall) // 2]:.2f} |")
