"""Prometheus metrics of the HTTP service (`GET /metrics`), one `Metrics` per app.

Series (all prefixed `unhardcoded_`):

  requests_total{route,status}      requests answered, by route template and HTTP status
  request_seconds{route}            end-to-end time of a request (histogram)
  decisions_total{policy,winner}    decisions; `winner` is `none` when nothing was admissible
  decide_seconds{policy}            time `decide` took (histogram)
  rejections_total{policy,pointer}  per decision, the offerings each clause pointer rejected
  hops_total{provider,outcome}      dispatch attempts, by the offering's provider and outcome
  failovers_total{policy}           dispatches that went past their first offering
  cost_usd_total{policy,provider}   priced cost of served requests (the served offering's)
  circuit_open{offering}            1 while an offering's breaker is open or half-open, else 0
  record_writes_total, record_write_errors_total, records_dropped_total
                                    the records writer's counters (absent with recording off)

`policy` is a policy name, `inline` or `model:NAME` (never an inline policy's text); `route` is
a fixed route template, never a raw path. Offering ids, providers and clause pointers come from
the catalog and the policies, which the operator controls. Still, every labelled metric keeps
at most `max_series` label sets: later ones are counted under `other` (logged once), so no
caller can grow a scrape without bound.

Rejections are the derivation's, the offerings a clause rejects whatever the request
(`Derivation.rejected`): counted once per derivation and added per decision with a few
increments. Per-request (late) rejections — live status such as a missing key or an open
circuit, clauses on the request — are finished lazily by the decision and are in the records,
not here.

Scrape-time values (circuits, records counters) are read from the router given to
`observe_router` when `/metrics` is scraped.

Several worker processes (`unhardcoded serve --workers N`): give each worker's `Metrics` the
same `multiprocess_dir` (the serve command sets `PROMETHEUS_MULTIPROC_DIR` to a fresh
directory before the workers start). Every value is then kept in that directory, one file per
process and type, and any worker's `/metrics` shows the sum over the workers (prometheus_client
multiprocess mode). prometheus_client picks how values are stored when it is imported: if it
was imported before the variable was set, `Metrics` switches it to the shared files before
making any metric. Each worker also writes its scrape-time values there, every
`publish_interval_s` and on each scrape; the circuit gauge is `livemax` (1 if any live worker
has the circuit open). The supervisor should call
`prometheus_client.multiprocess.mark_process_dead(pid)` when a worker exits, so its live gauges
go. One multiprocess `Metrics` per process (two would write the same keys of the same files).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from router.catalog.offerings import Catalog
from router.common.problems import Problem, RefusedError
from router.decide.decider import Decision
from router.dispatch.dispatcher import Outcome
from router.engine.derive import Derivation
from router.facade import Router
from router.live.health import HealthTracker
from router.records.writer import RecordWriter

log = logging.getLogger("unhardcoded.service")

PREFIX = "unhardcoded_"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MAX_SERIES = 4096  # label sets per metric; later ones are counted under `other`
MAX_DERIVATIONS = 256  # derivations whose rejection counts are kept
OTHER = "other"
NONE = "none"
UNKNOWN = "unknown"

# End to end: a provider call takes from tens of milliseconds to minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)
# Decide: tens of microseconds, up to a derivation's wait on a cold policy.
DECIDE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
                  1.0, 10.0)

M = TypeVar("M", bound=MetricWrapperBase)
Steps = tuple[tuple[Counter, int], ...]


class MetricsError(RefusedError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("metrics", problems)


class _Series(Generic[M]):
    """The children of one labelled metric by label values, at most `limit` label sets; the
    rest are counted under `other` in every label."""

    def __init__(self, name: str, metric: M, limit: int) -> None:
        self.name = name
        self.metric = metric
        self.limit = limit
        self._children: dict[tuple[str, ...], M] = {}
        self._lock = threading.Lock()
        self._other: M | None = None

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        return child if child is not None else self._add(labels)

    def _add(self, labels: tuple[str, ...]) -> M:
        with self._lock:
            child = self._children.get(labels)
            if child is not None:
                return child
            if len(self._children) < self.limit:
                child = self._children[labels] = self.metric.labels(*labels)
                return child
            if self._other is None:
                log.warning("metrics: %s has %d label sets; more are counted under `%s`",
                            self.name, self.limit, OTHER)
                self._other = self.metric.labels(*(OTHER,) * len(labels))
            return self._other


class Metrics:
    """The service's metrics, in a registry of their own (several apps, or tests, in one
    process do not collide). The recording methods are called on the request path and cost a
    few microseconds; `render` answers a scrape."""

    def __init__(self, multiprocess_dir: str | None = None, *, max_series: int = MAX_SERIES,
                 publish_interval_s: float = 1.0) -> None:
        self.multiprocess_dir = _multiprocess(multiprocess_dir) if multiprocess_dir else None
        self.publish_interval_s = publish_interval_s
        self.registry = CollectorRegistry()  # what `render` renders
        shared = self.multiprocess_dir is not None
        into = None if shared else self.registry  # multiprocess: the files are rendered

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> _Series[Counter]:
            return _Series(name, Counter(PREFIX + name, doc, labels, registry=into), max_series)

        def histogram(name: str, doc: str, labels: tuple[str, ...],
                      buckets: tuple[float, ...]) -> _Series[Histogram]:
            return _Series(name, Histogram(PREFIX + name, doc, labels, registry=into,
                                           buckets=buckets), max_series)

        self._requests = counter("requests", "Requests answered, by route template and HTTP "
                                 "status.", ("route", "status"))
        self._request_seconds = histogram("request_seconds", "End-to-end time of a request.",
                                          ("route",), REQUEST_BUCKETS)
        self._decisions = counter("decisions", "Decisions, by policy and winner (`none`: "
                                  "nothing admissible).", ("policy", "winner"))
        self._decide_seconds = histogram("decide_seconds", "Time decide took.", ("policy",),
                                         DECIDE_BUCKETS)
        self._rejections = counter("rejections", "Per decision, the offerings each clause "
                                   "rejected whatever the request (the derivation's).",
                                   ("policy", "pointer"))
        self._hops = counter("hops", "Dispatch attempts, by provider and outcome.",
                             ("provider", "outcome"))
        self._failovers = counter("failovers", "Dispatches that went past their first "
                                  "offering.", ("policy",))
        self._cost = counter("cost_usd", "Priced cost of served requests, in USD.",
                             ("policy", "provider"))
        self._circuit: _Series[Gauge] | None = None
        self._records: tuple[Counter, Counter, Counter] | None = None
        if shared:
            gauge = Gauge(PREFIX + "circuit_open", CIRCUIT_DOC, ("offering",), registry=None,
                          multiprocess_mode="livemax")
            self._circuit = _Series("circuit_open", gauge, max_series)
            MultiProcessCollector(self.registry,  # type: ignore[no-untyped-call]
                                  path=self.multiprocess_dir)
        else:
            self.registry.register(_Scraped(self))
        self._steps: dict[tuple[int, str], tuple[weakref.ref[Derivation], Steps]] = {}
        self._steps_lock = threading.Lock()
        self._router: Router | None = None
        self._seen_circuits: set[str] = set()
        self._circuits_lock = threading.Lock()
        self._published: tuple[int, int, int] = (0, 0, 0)
        self._published_for: weakref.ref[RecordWriter] | None = None
        self._publish_lock = threading.Lock()
        self._stop = threading.Event()
        self._publisher: threading.Thread | None = None

    # -- the request path ---------------------------------------------------------------------

    def request(self, route: str, status: int, seconds: float) -> None:
        """One answered request: `route` is the route's template (`/v1/chat/completions`)."""
        self._requests(route, str(status)).inc()
        self._request_seconds(route).observe(seconds)

    def decided(self, policy: str, decision: Decision, seconds: float) -> None:
        """One decision under `policy` (a name, `inline` or `model:NAME`) and how long it took."""
        self._decisions(policy, decision.selected or NONE).inc()
        self._decide_seconds(policy).observe(seconds)
        for counter, n in self._rejection_steps(policy, decision.derivation):
            counter.inc(n)

    def dispatched(self, policy: str, outcome: Outcome, catalog: Catalog | None = None) -> None:
        """One finished dispatch (for a stream: once the stream has ended). Providers are
        looked up in `catalog` (the decision's, `decision.derivation.catalog`), else in the
        observed router's catalog in force; an offering neither knows is `unknown`."""
        attempts = outcome.attempts
        if not attempts:
            return
        if catalog is None and self._router is not None:
            catalog = self._router.catalog
        for a in attempts:
            self._hops(_provider(catalog, a.offering), a.outcome).inc()
        served = outcome.served_by
        if (served is not None and attempts[-1].hop > 0) or (
                len(attempts) > 1
                and len({a.offering for a in attempts if a.outcome != "skipped"}) > 1):
            self._failovers(policy).inc()
        cost = outcome.cost
        if served is not None and cost is not None and cost.usd is not None and cost.usd >= 0:
            self._cost(policy, _provider(catalog, served)).inc(cost.usd)

    def _rejection_steps(self, policy: str, derivation: Derivation) -> Steps:
        """The rejection counters of one (derivation, policy) and what each adds per decision,
        counted once: keyed by the derivation's identity (checked through a weak reference,
        so an id reused by a later derivation is not mistaken for it)."""
        key = (id(derivation), policy)
        found = self._steps.get(key)
        if found is not None and found[0]() is derivation:
            return found[1]
        tally = Tally(p for pointers in derivation.rejected.values() for p in pointers)
        steps = tuple((self._rejections(policy, p), n) for p, n in sorted(tally.items()))
        with self._steps_lock:
            self._steps.pop(key, None)
            self._steps[key] = (weakref.ref(derivation), steps)
            while len(self._steps) > MAX_DERIVATIONS:
                del self._steps[next(iter(self._steps))]
        return steps

    # -- scrape-time values -------------------------------------------------------------------

    def observe_router(self, router: Router) -> None:
        """Read this router's circuits and records counters when scraped. In multiprocess mode,
        also write them to the shared files every `publish_interval_s` (a daemon thread; stop
        it with `close`)."""
        self._router = router
        if self.multiprocess_dir is not None and self._publisher is None:
            self._publisher = threading.Thread(
                target=_publish_every, args=(weakref.ref(self), self._stop,
                                             self.publish_interval_s),
                name="unhardcoded-metrics", daemon=True)
            self._publisher.start()

    def circuits(self) -> list[tuple[str, float]]:
        """(offering, 1.0 if its circuit is open or half-open else 0.0), for every offering
        whose circuit was ever seen not closed."""
        router = self._router
        if router is None:
            return []
        now_open = not_closed(router.health)
        with self._circuits_lock:
            self._seen_circuits.update(now_open)
            seen = sorted(self._seen_circuits)
        return [(oid, 1.0 if oid in now_open else 0.0) for oid in seen]

    def publish(self) -> None:
        """Multiprocess mode: write this process's scrape-time values to the shared files."""
        if self._circuit is None:
            return
        with self._publish_lock:
            for oid, value in self.circuits():
                self._circuit(oid).set(value)
            writer = self._router.records if self._router is not None else None
            if writer is None:
                return
            if self._published_for is None or self._published_for() is not writer:
                self._published_for, self._published = weakref.ref(writer), (0, 0, 0)
            if self._records is None:
                self._records = (Counter(PREFIX + "record_writes", WRITES_DOC, registry=None),
                                 Counter(PREFIX + "record_write_errors", ERRORS_DOC,
                                         registry=None),
                                 Counter(PREFIX + "records_dropped", DROPPED_DOC,
                                         registry=None))
            now = (writer.written, writer.errors, writer.dropped)
            for counter, before, after in zip(self._records, self._published, now, strict=True):
                if after > before:
                    counter.inc(after - before)
            self._published = now

    def render(self) -> tuple[bytes, str]:
        """The body and Content-Type of a `GET /metrics` answer."""
        if self.multiprocess_dir is not None:
            self.publish()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """Stop the multiprocess publisher thread, publishing once more."""
        self._stop.set()
        if self._publisher is not None:
            self._publisher.join(timeout=5)
            self.publish()


