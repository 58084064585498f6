"""The records stores (SQLite, and PostgreSQL when a server is given — see
`tests/records_backends.py`): what is stored is the decision, rebuilt field for field; chains
find tampering; bad stores are clear errors; duplicates are refused; pruning keeps chains
verifiable. Every test that takes `backend` runs against both stores."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from router.records import Pending, Query, RecordsError, Replayer, SqliteStore, verify
from router.records.canonical import canonical, digest
from router.records.row import Snapshots, build_row, decision_summary, outcome_digest
from router.records.store import ChainWriter
from tests.records_backends import Backend
from tests.records_support import decided, live_record, writer
from tests.strategies import Scenario, minimal_scenario, scenarios

MANY = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


_TRACES = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("records") / "records.sqlite3"


FAILED = {"attempts": [], "served_by": None, "usage": None, "cost_usd": None, "cost": None,
          "latency_ms": 1.5, "outcome": "failed",
          "error": {"kind": "timeout", "message": "every hop failed", "status": None,
                    "provider_error": None}}


def _dispatch(s: Scenario) -> dict[str, object] | None:
    return None if s.features.input_tokens % 2 else FAILED


@MANY
@given(scenarios())
def test_the_outcome_digest_hashes_the_summary_as_json_lists(s: Scenario) -> None:
    """`decision_summary` hands its pairs over as tuples (cheaper to build); in both schemas'
    canonical forms they are the same arrays as the lists a stored record reads back as."""
    decision = decided(s)
    summary = decision_summary(decision)
    as_lists = {
        "ranking": [[r.offering_id, list(r.keys)] for r in decision.ranking],
        "selected": decision.selected,
        "cascade": list(decision.cascade),
        "late": {oid: list(p) for oid, p in sorted(decision.rejected_in_view.items())},
    }
    for schema in (1, 2):
        assert canonical(summary, schema) == canonical(as_lists, schema)
        assert outcome_digest(decision, schema) == digest(as_lists, schema)


@MANY
@given(scenarios())
def test_a_stored_decision_rebuilds_to_the_live_record(shared: Path, s: Scenario) -> None:
    """Hundreds of generated decisions: the record read back from the store equals the one the
    live decision produced, proofs and all. (SQLite; `test_every_store_rebuilds_the_live_record`
    runs the same check on every store.)"""
    decision = decided(s)
    w = writer(shared)
    trace = f"t{next(_TRACES)}"
    p = Pending(decision, trace, "cfg", _dispatch(s), "routed")
    w.submit(p)
    w.close()
    store = SqliteStore(shared)
    stored = store.get(trace)
    assert stored is not None
    replayer = Replayer(store)
    assert replayer.replay(stored).status == "same"
    assert replayer.record(stored) == live_record(p)
    assert replayer.record(stored, proofs=False) == live_record(p, proofs=False)
    store.close()


def _fill(backend: Backend, scenario_list: list[Scenario],
          key: bytes | None = None) -> list[str]:
    w = backend.writer(key)
    ids = []
    decisions = {id(s): decided(s) for s in {id(s): s for s in scenario_list}.values()}
    for i, s in enumerate(scenario_list):
        ids.append(f"trace-{i:04d}")
        w.submit(Pending(decisions[id(s)], ids[-1], "cfg"))
    w.close()
    assert w.errors == 0, w.last_error
    return ids


@pytest.fixture(scope="module")
def some() -> list[Scenario]:
    out: list[Scenario] = []
    for n in range(6):
        out.append(minimal_scenario(lambda s, n=n: len(s.catalog) >= 2 + n % 3, seed=n))
    return out


def _verify(backend: Backend, key: bytes | None = None) -> list[str]:
    store = backend.open()
    links, heads = store.chains()
    found = [f"{f.code} {f.trace_id}" for f in verify(links, heads, key)]
    store.close()
    return found


def test_every_store_rebuilds_the_live_record(backend: Backend, some: list[Scenario]) -> None:
    w = backend.writer()
    pending = [Pending(decided(s), f"t{i}", "cfg", _dispatch(s), "routed")
               for i, s in enumerate(some)]
    for p in pending:
        w.submit(p)
    w.close()
    store = backend.open()
    replayer = Replayer(store)
    for p in pending:
        stored = store.get(p.trace_id)
        assert stored is not None
        assert replayer.replay(stored).status == "same"
        assert replayer.record(stored) == live_record(p)
    store.close()


def test_an_untouched_store_verifies(backend: Backend, some: list[Scenario]) -> None:
    _fill(backend, some, key=b"k" * 32)
    assert _verify(backend, b"k" * 32) == []


def _priced(s: Scenario) -> dict[str, object]:
    """A failed dispatch that still cost something small: `1.7e-05` is written differently
    by the two canonical forms."""
    return {**FAILED, "cost_usd": 1.7e-05}


def test_rows_of_schema_1_and_2_verify_and_replay_side_by_side(
        backend: Backend, some: list[Scenario], monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before canonical form 2 keeps verifying and replaying: each row's hash
    and outcome digest are checked in the form of the schema it names."""
    from router.records import row

    with monkeypatch.context() as old:
        old.setattr(row, "ROW_SCHEMA", 1)
        w = backend.writer(b"k" * 32)
        legacy = [Pending(decided(s), f"old{i}", "cfg", _priced(s), "routed",
                          messages=[{"role": "user", "content": "hi"}]) for i, s in enumerate(some)]
        for p in legacy:
            w.submit(p)
        w.close()
    fresh = [Pending(decided(s), f"new{i}", "cfg", _priced(s), "routed",
                     messages=[{"role": "user", "content": "hi"}]) for i, s in enumerate(some)]
    w = backend.writer(b"k" * 32)
    for p in fresh:
        w.submit(p)
    w.close()
    assert _verify(backend, b"k" * 32) == []
    store = backend.open()
    replayer = Replayer(store)
    forms_differ = 0
    for p in legacy + fresh:
        stored = store.get(p.trace_id)
        assert stored is not None
        assert stored.body["schema"] == (1 if p in legacy else 2)
        assert replayer.replay(stored).status == "same"
        assert replayer.record(stored) == live_record(p)
        forms_differ += canonical(stored.body, 1) != canonical(stored.body, 2)
    assert forms_differ > 0  # the two forms were both exercised, not the same bytes twice
    stored = store.get("new1")
    assert stored is not None
    store.close()
    claimed = dict(stored.body, schema=1)  # a row that claims the other form is altered
    backend.sql("UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(claimed)),
                "new1")
    assert _verify(backend, b"k" * 32) == ["record.altered new1"]


