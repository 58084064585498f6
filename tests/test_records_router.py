"""Recording from the router: every route/complete/stream is stored, read back equal to the
live record, without keys or message content; a failing store never fails a request; the
README example through the command line; crash safety and many writers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest

from router.config import RouterConfig
from router.facade import Router
from router.records import Query, Replayer, SqliteStore, default_location, verify
from tests.dispatch_support import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Clock,
    catalog,
    environ,
    make_router,
    policy,
)
from tests.fakes import FakeProvider, ok, ok_stream, status

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SECRET_TEXT = "the customer's account number is 4111-1111"
REQUEST = {"messages": [{"role": "user", "content": SECRET_TEXT}], "max_tokens": 50}


def recording_router(fakes: tuple[FakeProvider, FakeProvider], path: Path,
                     store_content: bool = False) -> Router:
    base = make_router(environ(fakes[0].base_url, fakes[1].base_url), Clock())
    config = RouterConfig(environ=base.config.environ, clock=base.config.clock,
                          trace_ids=base.config.trace_ids, sleep=base.config.sleep,
                          records=path, store_content=store_content)
    base.close()
    return Router(catalog(), config=config)


def stored_bytes(path: Path) -> bytes:
    """Everything the store holds, decompressed."""
    conn = sqlite3.connect(path)
    out = b"".join(zlib.decompress(b) for (b,) in conn.execute("SELECT body FROM records"))
    out += b"".join(zlib.decompress(b) for (b,) in conn.execute("SELECT body FROM objects"))
    out += b"".join(str(r).encode() for r in conn.execute("SELECT * FROM records"))
    conn.close()
    return out


def rebuilt(path: Path, trace_id: str, proofs: bool = False) -> dict[str, Any]:
    store = SqliteStore(path)
    stored = store.get(trace_id)
    assert stored is not None, trace_id
    record = Replayer(store).record(stored, proofs=proofs)
    store.close()
    return record


def test_route_complete_and_stream_are_stored_and_read_back_equal(
        fakes: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    fakes[0].script(status(500), ok("hello"))
    fakes[0].script_for("cheap-2026", ok_stream("streamed"))
    router = recording_router(fakes, path)
    routed = router.route(policy(), REQUEST)
    failed_over = router.complete_sync(policy(filters=[["!=", "model", "cheap"]]), REQUEST)
    streamed = router.stream_sync(policy(), {**REQUEST, "stream": True})
    chunks = list(streamed)
    router.close()
    assert chunks and failed_over.served_by
    expected = {routed.trace_id: routed.record(proofs=True),
                failed_over.trace_id: failed_over.record(proofs=True),
                streamed._stream.trace_id: streamed.record(proofs=True)}
    for trace_id, live in expected.items():
        assert rebuilt(path, trace_id, proofs=True) == json.loads(json.dumps(live))
    store = SqliteStore(path)
    outcomes = {r.trace_id: (r.outcome, r.served_by) for r in store.iterate(Query())}
    assert outcomes[routed.trace_id] == ("routed", None)
    assert outcomes[failed_over.trace_id] == ("ok", failed_over.served_by)
    assert outcomes[streamed._stream.trace_id][0] == "ok"
    links, heads = store.chains()
    assert verify(links, heads, None) == []
    store.close()


def test_records_hold_no_key_and_no_message_content_unless_asked(
        fakes: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> None:
    fakes[0].set_default(ok("fine"))
    path = tmp_path / "records.sqlite3"
    router = recording_router(fakes, path)
    done = router.complete_sync(policy(), REQUEST)
    router.close()
    raw = stored_bytes(path)
    assert OPENAI_KEY.encode() not in raw and ANTHROPIC_KEY.encode() not in raw
    assert SECRET_TEXT.encode() not in raw
    body = SqliteStore(path).get(done.trace_id).body  # type: ignore[union-attr]
    assert len(body["content"]["sha256"]) == 64 and "messages" not in body["content"]

    opted = tmp_path / "with-content.sqlite3"
    router = recording_router(fakes, opted, store_content=True)
    router.complete_sync(policy(), REQUEST)
    router.close()
    raw = stored_bytes(opted)
    assert SECRET_TEXT.encode() in raw
    assert OPENAI_KEY.encode() not in raw


def test_a_refused_call_is_recorded_as_no_admissible(
        fakes: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> None:
    from router.dispatch.completion import NoAdmissibleOffering

    path = tmp_path / "records.sqlite3"
    router = recording_router(fakes, path)
    with pytest.raises(NoAdmissibleOffering) as err:
        router.complete_sync(policy(filters=[[">=", "context_window", 10**9]]), REQUEST)
    router.close()
    trace_id = err.value.record["trace_id"]
    assert SqliteStore(path).get(trace_id).outcome == "no_admissible"  # type: ignore[union-attr]
    assert rebuilt(path, trace_id) == json.loads(json.dumps(err.value.record))


def test_a_store_that_fails_while_serving_never_fails_a_request(
        fakes: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    router = recording_router(fakes, path)
    assert router.records is not None
    first = router.route(policy(), REQUEST).selected
    assert first is not None and router.records.flush()
    other = sqlite3.connect(path)  # the store is broken under the running router
    other.execute("DROP TABLE records")
    other.commit()
    other.close()
    for _ in range(3):
        assert router.route(policy(), REQUEST).selected == first
    assert router.records.flush()
    assert router.records.errors == 3 and router.records.written == 1
    router.close()


def test_a_store_named_in_the_config_that_is_not_ours_stops_the_router(tmp_path: Path) -> None:
    from router.records import RecordsError

    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a database\n" * 10)
    with pytest.raises(RecordsError) as err:
        Router(catalog(), config=RouterConfig(environ={}, records=path))
    assert err.value.code == "records.not_ours"
    assert path.read_text().startswith("my notes")


def test_where_records_go_by_default(tmp_path: Path) -> None:
    assert default_location({"HOME": str(tmp_path)}) == \
        tmp_path / ".local/share/unhardcoded/records.sqlite3"
    assert default_location({"XDG_DATA_HOME": str(tmp_path)}) == \
        tmp_path / "unhardcoded/records.sqlite3"
    assert default_location({"UNHARDCODED_RECORDS": "off", "HOME": "/x"}) is None
    router = Router(catalog(), config=RouterConfig(environ={"HOME": str(tmp_path)}))
    router.route(policy(), REQUEST)
    router.close()
    stored = list(SqliteStore(tmp_path / ".local/share/unhardcoded/records.sqlite3")
                  .iterate(Query()))
    assert len(stored) == 1
    off = Router(catalog(), config=RouterConfig(environ={"HOME": str(tmp_path)},
                                                 records=None))
    assert off.records is None
    off.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("unhardcoded")
    return subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_the_readme_example_through_the_command_line(tmp_path: Path) -> None:
    """`route` records; `trace list` lists it; `trace show --json` is what `route --json`
    printed; `replay --all` reproduces it; `trace verify` finds nothing."""
    records = str(tmp_path / "records.sqlite3")
    routed = _cli("route", "--policy", str(EXAMPLES / "support-tickets.policy.json"),
                  "--request", str(EXAMPLES / "support-ticket.request.json"), "--json",
                  "--records", records)
    assert routed.returncode == 0, routed.stderr
    live = json.loads(routed.stdout)
    trace_id = live["trace_id"]
    assert f"recorded as trace {trace_id}" in routed.stderr
    listed = _cli("trace", "list", "--records", records, "--policy", "support-tickets")
    assert listed.returncode == 0 and trace_id in listed.stdout
    assert "bedrock/eu/nova-lite-v1" in listed.stdout
    shown = _cli("trace", "show", trace_id, "--json", "--records", records)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == live
    text = _cli("trace", "show", trace_id, "--records", records, "--max-rows", "3")
    assert text.returncode == 0 and "bedrock/eu/nova-lite-v1" in text.stdout
    replayed = _cli("replay", "--all", "--records", records)
    assert replayed.returncode == 0 and "1 same" in replayed.stderr
    verified = _cli("trace", "verify", "--records", records)
    assert verified.returncode == 0 and "0 problems" in verified.stderr
    exported = _cli("trace", "export", "--jsonl", "--records", records)
    assert [json.loads(x)["trace_id"] for x in exported.stdout.splitlines()] == [trace_id]
    missing = _cli("trace", "show", "nope", "--records", records)
    assert missing.returncode == 2 and "records.unknown_trace" in missing.stderr
    assert "Traceback" not in missing.stderr


_BURST = textwrap.dedent("""
    import sys
    from router.records import Pending, RecordWriter, SqliteStore
    from tests.records_support import decided
    from tests.strategies import minimal_scenario
    decision = decided(minimal_scenario(lambda s: len(s.catalog) >= 3))
    writer = RecordWriter(SqliteStore(sys.argv[1]))
    tag = sys.argv[2]
    print("ready", flush=True)
    for i in range(100000):
        writer.submit(Pending(decision, f"{tag}-{i}", "cfg"))
        if i % 7 == 0:
            writer.flush()
            print(f"acked {tag}-{i}", flush=True)
