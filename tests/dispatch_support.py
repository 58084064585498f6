"""Shared pieces for dispatcher tests: a small catalog pointed at loopback fakes, an injected
clock whose `sleep` advances it, and a router factory."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from router.catalog.offerings import Catalog, build_catalog
from router.config import RouterConfig
from router.facade import Router
from router.live.health import BreakerSettings

OPENAI_KEY = "sk-test-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-test-abcdefghij"
T0 = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)


def offering(oid: str, provider: str, model: str, input_price: float, output_price: float,
             max_out: int = 4096, **extra: Any) -> dict[str, Any]:
    return {"id": oid, "model": model, "provider": provider, "region": "global",
            "context_window": 128000, "max_output_tokens": max_out,
            "input_price": input_price, "output_price": output_price,
            "capabilities": ["streaming", "tools"], **extra}


def catalog() -> Catalog:
    return build_catalog({"schema": 1, "source": "dispatch tests", "offerings": [
        offering("openai/cheap", "openai", "cheap", 0.1, 0.4, 1000, api_model="cheap-2026",
                 cached_input_price=0.05),
        offering("openai/mid", "openai", "mid", 1.0, 4.0, 2000),
        offering("anthropic/claude", "anthropic", "claude", 2.0, 8.0, 8000,
                 api_model="claude-x-20260101"),
        offering("mistral/nokey", "mistral", "nokey", 0.01, 0.01),
        offering("bedrock/noadapter", "bedrock", "noadapter", 0.02, 0.02),
    ]})


class Clock:
    """Injected time: `sleep` records the wait and advances the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = T0
        self.waits: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.advance(seconds)


def environ(openai_url: str, anthropic_url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": openai_url + "/v1",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": anthropic_url}


def make_router(env: Mapping[str, str], clock: Clock, seed: int = 7,
                breaker: BreakerSettings | None = None) -> Router:
    ids = iter(f"trace-{i}" for i in range(1_000_000))
    config = RouterConfig(clock=clock, trace_ids=lambda: next(ids), environ=env,
                          sleep=clock.sleep, rng=random.Random(seed),
                          breaker=breaker or BreakerSettings())
    return Router(catalog(), config=config)


def policy(*, cascade: int = 2, fallback: list[Any] | None = None,
           mutate: list[Any] | None = None, filters: list[Any] | None = None) -> list[Any]:
    p: list[Any] = ["policy", ["ev_zero"],
                    ["filter", *(filters or [[">=", "context_window", 1000]])],
                    ["rank", ["asc", "input_price"]],
                    ["select", ["first"], ["cascade", cascade]]]
    p.append(["mutate", *(mutate or [])])
    p.append(["fallback", *(fallback or [])])
    return p


def request(**extra: Any) -> dict[str, Any]:
    return {"model": "router", "messages": [{"role": "user", "content": "hello there"}], **extra}
