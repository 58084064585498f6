"""Load for the service benchmark (`benchmarks/test_service.py`): wrk, the processes it loads,
and the CPU each of them spends.

Every party runs in its own process, so none shares another's GIL or event loop:

* the fake OpenAI-compatible provider (`tests/fakes`, the same reply as
  `benchmarks/fake_server.py`), started as `python -m benchmarks.service_load provider KEY`;
  it forgets the requests it recorded every second, so a long run neither grows it by
  gigabytes nor slows it with garbage-collector scans of them;
* the service: `python -m router.cli serve …` as users run it, or
  `python -m benchmarks.service_load uvicorn HTTP LOOP` (the same uvicorn configuration as
  `serve`, with the HTTP implementation and the event loop forced), or another ASGI server;
* the load generator, `wrk` (C, one thread, HTTP/1.1 keep-alive, closed loop: each of the N
  connections sends its next request when the previous response has ended). Its latency is
  from writing the request to the end of the response, so for SSE it is the whole stream.

CPU is read from `/proc` around each run: the seconds each party used, and what the rest of
the machine used meanwhile (other people's jobs on a shared box show up there).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.service_support import PROVIDER_VARIABLES, Served, wait_ready

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-bench"  # the provider key the fake accepts (`Authorization: Bearer …`)
WRK = shutil.which("wrk")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# wrk's Lua: POST the body file; at the end print one JSON line of counts and percentiles.
#
# wrk (4.x) "corrects" its latency histogram for coordinated omission before `done()` runs:
# with e = duration / floor(requests / connections), every sample n >= 2e gets synthetic
# samples at n-e, n-2e, … while above e (`stats_correct`). That suits an open-loop reading,
# but it weighs a pause by the request rate: at 10,000 requests/s (the fake answering directly)
# one 60 ms pause becomes ~700 samples and moves p99 from 0.3 ms to 20–40 ms, while the same
# pause adds a handful of samples at the service's rate. Added latency would then compare two
# different corrections. So `done()` undoes it exactly, from the largest value down:
# raw[m] = corrected[m] - sum over k >= 1 of raw[m + k e], for m > e; the raw samples then
# number exactly the completed requests (checked in `run_wrk`). Both readings are reported.
WRK_SCRIPT = r"""
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

local function raw_histogram(latency, summary, connections)
  local values, corrected = {}, {}
  for i = 1, #latency do
    local v, n = latency(i)
    values[#values + 1] = v
    corrected[v] = n
  end
  local per_connection = math.floor(summary.requests / connections)
  local e = per_connection > 0 and math.floor(summary.duration / per_connection) or 0
  local raw = {}
  for i = #values, 1, -1 do
    local m = values[i]
    local r = corrected[m]
    if e > 0 and m > e then
      local k = m + e
      while k <= latency.max do r = r - (raw[k] or 0); k = k + e end
    end
    raw[m] = r
  end
  return values, raw
end

local function percentile(values, counts, total, p)
  local rank = math.floor(p / 100 * total + 1)
  local seen = 0
  for i = 1, #values do
    seen = seen + counts[values[i]]
    if seen >= rank then return values[i] end
  end
  return values[#values] or 0
end

function done(summary, latency, requests)
  local e = summary.errors
  local values, raw = raw_histogram(latency, summary, tonumber(os.getenv("WRK_CONNECTIONS")))
  local total = 0
  for i = 1, #values do total = total + raw[values[i]] end
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"samples":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"corrected_p50_us":%d,"corrected_p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    total, percentile(values, raw, total, 50), percentile(values, raw, total, 90),
    percentile(values, raw, total, 99), latency.max, latency:percentile(50),
    latency:percentile(99)))