""")


def _burst(path: Path, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _BURST, str(path), tag],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_killed_writers_lose_no_acknowledged_record(tmp_path: Path) -> None:
    """Four processes write a burst into one store and are SIGKILLed mid-burst: every record
    whose write was acknowledged is there, the store opens cleanly and its chains verify."""
    path = tmp_path / "records.sqlite3"
    SqliteStore(path).close()
    procs = [_burst(path, f"w{i}") for i in range(4)]
    acked: list[str] = []
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:  # let each acknowledge some records, then kill it mid-burst
        assert p.stdout is not None
        for _ in range(40):
            line = p.stdout.readline().strip()
            if line.startswith("acked "):
                acked.append(line.split()[1])
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        assert p.stdout is not None
        for line in p.stdout:  # acknowledgements printed before the kill
            if line.startswith("acked "):
                acked.append(line.split()[1])
        p.wait()
    store = SqliteStore(path)
    missing = [t for t in acked if store.get(t) is None]
    assert len(acked) >= 160 and missing == []
    links, heads = store.chains()
    assert len(heads) == 4
    assert verify(links, heads, None) == []
    store.close()


def test_a_forked_child_records_into_the_same_store(tmp_path: Path) -> None:
    """A router used before and after `fork()`: the child writes with its own connection and
    chain, nothing is lost, and the chains verify."""
    path = tmp_path / "records.sqlite3"
    script = textwrap.dedent(f"""
        import os, sys
        from router.config import RouterConfig
        from router.facade import Router
        from tests.dispatch_support import catalog, policy
        r = Router(catalog(), config=RouterConfig(environ={{}}, records={str(path)!r},
                                                   derive_in_processes=False))
        req = {{"messages": [{{"role": "user", "content": "hi"}}]}}
        r.route(policy(), req, policy_name="parent-before")
        r.records.flush()
        pid = os.fork()
        if pid == 0:
            r.route(policy(), req, policy_name="child")
            r.close()
            os._exit(0)
        r.route(policy(), req, policy_name="parent-after")
        _, status = os.waitpid(pid, 0)
        r.close()
        sys.exit(status)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    store = SqliteStore(path)
    names = sorted(r.policy_name or "" for r in store.iterate(Query()))
    assert names == ["child", "parent-after", "parent-before"]
    links, heads = store.chains()
    assert len(heads) == 2 and verify(links, heads, None) == []
    store.close()


