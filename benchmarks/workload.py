"""Synthetic but realistic workloads: N offerings, policies of K filter clauses."""

from __future__ import annotations

import random
from typing import Any

from router.catalog.offerings import Catalog, build_catalog

REGIONS = ["global", "us", "eu", "apac"]
CAPS = ["tools", "vision", "json_schema", "reasoning", "streaming", "pdf_input"]
TAGS = ["approved", "zdr", "hipaa", "beta"]

CLAUSES: list[Any] = [
    [">=", "context_window", 32000],
    ["<=", "output_price", 45.0],
    ["in", "region", ["eu", "global", "us"]],
    ["has_any", "capabilities", ["tools", "json_schema"]],
    ["<=", "input_price", 12.0],
    ["not_in", "provider", ["p7", "p8"]],
    ["has_none", "tags", ["beta"]],
    [">=", "max_output_tokens", 4096],
    ["when", ["req", "pii"], ["in", "region", ["eu"]]],
    ["any", ["has", "tags", "approved"], ["<", "input_price", 3.0]],
    ["!=", "model", "m13"],
    ["<=", "cached_input_price", 5.0],
    ["not", ["has", "tags", "hipaa"]],
    ["has_any", "capabilities", ["streaming", "vision"]],
    ["<", "output_price", 50.0],
]


def catalog(n: int, seed: int = 7) -> Catalog:
    rng = random.Random(seed)
    offerings = []
    for i in range(n):
        o: dict[str, Any] = {
            "id": f"p{i % 23}/r{i % 4}/m{i}", "model": f"m{i % 97}", "provider": f"p{i % 23}",
            "region": REGIONS[i % 4], "capabilities": sorted(rng.sample(CAPS, rng.randint(1, 5))),
            "tags": sorted(rng.sample(TAGS, rng.randint(0, 2))),
        }
        if rng.random() > 0.05:
            o["context_window"] = rng.choice([8192, 32000, 128000, 200000, 1048576])
        if rng.random() > 0.05:
            o["max_output_tokens"] = rng.choice([4096, 8192, 16384, 64000])
        if rng.random() > 0.08:
            o["input_price"] = round(rng.uniform(0.05, 15), 3)
            o["output_price"] = round(rng.uniform(0.2, 60), 3)
        if rng.random() > 0.5:
            o["cached_input_price"] = round(rng.uniform(0.01, 2), 3)
        offerings.append(o)
    return build_catalog({"schema": 1, "source": f"synthetic n={n}", "offerings": offerings})


def policy(k: int, rank: str = "est_cost") -> list[Any]:
    return ["policy", ["ev_zero"], ["filter", *CLAUSES[:k]], ["rank", ["asc", rank]],
            ["select", ["first"], ["cascade", 2]], ["mutate", ["clamp_max_tokens"]],
            ["fallback"]]


REQUEST = {"messages": [{"role": "user", "content": "x" * 4000}], "max_tokens": 512}