CIRCUIT_DOC = "1 while the offering's circuit breaker is open or half-open, else 0."
WRITES_DOC = "Decisions the records writer stored."
ERRORS_DOC = "Decisions the records writer could not store."
DROPPED_DOC = "Decisions dropped because the records queue was full."


class _Scraped:
    """The scrape-time values of a single process, read from the observed router."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = weakref.ref(metrics)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics()
        if metrics is None or metrics._router is None:
            return
        circuit = GaugeMetricFamily(PREFIX + "circuit_open", CIRCUIT_DOC, labels=("offering",))
        for oid, value in metrics.circuits():
            circuit.add_metric((oid,), value)
        yield circuit
        writer = metrics._router.records
        if writer is not None:
            yield CounterMetricFamily(PREFIX + "record_writes", WRITES_DOC, writer.written)
            yield CounterMetricFamily(PREFIX + "record_write_errors", ERRORS_DOC, writer.errors)
            yield CounterMetricFamily(PREFIX + "records_dropped", DROPPED_DOC, writer.dropped)


def not_closed(health: HealthTracker) -> set[str]:
    """The offerings whose circuit is open or half-open (opened, and not yet closed by a
    successful call). `HealthTracker` has no public view of this: `values` reports only a
    circuit still cooling down, so its state is read here, under its lock."""
    with health._lock:
        return {oid for oid, h in health._health.items() if h.open_until is not None}


def _provider(catalog: Catalog | None, offering_id: str) -> str:
    offering = catalog.get(offering_id) if catalog is not None else None
    return offering.provider if offering is not None else UNKNOWN


def _publish_every(ref: weakref.ref[Metrics], stop: threading.Event, interval_s: float) -> None:
    while not stop.wait(interval_s):
        metrics = ref()
        if metrics is None:
            return
        try:
            metrics.publish()
        except Exception as exc:  # a failed publish must not end the thread
            log.warning("metrics: publishing failed: %s: %s", type(exc).__name__, exc)
        del metrics


def _multiprocess(directory: str) -> str:
    """Check the shared directory and make prometheus_client keep values in it.

    prometheus_client chooses its value class when `prometheus_client.values` is imported
    (`ValueClass`: in-process, or mmapped files if `PROMETHEUS_MULTIPROC_DIR` is set), and a
    file's directory is read from the variable when a process makes its first metric of a
    type. So the variable must name this directory, and the value class must be the shared one
    before any metric is made."""
    path = Path(directory)
    if not path.is_dir():
        raise MetricsError([Problem(
            code="metrics.multiprocess_dir", pointer="multiprocess_dir",
            message=f"`{directory}` is not a directory",
            hint="create it (empty) before the workers start")])
    current = os.environ.get(MULTIPROC_VARIABLE)
    if current and Path(current).resolve() != path.resolve():
        raise MetricsError([Problem(
            code="metrics.multiprocess_dir", pointer="multiprocess_dir",
            message=f"{MULTIPROC_VARIABLE} is `{current}`, not `{directory}`",
            hint=f"give the same directory, or unset {MULTIPROC_VARIABLE}")])
    os.environ[MULTIPROC_VARIABLE] = directory
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return directory