def test_an_altered_record_is_named(backend: Backend, some: list[Scenario]) -> None:
    ids = _fill(backend, some)
    store = backend.open()
    stored = store.get(ids[2])
    assert stored is not None
    store.close()
    body = dict(stored.body, outcome="ok")
    backend.sql("UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(body)),
                ids[2])
    assert _verify(backend) == [f"record.altered {ids[2]}"]


def test_a_removed_record_is_named(backend: Backend, some: list[Scenario]) -> None:
    ids = _fill(backend, some)
    backend.sql("DELETE FROM records WHERE trace_id=?", ids[3])
    assert _verify(backend) == [f"record.missing {ids[4]}"]
    backend.sql("DELETE FROM records WHERE trace_id=?", ids[-1])  # the last one
    assert f"record.missing {ids[-2]}" in _verify(backend)


def test_an_inserted_record_is_named(backend: Backend, some: list[Scenario]) -> None:
    ids = _fill(backend, some)
    row = backend.one("SELECT at, policy_hash, outcome, writer, seq, prev, hash, body "
                      "FROM records WHERE trace_id=?", ids[1])
    backend.sql("UPDATE records SET seq = -seq - 1 WHERE writer=? AND seq > ?", row[3], row[4])
    backend.sql("UPDATE records SET seq = -seq WHERE seq < 0")
    backend.sql("INSERT INTO records (trace_id, at, policy_hash, outcome, writer, seq, prev, "
                "hash, body) VALUES ('forged', ?, ?, ?, ?, ?, ?, ?, ?)",
                row[0], row[1], row[2], row[3], row[4] + 1, row[6], row[6], row[7])
    found = _verify(backend)
    assert "record.altered forged" in found or "record.inserted forged" in found
    assert found  # the chain no longer matches its head either


def test_a_forged_head_fails_its_signature(backend: Backend, some: list[Scenario]) -> None:
    _fill(backend, some, key=b"s" * 32)
    assert _verify(backend, b"another key") == ["head.bad_signature None"]


