"""Decision records on the README example (support-ticket policy, embedded catalog):
`decide`, the request path's cost of recording, the writer's cost and stored size per
decision, write throughput with 1 and 8 writers, replay speed over 10,000 stored decisions.

Run: python -m pytest benchmarks/test_records.py --benchmark-only -s
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from router.decide.decider import Decider
from router.live.state import LiveState
from router.policy.admit import admit
from router.records import Pending, Query, Replayer, SqliteStore
from router.records.row import Snapshots, build_row
from router.records.store import ChainWriter
from router.records.writer import RecordWriter
from router.request.features import features_of

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def readme() -> tuple[Decider, Any]:
    from router.catalog.offerings import default_catalog
    from router.engine.derive import derive

    policy = admit(json.loads((EXAMPLES / "support-tickets.policy.json").read_text()))
    request = json.loads((EXAMPLES / "support-ticket.request.json").read_text())
    return Decider(derive(policy, default_catalog())), features_of(request)


def _percentiles(benchmark: Any, samples: list[int]) -> None:
    samples.sort()
    benchmark.extra_info["p50_us"] = round(samples[len(samples) // 2] / 1000, 2)
    benchmark.extra_info["p99_us"] = round(samples[int(len(samples) * 0.99)] / 1000, 2)
    print(f"\n{benchmark.name}: p50 {benchmark.extra_info['p50_us']} us, "
          f"p99 {benchmark.extra_info['p99_us']} us")


def test_decide_readme_example(benchmark: Any, readme: tuple[Decider, Any]) -> None:
    decider, features = readme
    live = LiveState.not_consulted()
    decision = benchmark(decider.decide, features, live, AT)
    assert decision.selected is not None
    samples = []
    for _ in range(3000):
        t0 = time.perf_counter_ns()
        decider.decide(features, live, AT)
        samples.append(time.perf_counter_ns() - t0)
    _percentiles(benchmark, samples)


def test_recording_on_the_request_path(benchmark: Any, readme: tuple[Decider, Any],
                                       tmp_path: Path) -> None:
    """What `route`/`complete` pay to record: queueing the decision for the writer."""
    decider, features = readme
    decision = decider.decide(features, LiveState.not_consulted(), AT)
    writer = RecordWriter(SqliteStore(tmp_path / "r.sqlite3"))
    n = iter(range(10**9))
    benchmark(lambda: writer.submit(Pending(decision, f"t{next(n)}", "cfg")))
    samples = []
    for _ in range(3000):
        p = Pending(decision, f"t{next(n)}", "cfg")
        t0 = time.perf_counter_ns()
        writer.submit(p)
        samples.append(time.perf_counter_ns() - t0)
    writer.close()
    _percentiles(benchmark, samples)


def test_writer_cost_and_size_per_decision(benchmark: Any, readme: tuple[Decider, Any],
                                           tmp_path: Path) -> None:
    """The background writer's work per decision (row built, batch of 256 committed), and
    the stored bytes per decision once the shared objects are in the store."""
    decider, features = readme
    store = SqliteStore(tmp_path / "r.sqlite3")
    snapshots = Snapshots()
    w = ChainWriter("bench")
    n = iter(range(10**9))
    store.write([build_row(Pending(decider.decide(features, LiveState.not_consulted(), AT),
                                   "warm", "cfg"), snapshots)], w)

    def batch() -> None:
        rows = [build_row(Pending(decider.decide(features, LiveState.not_consulted(), AT),
                                  f"t{next(n)}", "cfg"), snapshots) for _ in range(256)]
        store.write(rows, w)

    benchmark.pedantic(batch, rounds=10, iterations=1)
    conn = sqlite3.connect(tmp_path / "r.sqlite3")
    count, body = conn.execute("SELECT COUNT(*), SUM(length(body)) FROM records "
                               "WHERE trace_id != 'warm'").fetchone()
    raw = conn.execute("SELECT body FROM records LIMIT 1").fetchone()[0]
    conn.close()
    import zlib
    benchmark.extra_info["per_decision_us_incl_decide"] = round(
        benchmark.stats.stats.median / 256 * 1e6, 1)
    benchmark.extra_info["stored_bytes_per_decision"] = round(body / count)
    benchmark.extra_info["row_json_bytes"] = len(zlib.decompress(raw))
    print(f"\nper decision: {benchmark.extra_info}")
    assert body / count <= 4096
    store.close()


@pytest.mark.parametrize("writers", [1, 8])
def test_write_throughput(benchmark: Any, readme: tuple[Decider, Any], tmp_path: Path,
                          writers: int) -> None:
    """Records/s into one SQLite file from `writers` routers (threads) at once."""
    decider, features = readme
    decision = decider.decide(features, LiveState.not_consulted(), AT)
    per = 4000 // writers
    rounds = iter(range(10**6))

    def burst() -> None:
        r = next(rounds)
        path = tmp_path / f"r{r}.sqlite3"
        ws = [RecordWriter(SqliteStore(path)) for _ in range(writers)]

        def run(i: int) -> None:
            for j in range(per):
                ws[i].submit(Pending(decision, f"{i}-{j}", "cfg"))
            ws[i].flush()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in ws:
            w.close()

    benchmark.pedantic(burst, rounds=3, iterations=1)
    benchmark.extra_info["records_per_s"] = round(per * writers / benchmark.stats.stats.median)
    print(f"\n{writers} writer(s): {benchmark.extra_info['records_per_s']} records/s")


def _store_10000(decider: Decider, features: Any, path: Path) -> None:
    """10,000 README decisions (input tokens varied) recorded in `path`."""
    writer = RecordWriter(SqliteStore(path))
    for i in range(10_000):
        f = features.model_copy(update={"input_tokens": features.input_tokens + i % 500})
        writer.submit(Pending(decider.decide(f, LiveState.not_consulted(), AT), f"t{i}", "c"))
    writer.close()


def test_replay_10000(benchmark: Any, readme: tuple[Decider, Any], tmp_path: Path) -> None:
    decider, features = readme
    path = tmp_path / "r.sqlite3"
    _store_10000(decider, features, path)
    store = SqliteStore(path)

    def replay_all() -> int:
        replayer = Replayer(store)
        same = 0
        for stored in store.iterate(Query()):
            same += replayer.replay(stored).status == "same"
        return same

    same = benchmark.pedantic(replay_all, rounds=1, iterations=1)
    assert same == 10_000
    benchmark.extra_info["records_per_s"] = round(10_000 / benchmark.stats.stats.median)
    print(f"\nreplay: {benchmark.extra_info['records_per_s']} records/s (one derivation "
          "from the stored snapshot included)")


def test_diff_10000_with_a_changed_price(benchmark: Any, readme: tuple[Decider, Any],
                                         tmp_path: Path) -> None:
    """`diff --catalog` over 10,000 stored decisions, the README winner's price raised."""
    from router.catalog.offerings import build_catalog, default_catalog
    from router.records.whatif import WhatIf

    decider, features = readme
    path = tmp_path / "r.sqlite3"
    _store_10000(decider, features, path)
    winner = decider.decide(features, LiveState.not_consulted(), AT).selected
    doc = default_catalog().to_json()
    doc["offerings"] = [{**o, "output_price": 9.0} if o["id"] == winner else o
                        for o in doc["offerings"]]
    dearer = build_catalog(doc)
    store = SqliteStore(path)

    def run() -> Any:
        return WhatIf(Replayer(store), catalog=dearer).run(store.iterate(Query()))

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    assert report.decisions == 10_000 and len(report.moved) == 10_000
    benchmark.extra_info["records_per_s"] = round(10_000 / benchmark.stats.stats.median)
    print(f"\ndiff: {benchmark.extra_info['records_per_s']} records/s, all 10,000 moved "
          f"({report.moved[0].why}); one derivation of the new catalog included")


