"""The records store (SQLite): what is stored is the decision, rebuilt field for field; chains
find tampering; bad stores are clear errors; many writers lose nothing; pruning keeps chains
verifiable."""

from __future__ import annotations

import itertools
import sqlite3
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from router.records import Pending, Query, RecordsError, Replayer, SqliteStore, verify
from router.records.canonical import canonical
from tests.records_support import decided, live_record, writer
from tests.strategies import Scenario, scenarios

MANY = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


_TRACES = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("records") / "records.sqlite3"


def _dispatch(s: Scenario) -> dict[str, object] | None:
    if s.features.input_tokens % 2:
        return None
    return {"attempts": [], "served_by": None, "usage": None, "cost_usd": None, "cost": None,
            "latency_ms": 1.5, "outcome": "failed",
            "error": {"kind": "timeout", "message": "every hop failed", "status": None,
                      "provider_error": None}}


@MANY
@given(scenarios())
def test_a_stored_decision_rebuilds_to_the_live_record(shared: Path, s: Scenario) -> None:
    """Hundreds of generated decisions: the record read back from the store equals the one the
    live decision produced, proofs and all."""
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


def _fill(path: Path, scenario_list: list[Scenario], key: bytes | None = None) -> list[str]:
    w = writer(path, key)
    ids = []
    decisions = {id(s): decided(s) for s in scenario_list}
    for i, s in enumerate(scenario_list):
        ids.append(f"trace-{i:04d}")
        w.submit(Pending(decisions[id(s)], ids[-1], "cfg"))
    w.close()
    return ids


@pytest.fixture(scope="module")
def some() -> list[Scenario]:
    from hypothesis import find

    out: list[Scenario] = []
    for n in range(6):
        out.append(find(scenarios(), lambda s, n=n: len(s.catalog) >= 2 + n % 3))
    return out


def _verify(path: Path, key: bytes | None = None) -> list[str]:
    store = SqliteStore(path)
    links, heads = store.chains()
    found = [f"{f.code} {f.trace_id}" for f in verify(links, heads, key)]
    store.close()
    return found


