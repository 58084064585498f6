"""The embedded records store: one SQLite file in WAL mode, no server.

Tables: `meta` (application, schema), `objects` (content-addressed, deflated JSON), `records`
(one row per decision, deflated canonical JSON plus the columns queries filter on), `refs`
(which objects a record uses, for pruning) and `heads` (each writer's chain head).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from router.records.canonical import Unreadable, unpack
from router.records.chain import Head, Link, sealed, sign
from router.records.row import Row, utc_text
from router.records.store import (
    APPLICATION,
    STORE_SCHEMA,
    ChainWriter,
    PruneReport,
    Query,
    RecordsError,
    StoredRecord,
    objects_of,
    packed_objects,
    query_filter,
    record_body,
    stored_record,
)

BUSY_TIMEOUT_S = 30.0
_KEYS_PER_QUERY = 500  # bound parameters per query (SQLite allowed 999 before 3.32)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, kind TEXT NOT NULL,
                                    body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    policy_name TEXT,
    selected TEXT,
    served_by TEXT,
    outcome TEXT NOT NULL,
    writer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (writer, seq));
CREATE INDEX IF NOT EXISTS records_at ON records (at);
CREATE INDEX IF NOT EXISTS records_policy ON records (policy_hash);
CREATE TABLE IF NOT EXISTS refs (record INTEGER NOT NULL, key TEXT NOT NULL,
                                 PRIMARY KEY (record, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_key ON refs (key);
CREATE TABLE IF NOT EXISTS heads (writer TEXT PRIMARY KEY, seq INTEGER NOT NULL,
                                  hash TEXT NOT NULL, mac TEXT,
                                  base_seq INTEGER NOT NULL DEFAULT 0,
                                  base_hash TEXT NOT NULL DEFAULT '');
"""
_COLUMNS = "trace_id, at, policy_hash, policy_name, selected, served_by, outcome, writer, " \
           "seq, hash, body"


