"""The PostgreSQL records store, beyond the tests every store passes (`test_records_store.py`):
several processes writing to one store while it is pruned lose nothing; a forked child does
not share its parent's session; a bad DSN, a missing database or schema, a missing psycopg are
clear errors that never show the password; `UNHARDCODED_RECORDS` may name a DSN.

Needs a server: `UNHARDCODED_TEST_POSTGRES` (see `.ci/postgres.sh`); without it these tests
are skipped, or fail under `UNHARDCODED_REQUIRE_POSTGRES=1` (CI).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from router.records import (
    Pending,
    Query,
    Records,
    RecordsError,
    Replayer,
    default_location,
    open_store,
    recorder,
    verify,
)
from router.records.row import Snapshots, build_row
from router.records.store import ChainWriter
from tests.records_backends import (
    Backend,
    PostgresBackend,
    in_schema,
    postgres_dsn,
    require_psycopg,
)
from tests.records_support import decided
from tests.strategies import Scenario, minimal_scenario

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-not-to-be-shown"


@pytest.fixture()
def pg() -> Iterator[PostgresBackend]:
    made = PostgresBackend(postgres_dsn())
    yield made
    made.close()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return minimal_scenario(lambda s: len(s.catalog) >= 3)


def _refused(error: RecordsError) -> str:
    """Everything the error shows a user."""
    return " ".join(f"{p.code} {p.message} {p.hint}" for p in error.problems) + str(error)


# -- several processes, one store -------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import datetime as dt
    import sys
    from router.decide.decider import Decider
    from router.engine.derive import derive
    from router.records import Pending, RecordWriter, open_store
    from tests.strategies import minimal_scenario
    dsn, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = minimal_scenario(lambda s: len(s.catalog) >= 3)
    decider = Decider(derive(s.policy, s.catalog))
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    writer = RecordWriter(open_store(dsn), b"k" * 32)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        at = base + dt.timedelta(seconds=i)
        writer.submit(Pending(decider.decide(s.features, s.live, at), f"{tag}-{i}", "cfg"))
        if i % 50 == 0:
            writer.flush()
    writer.close()
    print(f"done {writer.written} {writer.errors} {writer.dropped} {writer.last_error}",
          flush=True)
""")

PER_WRITER = 500


def test_four_processes_write_while_the_store_is_pruned(backend: Backend) -> None:
    """Four routers (processes) append to one store at once while a fifth prunes the first
    half of each one's records over and over and verifies the store meanwhile: every record is
    either stored or was pruned (never lost, never twice), the newer half is all there, every
    object a record needs is still stored, and every chain verifies with its signature, during
    the writes and after."""
    backend.open().close()  # the tables, before the writers race to create them
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, backend.location, f"w{i}",
                               str(PER_WRITER)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for i in range(4)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    store = backend.open()
    key = b"k" * 32
    half = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=PER_WRITER // 2)
    pruned, checked = 0, []
    while any(p.poll() is None for p in procs):
        pruned += store.prune(half, None, key).records
        links, heads = store.chains()  # verify while they write: one snapshot, no findings
        checked.append([f.line() for f in verify(links, heads, key)])
        time.sleep(0.02)
    assert checked and all(found == [] for found in checked), checked
    pruned += store.prune(half, None, key).records
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.read().split()[:4] == ["done", str(PER_WRITER), "0", "0"]
        assert p.wait() == 0
    stored = {r.trace_id: r for r in store.iterate(Query())}
    assert len(stored) + pruned == 4 * PER_WRITER
    assert all(f"w{w}-{i}" in stored for w in range(4) for i in range(PER_WRITER // 2,
                                                                        PER_WRITER))
    links, heads = store.chains()
    assert len(heads) == 4
    assert verify(links, heads, key) == []
    replayer = Replayer(store)
    for w in range(4):
        assert replayer.replay(stored[f"w{w}-{PER_WRITER - 1}"]).status == "same"
    store.close()