def test_replay_reports_a_stored_outcome_that_differs(backend: Backend,
                                                       some: list[Scenario]) -> None:
    ids = _fill(backend, some)
    store = backend.open()
    stored = store.get(ids[0])
    assert stored is not None
    store.close()
    body = dict(stored.body)
    body["decision"] = dict(body["decision"], digest="0" * 64, selected="someone/else")
    other = dict(body, ruleset_version="rules-0")
    backend.sql("UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(body)),
                ids[0])
    backend.sql("UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(other)),
                ids[1])
    replayer = Replayer(backend.open())
    got = replayer.replay(replayer.store.get(ids[0]))  # type: ignore[arg-type]
    assert got.status == "differs" and "winner someone/else" in got.detail
    assert "ranking head" not in got.detail  # only the winner and the digest were changed
    assert replayer.replay(replayer.store.get(ids[1])).status == "other_ruleset"  # type: ignore[arg-type]
    with pytest.raises(RecordsError) as err:
        replayer.record(replayer.store.get(ids[0]))  # type: ignore[arg-type]
    assert err.value.code == "records.not_reproducible"
    replayer.store.close()


def test_queries_filter_and_page(backend: Backend, some: list[Scenario]) -> None:
    ids = _fill(backend, some * 200)  # 1,200 records: more than one page
    store = backend.open()
    assert [r.trace_id for r in store.iterate(Query())] == ids
    assert [r.trace_id for r in store.iterate(Query(newest_first=True))] == ids[::-1]
    assert [r.trace_id for r in store.iterate(Query(newest_first=True, limit=3))] == \
        ids[::-1][:3]
    assert [r.trace_id for r in store.iterate(Query(limit=700))] == ids[:700]
    one = store.get(ids[0])
    assert one is not None
    same_policy = [r.trace_id for r in store.iterate(Query(policy=one.policy_hash[:12]))]
    assert ids[0] in same_policy and all(
        store.get(t).policy_hash == one.policy_hash for t in same_policy)  # type: ignore[union-attr]
    assert [r.trace_id for r in store.iterate(Query(policy="no_such%"))] == []
    assert list(store.iterate(Query(since="2999-01-01"))) == []
    assert len(list(store.iterate(Query(until="2999-01-01", outcome="routed")))) == len(ids)
    store.close()


def test_a_repeated_trace_id_is_stored_once(backend: Backend, some: list[Scenario]) -> None:
    """A trace id already stored, or repeated within one batch, is refused and counted; the
    chain stays whole."""
    snapshots = Snapshots()
    rows = [build_row(Pending(decided(s), f"d{i}", "cfg"), snapshots)
            for i, s in enumerate(some[:3])]
    store = backend.open()
    store.write(rows[:2], ChainWriter("w", b"k" * 32))
    again = build_row(Pending(decided(some[4]), "d0", "cfg"), snapshots)  # another body
    store.write([again, rows[2], rows[2]], ChainWriter("w", b"k" * 32))
    assert store.duplicates == 2  # type: ignore[attr-defined]
    assert [r.trace_id for r in store.iterate(Query())] == ["d0", "d1", "d2"]
    assert [r.seq for r in store.iterate(Query())] == [1, 2, 3]
    assert store.get("d0").body == rows[0].body  # type: ignore[union-attr]  # the first kept
    store.close()
    assert _verify(backend, b"k" * 32) == []


def test_pruning_keeps_the_chain_verifiable(backend: Backend, some: list[Scenario]) -> None:
    key = b"p" * 32
    _fill(backend, some, key)
    store = backend.open()
    before = store.size()
    report = store.prune(dt.datetime(2999, 1, 1, tzinfo=dt.UTC), None, key)
    assert report.records == len(some) and report.objects > 0
    assert list(store.iterate(Query())) == []
    assert backend.one("SELECT COUNT(*) FROM objects")[0] == 0
    assert store.size() <= before
    store.close()
    assert _verify(backend, key) == []
    _fill(backend, some, key)  # a new writer after pruning
    assert _verify(backend, key) == []


def test_pruning_to_a_size_keeps_the_newest(backend: Backend, some: list[Scenario]) -> None:
    key = b"p" * 32
    ids = _fill(backend, some * 5, key)
    store = backend.open()
    sizes = [len(zlib.compress(canonical(r.body), 6)) + 200 for r in store.iterate(Query())]
    budget = sum(sizes[-10:])  # room for the ten newest
    report = store.prune(None, budget, key)
    assert report.records == len(ids) - 10
    assert [r.trace_id for r in store.iterate(Query())] == ids[-10:]
    assert store.prune(None, budget, key).records == 0  # already fits
    store.close()
    assert _verify(backend, key) == []


