"""Overhead of `Router.complete` over a direct httpx call to the same loopback server.

Each round fires `CONCURRENCY` calls at once on one event loop against the fake
OpenAI-compatible provider of `tests/fakes`, run in its own process. Three clients: a direct call
through one pooled `httpx.AsyncClient` (the naive baseline), a direct call through the router's
sharded pool (`router.dispatch.pool.ClientPool`, the same transport the router uses:
the fair baseline),
and `Router.complete`. Per-call latency is measured from the call to the response (non-stream) or to
the end of the stream; the router's calls include decide (embedded catalog, N≈3,200, cached
derivation), live state, body mutation, dispatch, usage pricing and the record's dispatch part.

Run: python -m pytest benchmarks/test_dispatch_overhead.py --benchmark-only -s
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from router.config import RouterConfig
from router.dispatch.pool import ClientPool
from router.facade import Router

CONCURRENCY = 100
ROUNDS = 20
KEY = "sk-bench"
POLICY: list[Any] = [
    "policy", ["ev_zero"],
    ["filter", ["in", "provider", ["openai"]], [">=", "context_window", 100000],
     ["has", "capabilities", "tools"]],
    ["rank", ["asc", "est_cost"]], ["select", ["first"], ["cascade", 2]],
    ["mutate", ["clamp_max_tokens"]], ["fallback", ["retry", 1, 50]],
]
REQUEST: dict[str, Any] = {"model": "router", "max_tokens": 200, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Summarise: " + "lorem ipsum dolor sit amet " * 40}]}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fake_server", KEY],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    base_url = proc.stdout.readline().strip()
    try:
        yield base_url
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


async def _rounds(call: Callable[[], Awaitable[None]]) -> tuple[list[float], float]:
    """Per-call latencies (ms) over the timed rounds, and the rounds' wall time (s)."""
    latencies: list[float] = []

    async def timed() -> None:
        t0 = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - t0) * 1000.0)

    for _ in range(2):  # warm the pool and the derivation
        await asyncio.gather(*(timed() for _ in range(CONCURRENCY)))
    latencies.clear()
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        await asyncio.gather(*(timed() for _ in range(CONCURRENCY)))
    return latencies, time.perf_counter() - t0


def measure(base_url: str, stream: bool) -> dict[str, float]:
    url = base_url + "/v1/chat/completions"
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url + "/v1"}
    router = Router(config=RouterConfig(environ=env))
    router.decider(POLICY)  # derive once, outside the timing
    body = {**REQUEST, "model": "gpt-4o-mini", "stream": stream}
    req = {**REQUEST, "stream": stream}

    async def main() -> tuple[tuple[list[float], float], ...]:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        sharded = ClientPool(1000)
        async with httpx.AsyncClient(limits=limits) as single:
            headers = {"authorization": f"Bearer {KEY}"}

            async def call(client: httpx.AsyncClient) -> None:
                if stream:
                    async with client.stream("POST", url, json=body, headers=headers) as r:
                        async for line in r.aiter_lines():
                            if line.startswith("data: {"):
                                json.loads(line[6:])
                else:
                    r = await client.post(url, json=body, headers=headers)
                    r.json()

            async def direct_single() -> None:
                await call(single)

            async def direct() -> None:
                await call(sharded.client())

            async def routed() -> None:
                if stream:
                    async for _ in await router.stream(POLICY, req):
                        pass
                else:
                    await router.complete(POLICY, req)

            s1 = await _rounds(direct_single)
            d = await _rounds(direct)
            r = await _rounds(routed)
            await router.aclose()
            await sharded.aclose()
            return s1, d, r

    (single_ms, _), (direct_ms, direct_s), (routed_ms, routed_s) = asyncio.run(main())
    router.close()
    calls = CONCURRENCY * ROUNDS
    out = {
        "direct_wall_per_call_ms": direct_s / calls * 1000,
        "router_wall_per_call_ms": routed_s / calls * 1000,
        "added_wall_per_call_ms": (routed_s - direct_s) / calls * 1000,
        "single_client_p50_ms": percentile(single_ms, 0.5),
        "single_client_p99_ms": percentile(single_ms, 0.99),
        "direct_p50_ms": percentile(direct_ms, 0.5), "direct_p99_ms": percentile(direct_ms, 0.99),
        "router_p50_ms": percentile(routed_ms, 0.5), "router_p99_ms": percentile(routed_ms, 0.99),
    }
    out["added_p50_ms"] = out["router_p50_ms"] - out["direct_p50_ms"]
    out["added_p99_ms"] = out["router_p99_ms"] - out["direct_p99_ms"]
    return out


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_complete_overhead(benchmark, provider: str,  # type: ignore[no-untyped-def]
                           stream: bool) -> None:
    result = benchmark.pedantic(measure, args=(provider, stream), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 3) for k, v in result.items()})
    benchmark.extra_info["calls"] = CONCURRENCY * ROUNDS
    print(f"\n{'stream' if stream else 'non-stream'} at {CONCURRENCY} concurrent: "
          + ", ".join(f"{k}={v:.3f}" for k, v in result.items()))
    assert result["router_p50_ms"] > 0 and result["direct_p50_ms"] > 0