def test_a_forked_child_does_not_share_its_parents_session(pg: PostgresBackend,
                                                           scenario: Scenario) -> None:
    """A child that writes through its parent's store and closes it (a pre-forked worker
    shutting down) uses a connection of its own; the parent's session goes on."""
    snapshots = Snapshots()
    row = {t: build_row(Pending(decided(scenario), t, "cfg"), snapshots) for t in "abc"}
    store = pg.open()
    store.write([row["a"]], ChainWriter("parent"))
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            store.write([row["b"]], ChainWriter("child"))
            store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.write([row["c"]], ChainWriter("parent"))
    assert [r.trace_id for r in store.iterate(Query())] == ["a", "b", "c"]
    links, heads = store.chains()
    assert verify(links, heads, None) == []
    store.close()


def test_a_replica_stores_again_the_objects_another_one_pruned(backend: Backend,
                                                              scenario: Scenario) -> None:
    """Replica B prunes every record, and with them the policy and catalog objects; replica
    A's next record must store them again, not assume it did so once already."""
    snapshots = Snapshots()
    a, b = backend.open(), backend.open()
    a.write([build_row(Pending(decided(scenario), "first", "cfg"), snapshots)],
            ChainWriter("a"))
    assert b.prune(dt.datetime(2999, 1, 1, tzinfo=dt.UTC), None, None).objects > 0
    a.write([build_row(Pending(decided(scenario), "second", "cfg"), snapshots)],
            ChainWriter("a"))
    stored = b.get("second")
    assert stored is not None
    assert Replayer(b).replay(stored).status == "same"  # its policy, catalog, live: all there
    a.close()
    b.close()


def test_a_trace_id_another_replica_stores_meanwhile_is_skipped(pg: PostgresBackend,
                                                                scenario: Scenario) -> None:
    """Replica B has inserted trace id `dup` but not committed when replica A's batch (with
    `dup` too) gets there: A waits, skips it once B commits, and its chain has no gap."""
    import psycopg

    snapshots = Snapshots()
    rows = [build_row(Pending(decided(scenario), t, "cfg"), snapshots) for t in ("dup", "mine")]
    store = pg.open()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            store.write(rows, ChainWriter("a"))
        except BaseException as exc:
            failed.append(exc)

    with psycopg.connect(pg.location) as b:
        b.execute("INSERT INTO records (trace_id, at, policy_hash, outcome, writer, seq, prev, "
                  "hash, body) VALUES ('dup', '2026', 'p', 'routed', 'b', 1, '', 'h', %s)",
                  (zlib.compress(b"{}"),))
        thread = threading.Thread(target=write)
        thread.start()
        for _ in range(1000):  # until A waits for B's row lock
            if pg.one("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND application_name = 'unhardcoded-records'") == (1,):
                break
            time.sleep(0.01)
        b.commit()
    thread.join()
    assert failed == []
    assert store.duplicates == 1  # type: ignore[attr-defined]
    mine = store.get("mine")
    assert mine is not None and mine.writer == "a" and mine.seq == 1
    links, heads = store.chains()
    assert verify([x for x in links if x.writer == "a"], [h for h in heads if h.writer == "a"],
                  None) == []
    store.close()


# -- opening: clear errors, no password shown ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _with(dsn: str, password: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(dsn)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{host}" if password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, path if path is not None else parts.path,
                       parts.query, ""))


@pytest.mark.parametrize("dsn", [
    "postgresql://router:{secret}@127.0.0.1:{port}/records",  # nothing listens there
    "postgresql://router:{secret}@127.0.0.1:{port}/records?bogus=1",  # not a valid DSN
    "postgres://router:{secret}@127.0.0.1:notaport/records",
    "postgresql://router:{secret}%zz@127.0.0.1:{port}/records",  # libpq quotes the password
    "postgresql://router:{secret}@[127.0.0.1:{port}/records",  # libpq quotes the whole DSN
])
def test_a_store_that_cannot_be_reached_is_a_location_error(dsn: str) -> None:
    require_psycopg()
    with pytest.raises(RecordsError) as err:
        open_store(dsn.format(secret=SECRET, port=_free_port()))
    assert err.value.code == "records.location"
    shown = _refused(err.value)
    assert SECRET not in shown and "router@" not in shown and "router:" not in shown
    assert "postgresql://" in shown  # where, without the credentials