def test_objects_a_waiting_decision_holds(benchmark: Any) -> None:
    """What a decision waiting in the writer's queue costs the garbage collector: the tracked
    objects it keeps alive (every young collection walks them), before and after the writer
    settles its full ranking — counted, not timed (the collector's own count of net
    allocations, with collection off). The policy is the service benchmark's (est_cost over
    76 OpenAI candidates, embedded catalog); `decide` itself is timed as the benchmark."""
    import gc

    from benchmarks.test_dispatch_overhead import POLICY, REQUEST
    from router.config import RouterConfig
    from router.facade import Router, as_features

    router = Router(config=RouterConfig(environ={"OPENAI_API_KEY": "sk-bench"}))
    decider = router.decider(POLICY)
    features = as_features(REQUEST)
    live = router.live()
    n = 200
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        held = [decider.decide(features, live, AT) for _ in range(n)]
        waiting = (gc.get_count()[0] - before) / n
        for decision in held:
            _ = decision.ranked_pairs  # settled, as the writer's row needs
        settled = (gc.get_count()[0] - before) / n
    finally:
        gc.enable()
    assert all(d.selected is not None and len(d.ranked_pairs) == 76 for d in held)
    benchmark.extra_info["tracked_objects_per_waiting_decision"] = round(waiting, 1)
    benchmark.extra_info["tracked_objects_per_settled_decision"] = round(settled, 1)
    benchmark(decider.decide, features, live, AT)
    print(f"\nobjects a waiting decision holds: {benchmark.extra_info}")
    router.close()
