"""The service's Prometheus metrics, fed by a real router (loopback providers, a real SQLite
records file) and read back by parsing `render()` with prometheus_client's own parser;
multiprocess mode with two real worker processes sharing one directory."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.config import RouterConfig
from router.dispatch.completion import Completion
from router.dispatch.dispatcher import Attempt, Outcome
from router.dispatch.usage import Cost
from router.facade import Router
from router.live.health import BreakerSettings
from router.records.location import RecordsSetting
from router.service.metrics import MULTIPROC_VARIABLE, Metrics, MetricsError
from tests.dispatch_support import T0, Clock, catalog, environ, policy, request
from tests.fakes import FakeProvider, ok, status

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ROUTE = "/v1/chat/completions"
# Three filters: `input_price` and `output_price` reject anthropic/claude (2.0 and 8.0), the
# provider list rejects bedrock/noadapter; context_window rejects nothing.
FILTERS: list[Any] = [["<=", "input_price", 1.5], ["<=", "output_price", 5],
                      ["in", "provider", ["openai", "anthropic", "mistral"]],
                      [">=", "context_window", 1000]]
NOTHING: list[Any] = [["in", "provider", ["nobody"]]]


def make_router(env: dict[str, str], clock: Clock, records: RecordsSetting = None,
                breaker: BreakerSettings | None = None) -> Router:
    ids = iter(f"trace-{i}" for i in range(1_000_000))
    config = RouterConfig(clock=clock, trace_ids=lambda: next(ids), environ=env,
                          sleep=clock.sleep, rng=random.Random(7), records=records,
                          breaker=breaker or BreakerSettings(), derive_in_processes=False)
    return Router(catalog(), config=config)


@pytest.fixture()
def offline(clock: Clock) -> Iterator[Router]:
    """A router with no provider keys and recording off (dry-run decisions only)."""
    r = make_router({}, clock)
    yield r
    r.close()


def samples(metrics: Metrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def named(found: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


def complete(router: Router, pol: list[Any]) -> Completion:
    async def go() -> Completion:
        try:
            return await router.complete(pol, request())
        finally:
            await router.aclose()

    return asyncio.run(go())


# -- requests -----------------------------------------------------------------------------------


def test_requests_are_counted_by_route_and_status_with_their_latency() -> None:
    metrics = Metrics()
    metrics.request(ROUTE, 200, 0.2)
    metrics.request(ROUTE, 200, 3.0)
    metrics.request(ROUTE, 429, 0.004)
    metrics.request("/v1/models", 200, 0.001)
    found = samples(metrics)
    assert named(found, "unhardcoded_requests_total") == {
        frozenset({("route", ROUTE), ("status", "200")}): 2.0,
        frozenset({("route", ROUTE), ("status", "429")}): 1.0,
        frozenset({("route", "/v1/models"), ("status", "200")}): 1.0}
    assert value(found, "unhardcoded_request_seconds_count", route=ROUTE) == 3.0
    assert value(found, "unhardcoded_request_seconds_sum", route=ROUTE) == 0.2 + 3.0 + 0.004
    assert value(found, "unhardcoded_request_seconds_bucket", route=ROUTE, le="0.005") == 1.0
    assert value(found, "unhardcoded_request_seconds_bucket", route=ROUTE, le="0.25") == 2.0
    assert value(found, "unhardcoded_request_seconds_bucket", route=ROUTE, le="2.5") == 2.0
    assert value(found, "unhardcoded_request_seconds_bucket", route=ROUTE, le="+Inf") == 3.0


def test_two_instances_keep_separate_registries() -> None:
    a, b = Metrics(), Metrics()
    a.request(ROUTE, 200, 0.1)
    assert value(samples(a), "unhardcoded_requests_total", route=ROUTE, status="200") == 1.0
    assert value(samples(b), "unhardcoded_requests_total", route=ROUTE, status="200") is None


def test_label_sets_past_the_limit_are_counted_under_other() -> None:
    metrics = Metrics(max_series=2)
    for route in ("/a", "/b", "/c", "/d", "/a"):
        metrics.request(route, 200, 0.01)
    found = named(samples(metrics), "unhardcoded_requests_total")
    assert found == {frozenset({("route", "/a"), ("status", "200")}): 2.0,
                     frozenset({("route", "/b"), ("status", "200")}): 1.0,
                     frozenset({("route", "other"), ("status", "other")}): 2.0}


# -- decisions and rejections -------------------------------------------------------------------


def test_decisions_and_rejections_are_what_the_derivation_says(offline: Router) -> None:
    metrics = Metrics()
    pol = policy(filters=FILTERS)
    decisions = []
    for seconds in (0.00004, 0.0003, 0.002):
        decision = offline.route(pol, request()).decision
        metrics.decided("cheap-first", decision, seconds)
        decisions.append(decision)
    nothing = offline.route(policy(filters=NOTHING), request()).decision
    metrics.decided("inline", nothing, 0.0001)

    derivation = decisions[0].derivation
    assert all(d.derivation is derivation for d in decisions)
    assert derivation.rejected == {"anthropic/claude": ("/2/1", "/2/2"),
                                   "bedrock/noadapter": ("/2/3",)}
    per_decision = Counter(p for ps in derivation.rejected.values() for p in ps)
    found = samples(metrics)
    assert named(found, "unhardcoded_rejections_total") == {
        **{frozenset({("policy", "cheap-first"), ("pointer", p)}): 3.0 * n
           for p, n in per_decision.items()},
        frozenset({("policy", "inline"), ("pointer", "/2/1")}): 5.0}
    winner = decisions[0].selected
    assert winner == "mistral/nokey"  # a dry run without live state: the cheapest
    assert named(found, "unhardcoded_decisions_total") == {
        frozenset({("policy", "cheap-first"), ("winner", winner)}): 3.0,
        frozenset({("policy", "inline"), ("winner", "none")}): 1.0}
    assert value(found, "unhardcoded_decide_seconds_count", policy="cheap-first") == 3.0
    assert value(found, "unhardcoded_decide_seconds_bucket", policy="cheap-first",
                 le="5e-05") == 1.0
    assert value(found, "unhardcoded_decide_seconds_bucket", policy="cheap-first",
                 le="0.0005") == 2.0
    assert value(found, "unhardcoded_decide_seconds_sum", policy="cheap-first") == \
        0.00004 + 0.0003 + 0.002


def test_rejections_are_counted_once_per_derivation(offline: Router) -> None:
    metrics = Metrics()
    pol = policy(filters=FILTERS)
    decision = offline.route(pol, request()).decision
    metrics.decided("p", decision, 0.0001)
    # The counts were taken from the derivation once: later decisions over the same
    # derivation add them without reading `rejected` again.
    decision.derivation.rejected["openai/mid"] = ("/2/4",)
    try:
        metrics.decided("p", offline.route(pol, request()).decision, 0.0001)
    finally:
        del decision.derivation.rejected["openai/mid"]
    found = samples(metrics)
    assert value(found, "unhardcoded_rejections_total", policy="p", pointer="/2/1") == 2.0
    assert value(found, "unhardcoded_rejections_total", policy="p", pointer="/2/4") is None
    # the same derivation under another policy label is counted under that label
    metrics.decided("model:cheap", decision, 0.0001)
    found = samples(metrics)
    assert value(found, "unhardcoded_rejections_total", policy="model:cheap",
                 pointer="/2/3") == 1.0


# -- dispatch -----------------------------------------------------------------------------------


def test_failover_hops_and_cost_of_real_requests(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    oa, an = fakes
    router = make_router(environ(oa.base_url, an.base_url), clock)
    metrics = Metrics()
    metrics.observe_router(router)
    try:
        oa.script_for("cheap-2026", status(500))
        oa.script_for("mid", status(500))
        an.script_for("claude-x-20260101", ok("bonjour", usage=(1000, 200)))
        started = time.perf_counter()
        first = complete(router, policy())
        elapsed = time.perf_counter() - started
        metrics.decided("p", first.decision, 0.0002)
        metrics.dispatched("p", first.outcome, first.decision.derivation.catalog)
        metrics.request(ROUTE, 200, elapsed)
        assert [(a.offering, a.outcome) for a in first.outcome.attempts] == [
            ("openai/cheap", "error"), ("openai/mid", "error"), ("anthropic/claude", "ok")]

        oa.script_for("cheap-2026", ok("hi", usage=(500, 100)))
        second = complete(router, policy())
        metrics.dispatched("p", second.outcome)  # providers from the observed router
        assert [(a.offering, a.outcome) for a in second.outcome.attempts] == [
            ("openai/cheap", "ok")]
    finally:
        router.close()

    found = samples(metrics)
    assert named(found, "unhardcoded_hops_total") == {
        frozenset({("provider", "openai"), ("outcome", "error")}): 2.0,
        frozenset({("provider", "anthropic"), ("outcome", "ok")}): 1.0,
        frozenset({("provider", "openai"), ("outcome", "ok")}): 1.0}
    assert value(found, "unhardcoded_failovers_total", policy="p") == 1.0
    assert first.outcome.cost is not None and first.outcome.cost.usd is not None
    assert second.outcome.cost is not None and second.outcome.cost.usd is not None
    assert first.outcome.cost.usd == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1e6)
    assert named(found, "unhardcoded_cost_usd_total") == {
        frozenset({("policy", "p"), ("provider", "anthropic")}): first.outcome.cost.usd,
        frozenset({("policy", "p"), ("provider", "openai")}): second.outcome.cost.usd}
    assert value(found, "unhardcoded_decisions_total", policy="p",
                 winner="openai/cheap") == 1.0
    assert value(found, "unhardcoded_request_seconds_sum", route=ROUTE) == elapsed


def test_failovers_count_skipped_first_hops_and_failed_cascades() -> None:
    metrics = Metrics()
    cat = catalog()

    def attempt(oid: str, hop: int, outcome: str, retry: int = 0) -> Attempt:
        return Attempt(oid, hop, retry, T0, None if outcome == "skipped" else 5.0, outcome)

    skipped = Outcome([attempt("openai/cheap", 0, "skipped"), attempt("openai/mid", 1, "ok")],
                      served_by="openai/mid", cost=Cost(None, (), "no usage"))
    retried = Outcome([attempt("openai/cheap", 0, "error"),
                       attempt("openai/cheap", 0, "ok", retry=1)], served_by="openai/cheap")
    exhausted = Outcome([attempt("openai/cheap", 0, "error"), attempt("openai/mid", 1, "timeout"),
                         attempt("gone/offering", 2, "error")])
    for o in (skipped, retried, exhausted, Outcome()):
        metrics.dispatched("p", o, cat)
    found = samples(metrics)
    assert value(found, "unhardcoded_failovers_total", policy="p") == 2.0  # not `retried`
    assert value(found, "unhardcoded_hops_total", provider="unknown", outcome="error") == 1.0
    assert value(found, "unhardcoded_hops_total", provider="openai", outcome="skipped") == 1.0
    assert named(found, "unhardcoded_cost_usd_total") == {}  # no usage: no cost


# -- scrape-time values ------------------------------------------------------------------------


def test_circuit_gauge_follows_the_breaker_open_half_open_closed(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    oa, an = fakes
    router = make_router(environ(oa.base_url, an.base_url), clock,
                         breaker=BreakerSettings(failure_threshold=1, cooldown_s=30))
    metrics = Metrics()
    assert named(samples(metrics), "unhardcoded_circuit_open") == {}  # no router yet
    metrics.observe_router(router)
    try:
        assert named(samples(metrics), "unhardcoded_circuit_open") == {}
        oa.script_for("cheap-2026", status(500))
        done = complete(router, policy())
        assert done.served_by == "openai/mid"
        assert named(samples(metrics), "unhardcoded_circuit_open") == {
            frozenset({("offering", "openai/cheap")}): 1.0}

        clock.advance(31)  # cooled down: half-open, the next call is a probe
        assert value(samples(metrics), "unhardcoded_circuit_open",
                     offering="openai/cheap") == 1.0
        probe = complete(router, policy())
        assert probe.served_by == "openai/cheap"  # the probe succeeded: closed
        assert named(samples(metrics), "unhardcoded_circuit_open") == {
            frozenset({("offering", "openai/cheap")}): 0.0}
    finally:
        router.close()


def test_record_counters_come_from_a_real_sqlite_store(offline: Router, tmp_path: Path,
                                                       clock: Clock) -> None:
    off = Metrics()
    off.observe_router(offline)
    assert offline.records is None
    found = samples(off)
    assert [n for n, _ in found if n.startswith("unhardcoded_record")] == []

    router = make_router({}, clock, records=tmp_path / "records.sqlite3")
    metrics = Metrics()
    metrics.observe_router(router)
    try:
        writer = router.records
        assert writer is not None
        for _ in range(3):
            router.route(policy(), request())
        assert writer.flush()
        found = samples(metrics)
        assert value(found, "unhardcoded_record_writes_total") == 3.0
        assert value(found, "unhardcoded_record_write_errors_total") == 0.0
        assert value(found, "unhardcoded_records_dropped_total") == 0.0

        writer.store.close()  # the store fails from now on: counted, requests go on
        router.route(policy(), request())
        router.route(policy(), request())
        assert writer.flush()
        found = samples(metrics)
        assert value(found, "unhardcoded_record_writes_total") == 3.0
        assert value(found, "unhardcoded_record_write_errors_total") == 2.0
        assert value(found, "unhardcoded_records_dropped_total") == float(writer.dropped) == 0.0
    finally:
        router.close()


# -- multiprocess ------------------------------------------------------------------------------


def _worker(directory: str, index: int, records: str, by_thread: bool, barrier: Any,
            out: Any) -> None:
    """One service worker: decides `index + 1` requests, records them, opens a circuit (worker
    0 only), then renders `/metrics` while the other worker is alive too. Its scrape-time
    values reach the shared files by its publisher thread (`by_thread`) or by `publish`."""
    metrics = Metrics(multiprocess_dir=directory,
                      publish_interval_s=0.05 if by_thread else 3600)
    router = Router(catalog(), config=RouterConfig(
        records=records, environ={}, derive_in_processes=False, clock=lambda: T0,
        breaker=BreakerSettings(failure_threshold=1)))
    metrics.observe_router(router)
    try:
        pol = policy(filters=FILTERS)
        for _ in range(index + 1):
            result = router.route(pol, request())
            metrics.decided("p", result.decision, 0.0001)
            metrics.request(ROUTE, 200, 0.25)
        if index == 0:
            router.health.record("openai/cheap", "error", 5.0)
        assert router.records is not None and router.records.flush()
        if by_thread:
            time.sleep(0.5)  # ten publishing intervals
        else:
            metrics.publish()  # what the publisher thread does every `publish_interval_s`
        barrier.wait(timeout=60)  # both have written
        body, _ = metrics.render()
        out.put((index, os.getpid(), body.decode()))
        barrier.wait(timeout=60)  # both have rendered, while both were alive
    finally:
        metrics.close()
        router.close()


@pytest.mark.parametrize(("set_before_import", "by_thread"), [(False, False), (True, True)])
def test_two_worker_processes_show_the_sum_over_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, set_before_import: bool,
        by_thread: bool) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    if set_before_import:  # the serve command's way: the workers import with it set
        monkeypatch.setenv(MULTIPROC_VARIABLE, str(shared))
    else:  # prometheus_client was imported first: `Metrics` switches it to the shared files
        monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(shared), i,
                                                 str(tmp_path / f"records-{i}.sqlite3"),
                                                 by_thread, barrier, out))
               for i in range(2)]
    for w in workers:
        w.start()
    renders = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    pids = {pid for _, pid, _ in renders}
    assert pids == {w.pid for w in workers}
    assert {p.name for p in shared.iterdir()} >= {f"counter_{pid}.db" for pid in pids}

    per_decision = {"/2/1": 1.0, "/2/2": 1.0, "/2/3": 1.0}
    for _, _, body in renders:  # whichever worker is scraped shows the sum over both
        found: Samples = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                found[(s.name, frozenset(s.labels.items()))] = s.value
        assert value(found, "unhardcoded_requests_total", route=ROUTE, status="200") == 3.0
        assert value(found, "unhardcoded_request_seconds_count", route=ROUTE) == 3.0
        assert value(found, "unhardcoded_request_seconds_sum", route=ROUTE) == 0.75
        assert value(found, "unhardcoded_decisions_total", policy="p",
                     winner="mistral/nokey") == 3.0
        assert named(found, "unhardcoded_rejections_total") == {
            frozenset({("policy", "p"), ("pointer", p)}): 3.0 * n
            for p, n in per_decision.items()}
        assert named(found, "unhardcoded_circuit_open") == {
            frozenset({("offering", "openai/cheap")}): 1.0}  # livemax: open in worker 0
        assert value(found, "unhardcoded_record_writes_total") == 3.0
        assert value(found, "unhardcoded_record_write_errors_total") == 0.0


def test_a_bad_multiprocess_directory_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MetricsError) as info:
        Metrics(multiprocess_dir=str(tmp_path / "missing"))
    problem = info.value.problems[0]
    assert problem.code == "metrics.multiprocess_dir" and "is not a directory" in problem.message

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(other))
    with pytest.raises(MetricsError) as info:
        Metrics(multiprocess_dir=str(tmp_path))
    assert f"{MULTIPROC_VARIABLE} is `{other}`" in info.value.problems[0].message