def test_a_missing_database_or_schema_is_a_location_error(pg: PostgresBackend) -> None:
    password = urlsplit(pg.dsn).password or ""
    with pytest.raises(RecordsError) as err:
        open_store(_with(pg.dsn, path="/no_such_database"))
    assert err.value.code == "records.location" and "no_such_database" in str(err.value)
    assert (password and password not in _refused(err.value)) or not password
    with pytest.raises(RecordsError) as err:
        open_store(in_schema(pg.dsn, "no_such_schema"))
    assert err.value.code == "records.location"
    assert (password and password not in _refused(err.value)) or not password


def test_a_wrong_password_is_a_location_error_that_does_not_show_it(
        pg: PostgresBackend) -> None:
    if not urlsplit(pg.dsn).password:
        pytest.skip("the test server takes no password")
    with pytest.raises(RecordsError) as err:
        open_store(_with(pg.dsn, password=SECRET))
    assert err.value.code == "records.location"
    assert SECRET not in _refused(err.value)


def test_a_meta_table_that_is_not_ours_is_refused(backend: Backend) -> None:
    backend.sql("CREATE TABLE meta (id INTEGER, note TEXT)")
    with pytest.raises(RecordsError) as err:
        backend.open()
    assert err.value.code == "records.not_ours"


def test_without_psycopg_a_dsn_names_the_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets when absent
    monkeypatch.delitem(sys.modules, "router.records.postgres", raising=False)
    with pytest.raises(RecordsError) as err:
        open_store(f"postgresql://router:{SECRET}@127.0.0.1/records")
    assert err.value.code == "records.unsupported"
    assert "unhardcoded[postgres]" in _refused(err.value) and SECRET not in _refused(err.value)


def test_the_environment_may_name_a_postgresql_store(pg: PostgresBackend,
                                                     scenario: Scenario) -> None:
    environ = {"UNHARDCODED_RECORDS": pg.location, "HOME": "/nonexistent"}
    assert default_location(environ) == pg.location  # not folded into a path
    writer = recorder(Records.FROM_ENVIRONMENT, environ)
    assert writer is not None
    password = urlsplit(pg.dsn).password
    assert writer.store.where.startswith("postgresql://")
    assert not password or password not in writer.store.where
    writer.submit(Pending(decided(scenario), "from-env", "cfg"))
    writer.close()
    store = pg.open()
    assert store.get("from-env") is not None
    store.close()


def test_route_then_trace_commands_on_a_postgresql_store(pg: PostgresBackend) -> None:
    """The command line records into PostgreSQL and reads it back; the DSN's password is
    never printed."""
    cli = Path(sys.executable).with_name("unhardcoded")
    examples = ROOT / "examples"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ))

    routed = run("route", "--policy", str(examples / "support-tickets.policy.json"),
                 "--request", str(examples / "support-ticket.request.json"), "--json",
                 "--records", pg.location)
    assert routed.returncode == 0, routed.stderr
    trace_id = json.loads(routed.stdout)["trace_id"]
    listed = run("trace", "list", "--records", pg.location)
    assert listed.returncode == 0 and trace_id in listed.stdout, listed.stderr
    shown = run("trace", "show", trace_id, "--json", "--records", pg.location)
    assert json.loads(shown.stdout) == json.loads(routed.stdout)
    verified = run("trace", "verify", "--records", pg.location)
    assert verified.returncode == 0, verified.stderr
    password = urlsplit(pg.dsn).password or ""
    for done in (routed, listed, shown, verified):
        assert not password or password not in done.stdout + done.stderr