def test_store_content_on_the_command_line(tmp_path: Path) -> None:
    records = tmp_path / "records.sqlite3"
    args = ["route", "--policy", str(EXAMPLES / "support-tickets.policy.json"), "--request",
            str(EXAMPLES / "support-ticket.request.json"), "--records", str(records),
            "--max-rows", "1"]
    assert _cli(*args).returncode == 0
    assert b"Ticket #4411" not in stored_bytes(records)
    assert _cli(*args, "--store-content").returncode == 0
    assert b"Ticket #4411" in stored_bytes(records)


def test_many_writer_threads_lose_nothing(tmp_path: Path) -> None:
    """Eight routers' writers on one SQLite file, fed from eight threads at once."""
    import threading

    from router.records import Pending, RecordWriter
    from tests.records_support import decided
    from tests.strategies import minimal_scenario

    decision = decided(minimal_scenario(lambda s: len(s.catalog) >= 3))
    path = tmp_path / "records.sqlite3"
    writers = [RecordWriter(SqliteStore(path)) for _ in range(8)]

    def feed(i: int) -> None:
        for j in range(250):
            writers[i].submit(Pending(decision, f"{i}-{j}", "cfg"))

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert sum(w.written for w in writers) == 2000 and all(w.errors == 0 for w in writers)
    store = SqliteStore(path)
    assert len(list(store.iterate(Query()))) == 2000
    links, heads = store.chains()
    assert len(heads) == 8 and verify(links, heads, None) == []
    store.close()