class SqliteStore:
    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.where = str(path)
        self._lock = threading.Lock()
        self.duplicates = 0  # rows refused because their trace id was already stored
        self._conn = self._open()

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        where = self.where
        if self.path.is_dir():
            raise RecordsError("records.location", where, "is a directory",
                               "name a file, e.g. `records.sqlite3`")
        # No file of ours is opened outside SQLite to peek at its header: closing any
        # descriptor of a file drops every POSIX lock this process holds on it, a writer's
        # connection's included, and another process would then delete the live WAL file.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError("records.location", where, f"cannot be opened: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._check_or_create(conn)
        except RecordsError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            if (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_NOTADB") \
                    and not _sqlite_header(self.path):  # safe to peek: no connection can use it
                raise RecordsError("records.not_ours", where,
                                   "is not a records store (not a SQLite database)",
                                   "name another file, or move this one away") from None
            raise _classified(exc, where) from None
        return conn

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise RecordsError("records.not_ours", self.where,
                               "is a SQLite database, but not a records store",
                               "name another file")
        if "meta" in tables:
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError:
                meta = {}  # a `meta` table of another shape: someone else's
            if meta.get("application") != APPLICATION:
                raise RecordsError("records.not_ours", self.where,
                                   "is a SQLite database, but not a records store",
                                   "name another file")
            schema = int(meta.get("schema", "0"))
            if schema > STORE_SCHEMA:
                raise RecordsError("records.schema", self.where,
                                   f"was written by a newer router (store schema {schema}; "
                                   f"this one reads {STORE_SCHEMA})",
                                   "upgrade unhardcoded to read it")
            if schema < STORE_SCHEMA:
                raise RecordsError("records.schema", self.where,
                                   f"has store schema {schema}; this router reads "
                                   f"{STORE_SCHEMA}, with no migration from it",
                                   "read it with the release that wrote it, or start a new "
                                   "store")
            conn.execute("PRAGMA quick_check(1)").fetchone()
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('application', ?)", (APPLICATION,))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(STORE_SCHEMA),))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def after_fork(self) -> None:
        """In a forked child: a connection of its own (the parent's is left alone: SQLite
        connections must not cross a fork)."""
        self._lock = threading.Lock()
        self._conn = self._open()

    # -- writing ------------------------------------------------------------------------------

    def write(self, rows: Sequence[Row], writer: ChainWriter) -> None:
        if not rows:
            return
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._write(conn, rows, writer)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _classified(exc, self.where) from None

    def _write(self, conn: sqlite3.Connection, rows: Sequence[Row], w: ChainWriter) -> None:
        head = conn.execute("SELECT seq, hash, base_seq, base_hash FROM heads WHERE writer=?",
                            (w.writer,)).fetchone()
        seq, prev, base_seq, base_hash = head if head else (0, "", 0, "")
        taken = {r[0] for r in conn.execute(
            f"SELECT trace_id FROM records WHERE trace_id IN ({','.join('?' * len(rows))})",
            [r.trace_id for r in rows])}
        fresh: list[Row] = []
        for row in rows:
            if row.trace_id in taken:  # a trace id is written once; a repeat is refused
                self.duplicates += 1
                continue
            taken.add(row.trace_id)
            fresh.append(row)
        self._put_objects(conn, fresh)
        refs: list[tuple[int | None, str]] = []
        for row in fresh:
            seq += 1
            digest, blob = sealed(prev, row.body)
            cur = conn.execute(
                "INSERT INTO records (trace_id, at, policy_hash, policy_name, selected, "
                "served_by, outcome, writer, seq, prev, hash, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.trace_id, row.at, row.policy_hash, row.policy_name, row.selected,
                 row.served_by, row.outcome, w.writer, seq, prev, digest, blob))
            refs.extend((cur.lastrowid, k) for k in dict.fromkeys(row.objects))
            prev = digest
        if refs:  # one statement per batch, not per record
            conn.executemany("INSERT OR IGNORE INTO refs VALUES (?, ?)", refs)
        mac = sign(w.key, w.writer, seq, prev, base_seq, base_hash) if w.key else None
        conn.execute("INSERT INTO heads (writer, seq, hash, mac, base_seq, base_hash) "
                     "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (writer) DO UPDATE SET "
                     "seq=excluded.seq, hash=excluded.hash, mac=excluded.mac",
                     (w.writer, seq, prev, mac, base_seq, base_hash))

    @staticmethod
    def _put_objects(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        """The objects the rows reference that the store lacks, looked up in one query per
        batch (not remembered between batches: another process may have pruned them)."""
        wanted = objects_of(rows)
        keys = list(wanted)
        have: set[str] = set()
        for i in range(0, len(keys), _KEYS_PER_QUERY):
            part = keys[i:i + _KEYS_PER_QUERY]
            have.update(r[0] for r in conn.execute(
                f"SELECT key FROM objects WHERE key IN ({','.join('?' * len(part))})", part))
        new = packed_objects(wanted, have)
        if new:
            conn.executemany("INSERT INTO objects VALUES (?, ?, ?)", new)

    # -- reading ------------------------------------------------------------------------------

    def get(self, trace_id: str) -> StoredRecord | None:
        rows = self._select(f"SELECT {_COLUMNS} FROM records WHERE trace_id=?", (trace_id,))
        return rows[0] if rows else None

    def iterate(self, query: Query) -> Iterator[StoredRecord]:
        where, args = query_filter(query, "?")
        order = "DESC" if query.newest_first else "ASC"
        sql = f"SELECT {_COLUMNS} FROM records{where} ORDER BY at {order}, id {order}"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        last_at, last_id, page = None, None, 500
        # Paged by (at, id) so a long iteration holds no read transaction open.
        yielded = 0
        while True:
            extra, more = "", list(args)
            if last_at is not None:
                cmp = "<" if query.newest_first else ">"
                extra = (" AND " if where else " WHERE ") + \
                    f"(at {cmp} ? OR (at = ? AND id {cmp} ?))"
                more += [last_at, last_at, last_id]
            sql = (f"SELECT {_COLUMNS}, id FROM records{where}{extra} "
                   f"ORDER BY at {order}, id {order} LIMIT {page}")
            with self._lock:
                try:
                    raw = self._conn.execute(sql, more).fetchall()
                except sqlite3.Error as exc:
                    raise _classified(exc, self.where) from None
            for r in raw:
                if query.limit is not None and yielded >= query.limit:
                    return
                yield stored_record(r[:-1], self.where)
                yielded += 1
            if len(raw) < page:
                return
            last_at, last_id = raw[-1][1], raw[-1][-1]

    def load_object(self, key: str) -> Any:
        with self._lock:
            try:
                found = self._conn.execute("SELECT body FROM objects WHERE key=?",
                                           (key,)).fetchone()
            except sqlite3.Error as exc:
                raise _classified(exc, self.where) from None
        if found is None:
            raise RecordsError("records.missing_object", self.where,
                               f"object `{key}` is referenced but not stored",
                               "the store was altered or pruned by hand; run "
                               "`unhardcoded trace verify`")
        try:
            return unpack(found[0])
        except Unreadable as exc:
            raise RecordsError("records.corrupt", self.where, f"object `{key}`: {exc}") from None

    def chains(self) -> tuple[Iterator[Link], list[Head]]:
        """Heads and records from one read snapshot (its own connection), so writers that
        append meanwhile never show up as a broken chain."""
        try:
            reader = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                     isolation_level=None, check_same_thread=False)
            reader.execute("BEGIN")
            heads = [Head(*r) for r in reader.execute(
                "SELECT writer, seq, hash, mac, base_seq, base_hash FROM heads ORDER BY writer")]
        except sqlite3.Error as exc:
            raise _classified(exc, self.where) from None

        def links() -> Iterator[Link]:
            try:
                rows = reader.execute("SELECT trace_id, writer, seq, prev, hash, body "
                                      "FROM records ORDER BY writer, seq")
                for t, w, s, p, h, b in rows:
                    yield Link(t, w, s, p, h, record_body(b, self.where, t))
            except sqlite3.Error as exc:
                raise _classified(exc, self.where) from None
            finally:
                reader.close()

        return links(), heads

    def _select(self, sql: str, args: Sequence[object]) -> list[StoredRecord]:
        with self._lock:
            try:
                raw = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _classified(exc, self.where) from None
        return [stored_record(r, self.where) for r in raw]

    # -- retention ----------------------------------------------------------------------------

    def prune(self, older_than: dt.datetime | None, max_bytes: int | None,
              key: bytes | None) -> PruneReport:
        """Delete records older than a time and/or the oldest until the records fit in
        `max_bytes`; objects no record references go in the same transaction. Each writer's
        chain then starts after its last pruned record (its head says so, signed again)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    report = self._prune(conn, older_than, max_bytes, key)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return report
            except sqlite3.Error as exc:
                raise _classified(exc, self.where) from None

    def _prune(self, conn: sqlite3.Connection, older_than: dt.datetime | None,
               max_bytes: int | None, key: bytes | None) -> PruneReport:
        """Per writer, a prefix of its chain: `older_than` stops at the writer's first record
        at or after the time (clocks of several writers need not agree), `max_bytes` keeps the
        newest records by insertion order."""
        writers = [w for (w,) in conn.execute("SELECT DISTINCT writer FROM records")]
        cut: dict[str, int] = {}
        if older_than is not None:
            when = utc_text(older_than)
            for w in writers:
                first_kept, last = conn.execute(
                    "SELECT MIN(CASE WHEN at >= ? THEN seq END), MAX(seq) FROM records "
                    "WHERE writer=?", (when, w)).fetchone()
                upto = last if first_kept is None else first_kept - 1
                if upto:
                    cut[w] = upto
        if max_bytes is not None:
            total = 0
            for rid, size in conn.execute(
                    "SELECT id, length(body) FROM records ORDER BY id DESC"):
                total += size + 200  # the row's columns and index entries, roughly
                if total > max_bytes:
                    for w, seq in conn.execute("SELECT writer, MAX(seq) FROM records "
                                               "WHERE id <= ? GROUP BY writer", (rid,)):
                        cut[w] = max(cut.get(w, 0), seq)
                    break
        n = 0
        for writer, seq in sorted(cut.items()):
            found = conn.execute("SELECT hash FROM records WHERE writer=? AND seq=?",
                                 (writer, seq)).fetchone()
            head = conn.execute("SELECT seq, hash FROM heads WHERE writer=?",
                                (writer,)).fetchone()
            if found is None or head is None:
                continue
            mac = sign(key, writer, head[0], head[1], seq, found[0]) if key else None
            conn.execute("UPDATE heads SET base_seq=?, base_hash=?, mac=? WHERE writer=?",
                         (seq, found[0], mac, writer))
            conn.execute("DELETE FROM refs WHERE record IN (SELECT id FROM records "
                         "WHERE writer=? AND seq <= ?)", (writer, seq))
            n += conn.execute("DELETE FROM records WHERE writer=? AND seq <= ?",
                              (writer, seq)).rowcount
        if n == 0:
            return PruneReport(0, 0)
        gone = conn.execute("DELETE FROM objects WHERE key NOT IN (SELECT key FROM refs)"
                            ).rowcount
        return PruneReport(n, gone)

    def size(self) -> int:
        with self._lock:
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            page = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(page)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()




def _sqlite_header(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _classified(exc: sqlite3.Error, where: str) -> RecordsError:
    """By SQLite's result code, never by message text."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return RecordsError("records.locked", where, f"is locked by another process ({exc})",
                            "wait, or stop the process that holds it")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return RecordsError("records.corrupt", where, f"is damaged ({exc})",
                            "restore it from a backup, or move it away to start a new one")
    return RecordsError("records.io", where, f"{exc}")