@pytest.mark.parametrize("content, code", [
    (b"hello, this is a text file, not a database" * 10, "records.not_ours"),
    (b"SQLite format 3\x00" + b"\x00" * 84 + b"\xff" * 4000, "records.corrupt"),
])
def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path, content: bytes,
                                               code: str) -> None:
    path = tmp_path / "r.sqlite3"
    path.write_bytes(content)
    with pytest.raises(RecordsError) as err:
        SqliteStore(path)
    assert err.value.code == code
    assert path.read_bytes() == content  # nothing written over it


def test_another_applications_database_is_refused(backend: Backend) -> None:
    backend.sql("CREATE TABLE users (name TEXT)")
    with pytest.raises(RecordsError) as err:
        backend.open()
    assert err.value.code == "records.not_ours"
    assert backend.one("SELECT COUNT(*) FROM users") == (0,)  # and left alone


def test_a_newer_schema_is_refused_with_a_message(backend: Backend) -> None:
    backend.open().close()
    backend.sql("UPDATE meta SET value='9' WHERE key='schema'")
    with pytest.raises(RecordsError) as err:
        backend.open()
    assert err.value.code == "records.schema" and "newer" in str(err.value)


def test_a_locked_store_is_a_clear_error(backend: Backend, some: list[Scenario]) -> None:
    store = backend.open(timeout_s=0.2)
    row = build_row(Pending(decided(some[0]), "x", "cfg"), Snapshots())
    with backend.hold_lock(), pytest.raises(RecordsError) as err:
        store.write([row], ChainWriter("w"))
    assert err.value.code == "records.locked"
    store.write([row], ChainWriter("w"))  # and works once the lock is gone
    assert store.get("x") is not None
    store.close()


def test_a_damaged_or_hostile_stored_value_is_a_clear_error(backend: Backend,
                                                             some: list[Scenario]) -> None:
    """A store can come from elsewhere: a body that is not ours, a deflate bomb, JSON nested
    too deep are each `records.corrupt` / refused, never a traceback or unbounded memory."""
    from router.records.canonical import Unreadable, unpack

    ids = _fill(backend, some)
    backend.sql("UPDATE records SET body=? WHERE trace_id=?", b"not deflated", ids[0])
    backend.sql("UPDATE records SET body=? WHERE trace_id=?",
                zlib.compress(b"[" * 100_000 + b"]" * 100_000), ids[1])
    store = backend.open()
    for trace_id in ids[:2]:
        with pytest.raises(RecordsError) as err:
            store.get(trace_id)
        assert err.value.code == "records.corrupt" and trace_id in str(err.value)
    third = store.get(ids[2])
    assert third is not None
    policy = third.body["policy"]
    backend.sql("UPDATE objects SET body=? WHERE key=?", zlib.compress(b"{no json"), policy)
    with pytest.raises(RecordsError) as err:
        store.load_object(policy)
    assert err.value.code == "records.corrupt" and policy in str(err.value)
    store.close()
    bomb = zlib.compress(b"0" * 10_000_000)
    with pytest.raises(Unreadable, match="inflates past"):
        unpack(bomb, limit=1_000_000)


def test_opening_a_store_twice_in_one_process_keeps_the_writers_wal(tmp_path: Path) -> None:
    """Peeking at the file outside SQLite (and closing that descriptor) dropped the writer's
    POSIX locks; another process's connection then took itself for the last one and deleted
    the live WAL file, and every later write was invisible to other processes."""
    import subprocess
    import sys

    from router.records.sqlite import SqliteStore

    path = tmp_path / "records.sqlite3"
    writer = SqliteStore(path)
    reader = SqliteStore(path)  # e.g. the service's trace reads beside its records writer
    reader.close()
    probe = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
             "print(c.execute(\"SELECT count(*) FROM meta WHERE key='probe'\").fetchone()[0]);"
             " c.close()")
    assert subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip() == "0"
    writer._conn.execute("INSERT INTO meta VALUES ('probe', 'written after')")
    seen = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()
    writer.close()
    assert seen == "1"
