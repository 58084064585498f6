"""Records/s into one PostgreSQL store from 1 and 4 router processes (the README's example,
2,000 records each; each process has its own background writer and chain). Each round starts
on an empty schema; the time is from "go" to every process having flushed and closed.

Run (needs a server; `.ci/postgres.sh` starts a throwaway one):

    eval "$(bash .ci/postgres.sh start)"
    python -m pytest benchmarks/test_records_postgres.py --benchmark-only -s
    bash .ci/postgres.sh stop "$UNHARDCODED_PG_DIR"
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.records_backends import PostgresBackend, postgres_dsn

ROOT = Path(__file__).resolve().parents[1]
PER_PROCESS = 2000

_WRITER = textwrap.dedent("""
    import datetime as dt, json, sys
    from pathlib import Path
    from router.catalog.offerings import default_catalog
    from router.decide.decider import Decider
    from router.engine.derive import derive
    from router.live.state import LiveState
    from router.policy.admit import admit
    from router.records import Pending, RecordWriter, open_store
    from router.request.features import features_of
    examples = Path("examples")
    policy = admit(json.loads((examples / "support-tickets.policy.json").read_text()))
    request = json.loads((examples / "support-ticket.request.json").read_text())
    decision = Decider(derive(policy, default_catalog())).decide(
        features_of(request), LiveState.not_consulted(), dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    dsn, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    writer = RecordWriter(open_store(dsn))
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        writer.submit(Pending(decision, f"{tag}-{i}", "cfg"))
    writer.close()
    print(f"done {writer.written} {writer.errors} {writer.dropped}", flush=True)
""")


@pytest.mark.parametrize("processes", [1, 4])
def test_postgres_write_throughput(benchmark: Any, processes: int) -> None:
    dsn = postgres_dsn()
    backends: list[PostgresBackend] = []

    def start() -> tuple[tuple[list[subprocess.Popen[str]]], dict[str, Any]]:
        backend = PostgresBackend(dsn)
        backends.append(backend)
        backend.open().close()
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, backend.location, f"p{i}",
                                   str(PER_PROCESS)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
                 for i in range(processes)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return (procs,), {}

    def run(procs: list[subprocess.Popen[str]]) -> None:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().split() == ["done", str(PER_PROCESS), "0", "0"]
            p.wait()

    try:
        benchmark.pedantic(run, setup=start, rounds=3, iterations=1)
        assert backends[-1].one("SELECT COUNT(*) FROM records") == (PER_PROCESS * processes,)
    finally:
        for b in backends:
            b.close()
    rate = round(PER_PROCESS * processes / benchmark.stats.stats.median)
    benchmark.extra_info["records_per_s"] = rate
    print(f"\n{processes} process(es) x {PER_PROCESS}: {rate} records/s into PostgreSQL")
