"""The service (`unhardcoded serve`) against calling the provider directly, under wrk (issue 9).

Three processes and wrk, each on its own: the fake OpenAI-compatible provider, the service
(embedded catalog, 3,189 offerings; the dispatch-overhead benchmark's policy, whose winner is
an OpenAI offering served by the fake; recording ON into a SQLite file) and wrk. "Direct" is
the same wrk load sent to the fake itself. Each cell: a 1 s warm-up run, then a measured run of
`SECONDS`; added latency is service minus direct at the same concurrency, same load generator.
Percentiles are per request: wrk's coordinated-omission correction is undone (see
`benchmarks/service_load.py`); wrk's own corrected p50/p99 are kept in `extra_info`.

* `test_service_vs_direct`: non-stream and stream (SSE: the latency is to the end of the
  stream) at 1, 50 and 200 concurrent connections.
* `test_server_choice`: uvicorn's HTTP implementations (h11, httptools) × event loops
  (asyncio, uvloop) at 50 connections, non-stream. Cells whose package is missing are skipped;
  `pip install httptools uvloop` to run them (then `serve`, which leaves both to "auto", uses
  them too).
* `test_granian`: one data point for another server (skipped unless granian is installed).
* `test_recording_cost`: recording on against `--no-record`, 50 connections, non-stream.

Targets (issue 9): ≤ 1 ms added p50 at 1 connection; ≥ 900 requests/s through one service
process with recording on. Tables are printed at the end of the module.

Run: python -m pytest benchmarks/test_service.py --benchmark-only -s
(wrk: `apt-get install -y wrk`; without it every cell is skipped.)
"""

from __future__ import annotations

import json
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
AUTH = f"Bearer {KEY}"
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    WRK is None, reason="wrk is not installed (`apt-get install -y wrk`): it is this "
                        "benchmark's load generator")


@dataclass
class Work:
    """The files every cell uses: the named policy, request bodies, records stores."""

    root: Path

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    def body(self, to: str, stream: bool) -> Path:
        return self.root / f"{to}-{'stream' if stream else 'json'}.json"


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


@pytest.fixture(scope="module")
def report(pytestconfig: pytest.Config) -> Iterator[Report]:
    r = Report()
    yield r
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(r.render())


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Work:
    w = Work(tmp_path_factory.mktemp("service-bench"))
    w.policies.mkdir()
    (w.policies / "bench.json").write_text(json.dumps(POLICY))
    for stream in (False, True):
        w.body("service", stream).write_text(
            json.dumps({**REQUEST, "model": "policy:bench", "stream": stream}))
        w.body("direct", stream).write_text(
            json.dumps({**REQUEST, "model": "gpt-5-nano", "stream": stream}))
    return w


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with provider_process() as p:
        yield p


def server_name(env: dict[str, str]) -> str:
    """What uvicorn's "auto" resolves to in a process started with `env`."""
    http = "httptools" if importable("httptools", env) else "h11"
    loop = "uvloop" if importable("uvloop", env) else "asyncio"
    return f"uvicorn {http} + {loop}"


@pytest.fixture(scope="module")
def service(work: Work, provider: Provider, report: Report) -> Iterator[Served]:
    """`unhardcoded serve`, embedded catalog, recording on (SQLite)."""
    env = service_env(provider)
    port = free_port()
    records = work.root / "recorded.sqlite3"
    with service_process(work.root / "serve", env,
                         serve_command(port, work.policies, records), port) as s:
        report.notes.append(f"`serve` ran on {server_name(env)}.")
        yield s
        t0 = time.perf_counter()
    stopped_s = time.perf_counter() - t0
    report.notes.append(f"Records stored by the recording service: {stored_records(records):,} "
                        f"(its stop, which writes every queued record, took {stopped_s:.1f} s).")