def test_a_router_that_requires_records_does_not_serve_an_unrecorded_decision(
        fakes: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> None:
    from router.records import RecordsError

    path = tmp_path / "records.sqlite3"
    router = Router(catalog(), config=RouterConfig(environ={}, records=path,
                                                   records_required=True))
    served = router.route(policy(), REQUEST)  # recorded before it is returned
    assert SqliteStore(path).get(served.trace_id) is not None
    other = sqlite3.connect(path)  # the store breaks
    other.execute("DROP TABLE records")
    other.commit()
    other.close()
    with pytest.raises(RecordsError) as err:
        router.route(policy(), REQUEST)
    assert err.value.code == "records.not_stored"
    router.close()


def test_a_program_that_never_closes_its_router_still_writes_its_records(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    script = textwrap.dedent(f"""
        from router.config import RouterConfig
        from router.facade import Router
        from tests.dispatch_support import catalog, policy
        r = Router(catalog(), config=RouterConfig(environ={{}}, records={str(path)!r},
                                                   derive_in_processes=False))
        for _ in range(5):
            r.route(policy(), {{"messages": [{{"role": "user", "content": "hi"}}]}})
        # no close(): the interpreter exits with the decisions still queued
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert len(list(SqliteStore(path).iterate(Query()))) == 5


class CountingStore(SqliteStore):
    """A real SQLite store that counts the batches (transactions) it is given."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def write(self, rows: Any, writer: Any) -> None:  # type: ignore[override]
        self.batches.append(len(rows))
        super().write(rows, writer)


def test_decisions_arriving_one_at_a_time_are_written_in_few_batches(tmp_path: Path) -> None:
    """One request at a time (a decision every 2 ms): the writer gathers them for
    `flush_interval_s` and commits each gathering once, and each is durable within that
    interval plus a write, without a flush."""
    import time

    from router.records import Pending, RecordWriter
    from router.records.writer import WriterSettings
    from tests.records_support import decided
    from tests.strategies import minimal_scenario

    decision = decided(minimal_scenario(lambda s: len(s.catalog) >= 3))
    store = CountingStore(tmp_path / "records.sqlite3")
    writer = RecordWriter(store, settings=WriterSettings(flush_interval_s=0.1))
    for j in range(100):
        writer.submit(Pending(decision, f"t-{j}", "cfg"))
        time.sleep(0.002)
    deadline = time.monotonic() + 0.25 + 0.5  # documented bound, plus room for a busy box
    while writer.written < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.written == 100
    assert sum(store.batches) == 100 and len(store.batches) <= 10, store.batches
    writer.close()


def test_a_flush_does_not_wait_for_the_gathering_interval(tmp_path: Path) -> None:
    import time

    from router.records import Pending, RecordWriter
    from router.records.writer import WriterSettings
    from tests.records_support import decided
    from tests.strategies import minimal_scenario

    decision = decided(minimal_scenario(lambda s: len(s.catalog) >= 3))
    writer = RecordWriter(SqliteStore(tmp_path / "records.sqlite3"),
                          settings=WriterSettings(flush_interval_s=30.0))
    for j in range(600):  # more than two batches of 256
        writer.submit(Pending(decision, f"t-{j}", "cfg"))
    t0 = time.monotonic()
    assert writer.flush(timeout_s=20.0)
    assert writer.written == 600
    assert time.monotonic() - t0 < 10.0  # not 30 s per batch
    writer.submit(Pending(decision, "last", "cfg"))
    t1 = time.monotonic()
    writer.close()  # flushes too
    assert writer.written == 601 and time.monotonic() - t1 < 10.0


class WatchingStore(SqliteStore):
    """A real SQLite store that notes, as each batch reaches it, which watched decisions are
    still alive."""

    def __init__(self, path: Path, watched: list[Any]) -> None:
        super().__init__(path)
        self.watched = watched
        self.alive_at_write: list[list[bool]] = []

    def write(self, rows: Any, writer: Any) -> None:  # type: ignore[override]
        self.alive_at_write.append([ref() is not None for ref in self.watched])
        super().write(rows, writer)


def test_the_writer_lets_each_decision_go_once_its_row_is_built(tmp_path: Path) -> None:
    """A batch's decisions (and the full rankings their rows settled) are not all held until
    its commit: by the time the rows reach the store, every decision is gone."""
    import weakref

    from router.records import Pending, RecordWriter
    from router.records.writer import WriterSettings
    from tests.records_support import decided
    from tests.strategies import minimal_scenario

    scenario = minimal_scenario(lambda s: len(s.catalog) >= 3)
    refs: list[Any] = []
    store = WatchingStore(tmp_path / "records.sqlite3", refs)
    writer = RecordWriter(store, settings=WriterSettings(flush_interval_s=0.5))

    def queue(j: int) -> None:  # the decision lives only in the writer's queue afterwards
        decision = decided(scenario)
        _ = decision.ranking  # settled now, as the row will need it
        refs.append(weakref.ref(decision))
        writer.submit(Pending(decision, f"t-{j}", "cfg"))

    for j in range(3):
        queue(j)
    assert all(ref() is not None for ref in refs)
    assert writer.flush()
    assert store.alive_at_write == [[False, False, False]]
    assert len(list(store.iterate(Query()))) == 3
    writer.close()