def _sql(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_an_untouched_store_verifies(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    _fill(path, some, key=b"k" * 32)
    assert _verify(path, b"k" * 32) == []


def test_an_altered_record_is_named(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some)
    store = SqliteStore(path)
    stored = store.get(ids[2])
    assert stored is not None
    store.close()
    body = dict(stored.body, outcome="ok")
    _sql(path, "UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(body)),
         ids[2])
    assert _verify(path) == [f"record.altered {ids[2]}"]


def test_a_removed_record_is_named(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some)
    _sql(path, "DELETE FROM records WHERE trace_id=?", ids[3])
    assert _verify(path) == [f"record.missing {ids[4]}"]
    _sql(path, "DELETE FROM records WHERE trace_id=?", ids[-1])  # the last one
    assert f"record.missing {ids[-2]}" in _verify(path)


def test_an_inserted_record_is_named(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some)
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT at, policy_hash, outcome, writer, seq, prev, hash, body "
                       "FROM records WHERE trace_id=?", (ids[1],)).fetchone()
    conn.execute("UPDATE records SET seq = -seq - 1 WHERE writer=? AND seq > ?",
                 (row[3], row[4]))
    conn.execute("UPDATE records SET seq = -seq WHERE seq < 0")
    conn.execute("INSERT INTO records (trace_id, at, policy_hash, outcome, writer, seq, prev, "
                 "hash, body) VALUES ('forged', ?, ?, ?, ?, ?, ?, ?, ?)",
                 (row[0], row[1], row[2], row[3], row[4] + 1, row[6], row[6], row[7]))
    conn.commit()
    conn.close()
    found = _verify(path)
    assert "record.altered forged" in found or "record.inserted forged" in found
    assert found  # the chain no longer matches its head either


def test_a_forged_head_fails_its_signature(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    _fill(path, some, key=b"s" * 32)
    assert _verify(path, b"another key") == ["head.bad_signature None"]


def test_replay_reports_a_stored_outcome_that_differs(tmp_path: Path,
                                                       some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some)
    store = SqliteStore(path)
    stored = store.get(ids[0])
    assert stored is not None
    body = dict(stored.body)
    body["decision"] = dict(body["decision"], digest="0" * 64, selected="someone/else")
    other = dict(body, ruleset_version="rules-0")
    _sql(path, "UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(body)),
         ids[0])
    _sql(path, "UPDATE records SET body=? WHERE trace_id=?", zlib.compress(canonical(other)),
         ids[1])
    replayer = Replayer(SqliteStore(path))
    got = replayer.replay(replayer.store.get(ids[0]))  # type: ignore[arg-type]
    assert got.status == "differs" and "winner someone/else" in got.detail
    assert replayer.replay(replayer.store.get(ids[1])).status == "other_ruleset"  # type: ignore[arg-type]
    with pytest.raises(RecordsError) as err:
        replayer.record(replayer.store.get(ids[0]))  # type: ignore[arg-type]
    assert err.value.code == "records.not_reproducible"


def test_queries_filter_and_page(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some * 200)  # 1,200 records: more than one page
    store = SqliteStore(path)
    assert [r.trace_id for r in store.iterate(Query())] == ids
    assert [r.trace_id for r in store.iterate(Query(newest_first=True, limit=3))] == \
        ids[::-1][:3]
    one = store.get(ids[0])
    assert one is not None
    same_policy = [r.trace_id for r in store.iterate(Query(policy=one.policy_hash[:12]))]
    assert ids[0] in same_policy and all(
        store.get(t).policy_hash == one.policy_hash for t in same_policy)  # type: ignore[union-attr]
    assert list(store.iterate(Query(since="2999-01-01"))) == []
    store.close()


def test_pruning_keeps_the_chain_verifiable(tmp_path: Path, some: list[Scenario]) -> None:
    import datetime as dt

    path = tmp_path / "r.sqlite3"
    key = b"p" * 32
    _fill(path, some, key)
    store = SqliteStore(path)
    before = store.size()
    report = store.prune(dt.datetime(2999, 1, 1, tzinfo=dt.UTC), None, key)
    assert report.records == len(some) and report.objects > 0
    assert list(store.iterate(Query())) == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0] == 0
    conn.close()
    assert store.size() <= before
    store.close()
    assert _verify(path, key) == []
    _fill(path, some, key)  # a new writer after pruning
    assert _verify(path, key) == []


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


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _sql(path, "CREATE TABLE users (name TEXT)")
    with pytest.raises(RecordsError) as err:
        SqliteStore(path)
    assert err.value.code == "records.not_ours"


def test_a_newer_schema_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    SqliteStore(path).close()
    _sql(path, "UPDATE meta SET value='9' WHERE key='schema'")
    with pytest.raises(RecordsError) as err:
        SqliteStore(path)
    assert err.value.code == "records.schema" and "newer" in str(err.value)


def test_a_locked_store_is_a_clear_error(tmp_path: Path, some: list[Scenario]) -> None:
    path = tmp_path / "r.sqlite3"
    store = SqliteStore(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    from router.records.row import Snapshots, build_row
    from router.records.store import ChainWriter

    row = build_row(Pending(decided(some[0]), "x", "cfg"), Snapshots())
    with pytest.raises(RecordsError) as err:
        store.write([row], ChainWriter("w"))
    assert err.value.code == "records.locked"
    holder.execute("ROLLBACK")
    holder.close()
    store.write([row], ChainWriter("w"))  # and works once the lock is gone
    assert store.get("x") is not None
    store.close()


def test_a_damaged_or_hostile_stored_value_is_a_clear_error(tmp_path: Path,
                                                             some: list[Scenario]) -> None:
    """A store can come from elsewhere: a body that is not ours, a deflate bomb, JSON nested
    too deep are each `records.corrupt` / refused, never a traceback or unbounded memory."""
    from router.records.canonical import Unreadable, unpack

    path = tmp_path / "r.sqlite3"
    ids = _fill(path, some)
    _sql(path, "UPDATE records SET body=? WHERE trace_id=?", b"not deflated", ids[0])
    _sql(path, "UPDATE records SET body=? WHERE trace_id=?",
         zlib.compress(b"[" * 100_000 + b"]" * 100_000), ids[1])
    store = SqliteStore(path)
    for trace_id in ids[:2]:
        with pytest.raises(RecordsError) as err:
            store.get(trace_id)
        assert err.value.code == "records.corrupt" and trace_id in str(err.value)
    assert store.get(ids[2]) is not None
    store.close()
    bomb = zlib.compress(b"0" * 10_000_000)
    with pytest.raises(Unreadable, match="inflates past"):
        unpack(bomb, limit=1_000_000)
