"""Catalog change → new version serving, for 10 registered policies at N = 2000.

`Router.reload()` re-reads and validates the file, derives all 10 registered policies for the
new version on the derivation worker, then swaps. While it runs, a thread keeps deciding; its
latencies show that decisions do not wait on the derivation (they run on the old version).

Run: python -m pytest benchmarks/test_refresh.py --benchmark-only -s
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from benchmarks.workload import REQUEST, catalog, policy
from router.config import RouterConfig
from router.facade import Router

N = 2000
POLICIES = [policy(k, rank) for k in (1, 3, 5, 7, 9, 11, 13, 15)
            for rank in ("est_cost",)] + [policy(15, "output_price"), policy(5, "output_price")]


def test_reload_to_serving(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "catalog.json"
    doc = catalog(N).to_json()
    path.write_text(json.dumps(doc))
    router = Router(path, config=RouterConfig(environ={}))
    registered = [router.register(p) for p in POLICIES]
    for p in registered:
        router.derivation(p)
    flip = [0]
    latencies: list[float] = []
    stop = threading.Event()

    def decide() -> None:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            router.route(registered[i % len(registered)], REQUEST)
            latencies.append((time.perf_counter() - t0) * 1000)
            i += 1
            time.sleep(0.001)

    def change_and_reload() -> float:
        flip[0] += 1
        doc["offerings"][0]["input_price"] = 0.001 * flip[0]
        path.write_text(json.dumps(doc))
        t0 = time.perf_counter()
        report = router.reload()
        assert report.changed and report.policies_derived == len(POLICIES)
        return time.perf_counter() - t0

    worker = threading.Thread(target=decide)
    worker.start()
    try:
        seconds = benchmark.pedantic(change_and_reload, rounds=3, iterations=1)
    finally:
        stop.set()
        worker.join()
    router.close()
    latencies.sort()
    benchmark.extra_info.update({
        "policies": len(POLICIES), "offerings": N, "last_reload_s": round(seconds, 3),
        "decisions_during": len(latencies),
        "decide_p50_ms": round(latencies[len(latencies) // 2], 3),
        "decide_p99_ms": round(latencies[int(len(latencies) * 0.99)], 3),
        "decide_max_ms": round(latencies[-1], 3),
    })
    print("\n", benchmark.extra_info)
