"""The service (`unhardcoded serve`) against calling the provider directly, under wrk (issue 9).

Three processes and wrk, each on its own: the fake OpenAI-compatible provider, the service
(embedded catalog, 3,189 offerings; the dispatch-overhead benchmark's policy, whose winner is
an OpenAI offering served by the fake; recording ON into a SQLite file) and wrk. "Direct" is
the same wrk load sent to the fake itself. Each cell waits (bounded) for the rest of the
machine to be quiet, runs wrk 1 s to warm up, then `SECONDS` measured; added latency is
service minus direct at the same concurrency, same load generator. Percentiles are per
request: wrk's coordinated-omission correction is undone (see `benchmarks/service_load.py`);
wrk's own corrected p50/p99 are kept in `extra_info`. CPU per request is the service's CPU
time (all its threads and child processes) divided by the requests it answered.

* `test_service_vs_direct`: non-stream and stream (SSE: the latency is to the end of the
  stream) at 1, 50 and 200 concurrent connections. At 1 connection, where a few ms of someone
  else's job move the result most, three interleaved (direct, service) rounds; the row is the
  round with the median added p50 and a note lists every round.
* `test_server_choice`: uvicorn's HTTP implementations (h11, httptools; each with the head
  bound `serve` adds, `router.service.protocol`) × event loops (asyncio, uvloop), and
  granian, at 50 connections, non-stream, recording on; all started at once, measured in
  interleaved rounds. `serve` runs httptools + uvloop (both dependencies). Configurations
  whose packages are missing are left out (noted): granian is not a dependency
  (`pip install granian`).
* `test_recording_cost`: recording on against `--no-record`, 1 and 50 connections,
  non-stream.

Targets (issue 9): ≤ 1 ms added p50 at 1 connection; ≥ 900 requests/s through one service
process with recording on. Tables are printed when the module ends.

Run: python -m pytest benchmarks/test_service.py --benchmark-only -s
(wrk: `apt-get install -y wrk`; without it every cell is skipped.)
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from benchmarks.service_load import (
    KEY,
    WRK,
    Load,
    Provider,
    Quiet,
    check_reply,
    importable,
    measure,
    provider_process,
    serve_command,
    service_env,
    service_process,
    settings_json,
    stored_records,
    uvicorn_command,
)
from benchmarks.test_dispatch_overhead import POLICY, REQUEST
from router.service.settings import ENVIRONMENT
from tests.service_support import Served, free_port

SECONDS = 4.0
WARM_S = 1.0
CONCURRENCY = (1, 50, 200)
ROUNDS_AT_ONE = 3  # (direct, service) rounds at one connection, the most noise-sensitive cell
AUTH = f"Bearer {KEY}"
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    WRK is None, reason="wrk is not installed (`apt-get install -y wrk`): it is this "
                        "benchmark's load generator")


@dataclass
class Report:
    """Rows of the tables printed when the module ends."""

    tables: dict[str, tuple[list[str], list[list[str]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, table: str, columns: list[str], values: list[str]) -> None:
        self.tables.setdefault(table, (columns, []))[1].append(values)

    def render(self) -> str:
        out = []
        for title, (columns, rows) in self.tables.items():
            out += ["", f"### {title}", "", "| " + " | ".join(columns) + " |",
                    "|" + "---|" * len(columns)]
            out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join([*out, "", *self.notes])


@dataclass
class Bench:
    """What every cell shares: the files (named policy, request bodies), the fake provider's
    process, the quiet-machine waiter and the report."""

    root: Path
    provider: Provider
    quiet: Quiet
    report: Report

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    def body(self, to: str, stream: bool) -> Path:
        return self.root / f"{to}-{'stream' if stream else 'json'}.json"

    def load(self, served: Served, connections: int, stream: bool,
             seconds: float = SECONDS) -> Load:
        return measure(served.url + "/v1/chat/completions", self.body("service", stream),
                       connections, seconds, WARM_S,
                       {"provider": self.provider.pid, "service": served.proc.pid},
                       quiet=self.quiet)

    def direct(self, connections: int, stream: bool) -> Load:
        return measure(self.provider.chat_url, self.body("direct", stream), connections,
                       SECONDS, WARM_S, {"provider": self.provider.pid}, AUTH, self.quiet)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return service_env(self.provider, extra)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory,
          pytestconfig: pytest.Config) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("service-bench")
    (root / "policies").mkdir()
    (root / "policies" / "bench.json").write_text(json.dumps(POLICY))
    with provider_process() as provider:
        b = Bench(root, provider, Quiet(budget_s=60.0), Report())
        b.report.notes.append(f"This box's speed at the start: {box_speed_s():.3f} s for "
                              f"`box_speed_s` (a fixed pure-Python loop; less is faster).")
        for stream in (False, True):
            b.body("service", stream).write_text(
                json.dumps({**REQUEST, "model": "policy:bench", "stream": stream}))
            b.body("direct", stream).write_text(
                json.dumps({**REQUEST, "model": "gpt-5-nano", "stream": stream}))
        yield b
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(b.report.render())


def box_speed_s() -> float:
    """Seconds for a fixed pure-Python loop (3 million multiply-adds, best of 3): how fast
    this box runs Python today, to compare tables measured on different days (this shared
    box's speed has moved ~2× between sessions)."""
    def loop() -> int:
        x = 0
        for i in range(3_000_000):
            x += i * i
        return x

    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - t0)
    return best