end
"""


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc


def _family(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's or granian's workers, derivation workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _process_cpu_s(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def _machine_busy_s() -> float:
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# One load run


@dataclass(frozen=True)
class Load:
    """What one wrk run measured. `cpu_s` holds the CPU seconds each watched process family
    used during the run, `wrk`, and `others` (the machine's busy time less all of those)."""

    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    corrected_p50_ms: float  # wrk's own percentiles (coordinated-omission corrected)
    corrected_p99_ms: float
    errors: int
    cpu_s: Mapping[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def cpu_ms_per_request(self, who: str) -> float:
        return self.cpu_s[who] * 1000.0 / max(1, self.requests)

    def cores(self, who: str) -> float:
        """Average cores `who` kept busy during the run."""
        return self.cpu_s[who] / self.seconds


def run_wrk(url: str, body: Path, connections: int, seconds: float,
            watch: Mapping[str, int], auth: str | None = None) -> Load:
    """One closed-loop wrk run of `seconds` with `connections` keep-alive connections, one
    thread. `watch` names the processes (and their children) whose CPU is reported."""
    if WRK is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {**os.environ, "WRK_BODY": str(body), "WRK_AUTH": auth or "",
           "WRK_CONNECTIONS": str(connections)}
    families = {name: _family(pid) for name, pid in watch.items()}
    before = {name: _process_cpu_s(f) for name, f in families.items()}
    busy0, wrk0 = _machine_busy_s(), _children_cpu_s()
    try:
        done = subprocess.run(
            [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
             "-s", script.name, url], env=env, capture_output=True, text=True,
            timeout=seconds + 60, check=False)
    finally:
        os.unlink(script.name)
    cpu = {name: _process_cpu_s(f) - before[name] for name, f in families.items()}
    cpu["wrk"] = _children_cpu_s() - wrk0
    cpu["others"] = max(0.0, _machine_busy_s() - busy0 - sum(cpu.values()))
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    r: dict[str, int] = json.loads(line.split(" ", 1)[1])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    if r["samples"] != r["requests"] - r["timeout"]:
        raise RuntimeError(f"undoing wrk's latency correction left {r['samples']} samples for "
                           f"{r['requests']} requests: this wrk corrects differently")
    return Load(connections=connections, requests=r["requests"],
                seconds=r["duration_us"] / 1e6, p50_ms=r["p50_us"] / 1000,
                p90_ms=r["p90_us"] / 1000, p99_ms=r["p99_us"] / 1000,
                max_ms=r["max_us"] / 1000, corrected_p50_ms=r["corrected_p50_us"] / 1000,
                corrected_p99_ms=r["corrected_p99_us"] / 1000, errors=errors, cpu_s=cpu)


class Quiet:
    """Waits, before a run, until the rest of the machine is quiet: on a shared box other
    people's jobs take a core now and then, and this benchmark needs both. Each wait lasts
    at most `most_s`, and all of them together at most `budget_s`; a run that could not wait
    shows it in its `others` CPU."""

    def __init__(self, budget_s: float = 90.0, most_s: float = 10.0,
                 below_cores: float = 0.3, window_s: float = 0.5) -> None:
        self.left_s, self.most_s = budget_s, most_s
        self.below_cores, self.window_s = below_cores, window_s

    def __call__(self) -> None:
        deadline = time.monotonic() + min(self.most_s, max(0.0, self.left_s))
        start = time.monotonic()
        while True:
            busy0 = _machine_busy_s()
            time.sleep(self.window_s)
            if (_machine_busy_s() - busy0) / self.window_s < self.below_cores:
                break
            if time.monotonic() >= deadline:
                break
        self.left_s -= max(0.0, time.monotonic() - start - self.window_s)


def measure(url: str, body: Path, connections: int, seconds: float, warm_s: float,
            watch: Mapping[str, int], auth: str | None = None,
            quiet: Quiet | None = None) -> Load:
    """Wait for a quiet machine, a short warm-up run (connections, pools, caches), then the
    measured run."""
    if quiet is not None:
        quiet()
    run_wrk(url, body, connections, warm_s, watch, auth)
    return run_wrk(url, body, connections, seconds, watch, auth)


# --------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Provider:
    base_url: str
    pid: int

    @property
    def chat_url(self) -> str:
        return self.base_url + "/v1/chat/completions"


@contextmanager
def provider_process() -> Iterator[Provider]:
    """The fake provider in its own process; it stops when its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.service_load", "provider", KEY],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield Provider(proc.stdout.readline().strip(), proc.pid)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def service_env(provider: Provider, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any provider key or records location, plus the fake's OpenAI
    key and base URL: the embedded catalog's OpenAI offerings reach the fake, no other
    provider is configured."""
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": provider.base_url + "/v1"})
    # services run in a scratch directory; `python -m benchmarks.service_load` needs the repo
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def serve_command(port: int, policies: Path, records: Path | None,
                  extra: Sequence[str] = ()) -> list[str]:
    """`unhardcoded serve` on the embedded catalog (no `--catalog`)."""
    record = ["--records", str(records)] if records is not None else ["--no-record"]
    return [sys.executable, "-m", "router.cli", "serve", "--port", str(port),
            "--policies", str(policies), *record, "--log-level", "warning", *extra]


def uvicorn_command(http: str, loop: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.service_load", "uvicorn", http, loop]


def settings_json(port: int, policies: Path, records: Path | None) -> str:
    """`serve`'s settings for servers started without `serve` (they read the environment)."""
    from router.service.settings import ServiceSettings

    return ServiceSettings(port=port, policies=str(policies),
                           records=str(records) if records else None,
                           record=records is not None, log_level="warning").to_json()


@contextmanager
def service_process(root: Path, env: Mapping[str, str],
                    command: Sequence[str], port: int) -> Iterator[Served]:
    """Start a service command listening on `port`, wait for `/readyz`, stop it (SIGTERM,
    which writes every queued record) when done."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"service-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(command), env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    served = Served(proc, port, log, root / "records.sqlite3")
    try:
        wait_ready(served)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def importable(module: str, env: Mapping[str, str]) -> bool:
    """Whether `module` imports in a process started with `env` (what the service will see)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], env=dict(env),
                          capture_output=True, check=False)
    return done.returncode == 0


def check_reply(url: str, body: Path, stream: bool, auth: str | None = None) -> httpx.Response:
    """One request before a load run: it must succeed and be whole (SSE: up to `[DONE]`)."""
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = auth
    r = httpx.post(url, content=body.read_bytes(), headers=headers, timeout=30.0)
    if r.status_code != 200:
        raise AssertionError(f"{url}: {r.status_code} {r.text[:500]}")
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]"), r.text[-300:]
    else:
        assert r.json()["choices"][0]["message"]["content"], r.text[:300]
    return r