def fmt(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def load_info(prefix: str, load: Load, service: str | None) -> dict[str, float]:
    info = {f"{prefix}_rps": round(load.rps, 1), f"{prefix}_p50_ms": load.p50_ms,
            f"{prefix}_p90_ms": load.p90_ms, f"{prefix}_p99_ms": load.p99_ms,
            f"{prefix}_max_ms": load.max_ms, f"{prefix}_requests": load.requests,
            f"{prefix}_wrk_corrected_p50_ms": load.corrected_p50_ms,
            f"{prefix}_wrk_corrected_p99_ms": load.corrected_p99_ms,
            f"{prefix}_errors": load.errors,
            f"{prefix}_wrk_cores": round(load.cores("wrk"), 3),
            f"{prefix}_others_cores": round(load.cores("others"), 3),
            f"{prefix}_provider_cores": round(load.cores("provider"), 3)}
    if service:
        info[f"{prefix}_service_cores"] = round(load.cores(service), 3)
        info[f"{prefix}_service_cpu_ms_per_request"] = round(
            load.cpu_ms_per_request(service), 3)
    return info


def run_cell(benchmark: Any, cell: Callable[[], T], info: Callable[[T], dict[str, float]]) -> T:
    """One pytest-benchmark round around the whole cell; its numbers go to `extra_info`."""
    result: T = benchmark.pedantic(cell, rounds=1, iterations=1)
    benchmark.extra_info.update(info(result))
    return result


def cores(load: Load) -> str:
    return (f"{load.cores('service'):.2f} / {load.cores('provider'):.2f} / "
            f"{load.cores('wrk'):.2f} / {load.cores('others'):.2f}")


def pair(a: float, b: float) -> str:
    return f"{fmt(a)} / {fmt(b)}"


@pytest.mark.parametrize("connections", CONCURRENCY, ids=lambda c: f"c{c}")
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_service_vs_direct(benchmark: Any, work: Work, provider: Provider, service: Served,
                           report: Report, stream: bool, connections: int) -> None:
    service_url = service.url + "/v1/chat/completions"
    reply = check_reply(service_url, work.body("service", stream), stream)
    assert '"model":"gpt-' in reply.text, reply.text[:300]  # an OpenAI offering: the fake
    if not stream:  # (a stream's headers leave before it is known who serves it)
        assert reply.headers["x-unhardcoded-served-by"].startswith("openai/"), reply.headers
    check_reply(provider.chat_url, work.body("direct", stream), stream, AUTH)
    watch = {"provider": provider.pid, "service": service.proc.pid}

    def cell() -> tuple[Load, Load]:
        direct = measure(provider.chat_url, work.body("direct", stream), connections, SECONDS,
                         WARM_S, watch, AUTH)
        served = measure(service_url, work.body("service", stream), connections, SECONDS,
                         WARM_S, watch)
        return direct, served

    def info(loads: tuple[Load, Load]) -> dict[str, float]:
        direct, served = loads
        return {**load_info("direct", direct, None), **load_info("service", served, "service"),
                "added_p50_ms": round(served.p50_ms - direct.p50_ms, 3),
                "added_p99_ms": round(served.p99_ms - direct.p99_ms, 3)}

    direct, served = run_cell(benchmark, cell, info)
    assert direct.errors == 0 and served.errors == 0, (direct, served)
    report.row(
        "Service vs direct (recording on, embedded catalog)",
        ["mode", "conns", "direct req/s", "direct p50 / p99 ms", "service req/s",
         "service p50 / p99 ms", "**added p50 / p99 ms**", "service CPU ms/req",
         "cores: service / provider / wrk / others"],
        ["stream" if stream else "non-stream", str(connections), fmt(direct.rps),
         pair(direct.p50_ms, direct.p99_ms), fmt(served.rps), pair(served.p50_ms, served.p99_ms),
         f"**{pair(served.p50_ms - direct.p50_ms, served.p99_ms - direct.p99_ms)}**",
         fmt(served.cpu_ms_per_request("service")), cores(served)])


def service_cell(benchmark: Any, work: Work, provider: Provider, served: Served) -> Load:
    """c=50, non-stream, through `served`, as one benchmark round."""
    url = served.url + "/v1/chat/completions"
    check_reply(url, work.body("service", False), False)
    load = run_cell(benchmark, lambda: measure(
        url, work.body("service", False), 50, SECONDS, WARM_S,
        {"provider": provider.pid, "service": served.proc.pid}),
        lambda x: load_info("service", x, "service"))
    assert load.errors == 0, load
    return load


SERVERS = "Server choice (c=50, non-stream, recording on)"
SERVER_COLUMNS = ["server", "req/s", "p50 / p99 ms", "service CPU ms/req",
                  "cores: service / provider / wrk / others"]


def server_row(name: str, load: Load) -> list[str]:
    return [name, fmt(load.rps), pair(load.p50_ms, load.p99_ms),
            fmt(load.cpu_ms_per_request("service")), cores(load)]


@pytest.mark.parametrize(("http", "loop"), [("h11", "asyncio"), ("httptools", "asyncio"),
                                            ("h11", "uvloop"), ("httptools", "uvloop")],
                         ids=["h11-asyncio", "httptools-asyncio", "h11-uvloop",
                              "httptools-uvloop"])
def test_server_choice(benchmark: Any, work: Work, provider: Provider, report: Report,
                       http: str, loop: str, tmp_path: Path) -> None:
    port = free_port()
    records = tmp_path / "records.sqlite3"
    env = service_env(provider, {ENVIRONMENT: settings_json(port, work.policies, records)})
    for needed in sorted({http, loop} - {"h11", "asyncio"}):
        if not importable(needed, env):
            pytest.skip(f"{needed} is not installed (`pip install httptools uvloop`)")
    with service_process(tmp_path, env, uvicorn_command(http, loop), port) as served:
        load = service_cell(benchmark, work, provider, served)
    report.row(SERVERS, SERVER_COLUMNS, server_row(f"uvicorn {http} + {loop}", load))


def test_granian(benchmark: Any, work: Work, provider: Provider, report: Report,
                 tmp_path: Path) -> None:
    """Another server, for comparison: granian (HTTP in Rust), one worker, HTTP/1.1."""
    port = free_port()
    records = tmp_path / "records.sqlite3"
    env = service_env(provider, {ENVIRONMENT: settings_json(port, work.policies, records)})
    if not importable("granian", env):
        pytest.skip("granian is not installed (`pip install granian`)")
    loop = "uvloop" if importable("uvloop", env) else "asyncio"
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--http", "1",
               "--no-ws", "--loop", loop, "--log-level", "warning",
               "router.service.app:from_environment"]
    with service_process(tmp_path, env, command, port) as served:
        load = service_cell(benchmark, work, provider, served)
    report.row(SERVERS, SERVER_COLUMNS, server_row(f"granian (Rust HTTP) + {loop}", load))


def test_recording_cost(benchmark: Any, work: Work, provider: Provider, service: Served,
                        report: Report, tmp_path: Path) -> None:
    """`serve --no-record` at c=50 non-stream, right after the recording service."""
    recorded = service_cell(benchmark, work, provider, service)
    port = free_port()
    command = serve_command(port, work.policies, None)
    with service_process(tmp_path, service_env(provider), command, port) as served:
        unrecorded = measure(served.url + "/v1/chat/completions", work.body("service", False),
                             50, SECONDS, WARM_S,
                             {"provider": provider.pid, "service": served.proc.pid})
    assert unrecorded.errors == 0, unrecorded
    benchmark.extra_info.update(load_info("no_record", unrecorded, "service"))
    table = "Recording cost (`serve`, c=50, non-stream)"
    report.row(table, SERVER_COLUMNS, server_row("recording on (SQLite)", recorded))
    report.row(table, SERVER_COLUMNS, server_row("`--no-record`", unrecorded))