def server_name(env: dict[str, str]) -> str:
    """What uvicorn's "auto" resolves to in a process started with `env`."""
    http = "httptools" if importable("httptools", env) else "h11"
    loop = "uvloop" if importable("uvloop", env) else "asyncio"
    return f"uvicorn {http} + {loop}"


@pytest.fixture(scope="module")
def service(bench: Bench) -> Iterator[Served]:
    """`unhardcoded serve`, embedded catalog, recording on (SQLite)."""
    env = bench.env()
    port = free_port()
    records = bench.root / "recorded.sqlite3"
    with service_process(bench.root / "serve", env,
                         serve_command(port, bench.policies, records), port) as s:
        bench.report.notes.append(f"`serve` ran on {server_name(env)}.")
        yield s
        t0 = time.perf_counter()
    bench.report.notes.append(
        f"Records stored by the recording service: {stored_records(records):,} (its stop, "
        f"which writes every queued record, took {time.perf_counter() - t0:.1f} s).")


def fmt(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"


def pair(a: float, b: float) -> str:
    return f"{fmt(a)} / {fmt(b)}"


def cores(load: Load) -> str:
    return " / ".join(f"{load.cores(who):.2f}" if who in load.cpu_s else "–"
                      for who in ("service", "provider", "wrk", "others"))


def load_info(prefix: str, load: Load) -> dict[str, float]:
    info = {f"{prefix}_rps": round(load.rps, 1), f"{prefix}_p50_ms": load.p50_ms,
            f"{prefix}_p90_ms": load.p90_ms, f"{prefix}_p99_ms": load.p99_ms,
            f"{prefix}_max_ms": load.max_ms, f"{prefix}_requests": load.requests,
            f"{prefix}_wrk_corrected_p50_ms": load.corrected_p50_ms,
            f"{prefix}_wrk_corrected_p99_ms": load.corrected_p99_ms,
            f"{prefix}_errors": load.errors}
    info.update({f"{prefix}_{who}_cores": round(load.cores(who), 3) for who in load.cpu_s})
    if "service" in load.cpu_s:
        info[f"{prefix}_service_cpu_ms_per_request"] = round(
            load.cpu_ms_per_request("service"), 3)
    return info


def run_cell(benchmark: Any, cell: Callable[[], T], info: Callable[[T], dict[str, float]]) -> T:
    """One pytest-benchmark round around the whole cell; its numbers go to `extra_info`."""
    result: T = benchmark.pedantic(cell, rounds=1, iterations=1)
    benchmark.extra_info.update(info(result))
    return result


@pytest.mark.parametrize("connections", CONCURRENCY, ids=lambda c: f"c{c}")
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_service_vs_direct(benchmark: Any, bench: Bench, service: Served, stream: bool,
                           connections: int) -> None:
    reply = check_reply(service.url + "/v1/chat/completions", bench.body("service", stream),
                        stream)
    assert '"model":"gpt-' in reply.text, reply.text[:300]  # an OpenAI offering: the fake
    if not stream:  # (a stream's headers leave before it is known who serves it)
        assert reply.headers["x-unhardcoded-served-by"].startswith("openai/"), reply.headers
    check_reply(bench.provider.chat_url, bench.body("direct", stream), stream, AUTH)

    def cell() -> list[tuple[Load, Load]]:
        """(direct, service) pairs, interleaved; sorted by added p50."""
        pairs = [(bench.direct(connections, stream), bench.load(service, connections, stream))
                 for _ in range(ROUNDS_AT_ONE if connections == 1 else 1)]
        return sorted(pairs, key=lambda ds: ds[1].p50_ms - ds[0].p50_ms)

    def info(pairs: list[tuple[Load, Load]]) -> dict[str, float]:
        direct, served = pairs[len(pairs) // 2]
        return {**load_info("direct", direct), **load_info("service", served),
                "added_p50_ms": round(served.p50_ms - direct.p50_ms, 3),
                "added_p99_ms": round(served.p99_ms - direct.p99_ms, 3),
                "added_p50_ms_min": round(pairs[0][1].p50_ms - pairs[0][0].p50_ms, 3),
                "added_p50_ms_max": round(pairs[-1][1].p50_ms - pairs[-1][0].p50_ms, 3)}

    pairs = run_cell(benchmark, cell, info)
    assert all(d.errors == 0 and s.errors == 0 for d, s in pairs), pairs
    direct, served = pairs[len(pairs) // 2]
    if len(pairs) > 1:
        bench.report.notes.append(
            f"{'Streamed' if stream else 'Non-stream'} at 1 connection: {len(pairs)} "
            "interleaved rounds (direct, service), the row is the one with the median added "
            "p50; added p50 over the rounds: "
            + ", ".join(f"{s.p50_ms - d.p50_ms:.2f} ms (others {s.cores('others'):.2f})"
                        for d, s in pairs) + ".")
    bench.report.row(
        "Service vs direct (recording on, embedded catalog)",
        ["mode", "conns", "direct req/s", "direct p50 / p99 ms", "service req/s",
         "service p50 / p99 ms", "**added p50 / p99 ms**", "service CPU ms/req",
         "cores: service / provider / wrk / others"],
        ["stream" if stream else "non-stream", str(connections), fmt(direct.rps),
         pair(direct.p50_ms, direct.p99_ms), fmt(served.rps), pair(served.p50_ms, served.p99_ms),
         f"**{pair(served.p50_ms - direct.p50_ms, served.p99_ms - direct.p99_ms)}**",
         fmt(served.cpu_ms_per_request("service")), cores(served)])


SERVER_COLUMNS = ["server", "req/s", "p50 / p99 ms", "service CPU ms/req",
                  "cores: service / provider / wrk / others"]
SERVER_ROUNDS = 3
ROUND_S = 3.0


def server_row(name: str, load: Load) -> list[str]:
    return [name, fmt(load.rps), pair(load.p50_ms, load.p99_ms),
            fmt(load.cpu_ms_per_request("service")), cores(load)]


def median_row(name: str, loads: list[Load]) -> list[str]:
    """Medians over rounds; req/s with its range, cores of the busiest `others` round."""
    def med(values: list[float]) -> float:
        return statistics.median(values)

    rps = [x.rps for x in loads]
    return [name, f"{fmt(med(rps))} ({fmt(min(rps))}–{fmt(max(rps))})",
            pair(med([x.p50_ms for x in loads]), med([x.p99_ms for x in loads])),
            fmt(med([x.cpu_ms_per_request("service") for x in loads])),
            " / ".join(f"{med([x.cores(who) for x in loads]):.2f}"
                       for who in ("service", "provider", "wrk"))
            + f" / {max(x.cores('others') for x in loads):.2f} max"]


# A server configuration: (port, environment) -> (its name, its command), or None when its
# packages are not installed.
ServerCommand = Callable[[int, dict[str, str]], tuple[str, list[str]] | None]


# uvicorn's HTTP implementations as `serve` runs them (`router.service.protocol`: each bounds
# a request head while it arrives)
PROTOCOLS = {"h11": "router.service.protocol:BoundedH11Protocol",
             "httptools": "router.service.protocol:BoundedHttpToolsProtocol"}


def uvicorn_server(http: str, loop: str) -> ServerCommand:
    def command(port: int, env: dict[str, str]) -> tuple[str, list[str]] | None:
        if not all(importable(m, env) for m in {http, loop} - {"h11", "asyncio"}):
            return None
        return f"uvicorn {http} + {loop}", uvicorn_command(PROTOCOLS[http], loop)
    return command


def granian_server(port: int, env: dict[str, str]) -> tuple[str, list[str]] | None:
    """granian (HTTP in Rust), one worker, HTTP/1.1, on uvloop when it is there."""
    if not importable("granian", env):
        return None
    loop = "uvloop" if importable("uvloop", env) else "asyncio"
    return f"granian + {loop}", [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host",
        "127.0.0.1", "--port", str(port), "--workers", "1", "--http", "1", "--no-ws",
        "--loop", loop, "--log-level", "warning", "router.service.app:from_environment"]


SERVERS: dict[str, ServerCommand] = {
    "uvicorn h11 + asyncio": uvicorn_server("h11", "asyncio"),
    "uvicorn httptools + asyncio": uvicorn_server("httptools", "asyncio"),
    "uvicorn h11 + uvloop": uvicorn_server("h11", "uvloop"),
    "uvicorn httptools + uvloop": uvicorn_server("httptools", "uvloop"),
    "granian": granian_server,
}


@pytest.fixture(scope="module")
def servers(bench: Bench) -> Iterator[dict[str, Served]]:
    """Every server configuration whose packages are installed, all started at once (each
    with the same settings as `serve`, its own SQLite records file); missing ones are noted."""
    with contextlib.ExitStack() as stack:
        started: dict[str, Served] = {}
        for name, server in SERVERS.items():
            root = bench.root / name.replace(" ", "-")
            port = free_port()
            env = bench.env({ENVIRONMENT: settings_json(port, bench.policies,
                                                        root / "records.sqlite3")})
            found = server(port, env)
            if found is None:
                bench.report.notes.append(f"Not measured: {name} (its packages are not "
                                          "installed; granian: `pip install granian`).")
                continue
            label, command = found
            started[label] = stack.enter_context(service_process(root, env, command, port))
        yield started


def test_server_choice(benchmark: Any, bench: Bench, servers: dict[str, Served]) -> None:
    """c=50, non-stream, recording on: `SERVER_ROUNDS` rounds, the servers taking turns in
    each round, so that a slow spell of the machine does not land on one of them."""
    for served in servers.values():
        check_reply(served.url + "/v1/chat/completions", bench.body("service", False), False)

    def cell() -> dict[str, list[Load]]:
        loads: dict[str, list[Load]] = {name: [] for name in servers}
        for _ in range(SERVER_ROUNDS):
            for name, served in servers.items():
                loads[name].append(bench.load(served, 50, False, ROUND_S))
        return loads

    def info(loads: dict[str, list[Load]]) -> dict[str, float]:
        return {f"{name} {key}": value for name, runs in loads.items()
                for i, load in enumerate(runs)
                for key, value in load_info(f"round{i + 1}", load).items()}

    loads = run_cell(benchmark, cell, info)
    for name, runs in loads.items():
        assert all(x.errors == 0 for x in runs), runs
        bench.report.row(f"Server choice (c=50, non-stream, recording on; median of "
                         f"{SERVER_ROUNDS} interleaved rounds)", SERVER_COLUMNS,
                         median_row(name, runs))


@pytest.fixture(scope="module")
def unrecorded(bench: Bench) -> Iterator[Served]:
    """`unhardcoded serve --no-record`, otherwise as `service`."""
    port = free_port()
    command = serve_command(port, bench.policies, None)
    with service_process(bench.root / "serve-no-record", bench.env(), command, port) as s:
        yield s


@pytest.mark.parametrize("connections", [1, 50], ids=lambda c: f"c{c}")
def test_recording_cost(benchmark: Any, bench: Bench, service: Served, unrecorded: Served,
                        connections: int) -> None:
    """Recording on, then `--no-record`, back to back, non-stream."""
    check_reply(unrecorded.url + "/v1/chat/completions", bench.body("service", False), False)

    def cell() -> tuple[Load, Load]:
        return (bench.load(service, connections, False),
                bench.load(unrecorded, connections, False))

    recorded, bare = run_cell(benchmark, cell, lambda loads: {
        **load_info("recorded", loads[0]), **load_info("no_record", loads[1])})
    assert recorded.errors == 0 and bare.errors == 0, (recorded, bare)
    table = "Recording cost (`serve`, non-stream)"
    columns = ["recording", "conns", *SERVER_COLUMNS[1:]]
    bench.report.row(table, columns, ["on (SQLite)", str(connections),
                                      *server_row("", recorded)[1:]])
    bench.report.row(table, columns, ["`--no-record`", str(connections),
                                      *server_row("", bare)[1:]])