def stored_records(path: Path) -> int:
    """Records in a stopped service's SQLite store (read-only, through SQLite)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count: int = db.execute("SELECT count(*) FROM records").fetchone()[0]
        return count
    finally:
        db.close()


# --------------------------------------------------------------------------------------------
# Entry points of the child processes


def _provider_main(key: str) -> None:
    from tests.fakes import FakeProvider, ok

    with FakeProvider(api_key=key, default=ok("fine, thanks", usage=(300, 5), chunks=4)) as fp:
        print(fp.base_url, flush=True)
        stop = threading.Event()

        def until_stdin_closes() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=until_stdin_closes, daemon=True).start()
        while not stop.wait(1.0):
            fp.clear()  # the benchmark never reads them back


def _uvicorn_main(http: str, loop: str) -> None:
    import uvicorn

    from router.service.server import preflight, uvicorn_config
    from router.service.settings import ServiceSettings

    settings = ServiceSettings.from_environment()
    preflight(settings)
    config = uvicorn_config(settings)
    config.http, config.loop = http, loop  # what `serve` leaves to "auto"
    uvicorn.Server(config).run()


def main(argv: Sequence[str]) -> None:
    if argv[:1] == ["provider"] and len(argv) == 2:
        _provider_main(argv[1])
    elif argv[:1] == ["uvicorn"] and len(argv) == 3:
        _uvicorn_main(argv[1], argv[2])
    else:
        sys.exit("usage: python -m benchmarks.service_load provider KEY | uvicorn HTTP LOOP")


if __name__ == "__main__":
    main(sys.argv[1:])
