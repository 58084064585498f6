"""The shared records store: PostgreSQL (psycopg 3), for several router replicas writing to one
store. The same tables and semantics as `records.sqlite`: `meta`, `objects`, `records`, `refs`,
`heads`, in the connection's current schema (a dedicated database, or a schema named by
`options=-csearch_path=NAME` in the DSN).

Concurrency: a batch is one transaction. It first locks its writer's head row (`SELECT … FOR
UPDATE`, after creating it if new), so a chain is appended by one transaction at a time; new
objects go in sorted by key with `ON CONFLICT DO NOTHING` (replicas writing the same policy or
catalog at once neither fail nor deadlock); a trace id already stored is skipped. `prune` locks
the `heads` table (EXCLUSIVE), which waits for the batches in flight and holds new ones back
until it commits, so chain bases and object collection never race a writer. `chains` reads
heads and records in one REPEATABLE READ snapshot on a connection of its own, so `verify`
while replicas write sees no half-appended chain.

Errors are classified by SQLSTATE (psycopg's exception classes), never by message text, and no
message or location ever holds the DSN's password.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict

from router.common.forks import in_child_after_fork
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

LOCK_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
_RETRIES = 5  # a batch that deadlocked or met a concurrent duplicate is tried again
_SETUP_LOCK = 0x756E686172646364  # pg_advisory_xact_lock key: one replica creates the tables
_TABLES = ("meta", "objects", "records", "refs", "heads")
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (key TEXT COLLATE "C" PRIMARY KEY, kind TEXT NOT NULL,
                      body BYTEA NOT NULL);
CREATE TABLE records (
    id BIGSERIAL PRIMARY KEY,
    trace_id TEXT COLLATE "C" NOT NULL UNIQUE,
    at TEXT COLLATE "C" NOT NULL,
    policy_hash TEXT COLLATE "C" NOT NULL,
    policy_name TEXT,
    selected TEXT,
    served_by TEXT,
    outcome TEXT NOT NULL,
    writer TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    body BYTEA NOT NULL,
    UNIQUE (writer, seq));
CREATE INDEX records_at ON records (at, id);
CREATE INDEX records_policy ON records (policy_hash);
CREATE TABLE refs (record BIGINT NOT NULL, key TEXT COLLATE "C" NOT NULL,
                   PRIMARY KEY (record, key));
CREATE INDEX refs_key ON refs (key);
CREATE TABLE heads (writer TEXT COLLATE "C" PRIMARY KEY, seq BIGINT NOT NULL,
                    hash TEXT NOT NULL, mac TEXT,
                    base_seq BIGINT NOT NULL DEFAULT 0,
                    base_hash TEXT NOT NULL DEFAULT '')
"""
_COLUMNS = "trace_id, at, policy_hash, policy_name, selected, served_by, outcome, writer, " \
           "seq, hash, body"
_PAGE = 500


class _Again(Exception):
    """The batch met another transaction (a deadlock, a duplicate written meanwhile)."""


class PostgresStore:
    def __init__(self, dsn: str, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.lock_timeout_s = lock_timeout_s
        self.where, self._secret = public_location(dsn)
        self._lock = threading.Lock()
        self.duplicates = 0  # rows refused because their trace id was already stored
        self._conn: psycopg.Connection[Any] | None = None
        self._conn = self._connect()
        try:
            self._check_or_create(self._conn)
        except BaseException:
            self._conn.close()
            raise
        in_child_after_fork(self)

    # -- opening ------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        hint = "postgresql://USER:PASSWORD@HOST:PORT/DBNAME (docs/records.md)"
        try:
            params = conninfo_to_dict(self.dsn)
        except psycopg.Error:  # libpq's message quotes the DSN, password and all: not shown
            raise RecordsError("records.location", self.where,
                               "is not a valid PostgreSQL DSN", hint) from None
        try:
            extra: dict[str, Any] = {"application_name": "unhardcoded-records"}
            if "connect_timeout" not in params:
                extra["connect_timeout"] = CONNECT_TIMEOUT_S
            conn = psycopg.connect(self.dsn, autocommit=True, **extra)
        except psycopg.Error as exc:
            raise RecordsError("records.location", self.where,
                               f"cannot connect: {self._scrub(exc)}",
                               f"check the DSN ({hint}) and that the server is up") from None
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)",
                         (f"{max(1, round(self.lock_timeout_s * 1000))}ms",))
        except psycopg.Error as exc:
            conn.close()
            raise self._classified(exc) from None
        return conn

    def _check_or_create(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                tables = {r[0] for r in conn.execute(
                    "SELECT c.relname FROM pg_class c WHERE c.relnamespace = "
                    "to_regnamespace(current_schema()) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')")}
                if tables and "meta" not in tables:
                    raise self._not_ours()
                if "meta" in tables:
                    self._check(conn)
                    return
                if conn.execute("SELECT current_schema()").fetchone() in (None, (None,)):
                    raise RecordsError("records.location", self.where,
                                       "names no schema that exists (see its search_path)",
                                       "create the schema, or name another one")
                for statement in _SCHEMA.split(";"):
                    conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('application', %s), ('schema', %s)",
                             (APPLICATION, str(STORE_SCHEMA)))
        except RecordsError:
            raise
        except (pgerrors.UndefinedColumn, pgerrors.DatatypeMismatch):
            raise self._not_ours() from None  # a `meta` table, but not ours
        except psycopg.Error as exc:
            raise self._classified(exc) from None

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        if meta.get("application") != APPLICATION:
            raise self._not_ours()
        try:
            schema = int(meta.get("schema", "0"))
        except ValueError:
            schema = 0
        if schema > STORE_SCHEMA:
            raise RecordsError("records.schema", self.where,
                               f"was written by a newer router (store schema {schema}; "
                               f"this one reads {STORE_SCHEMA})",
                               "upgrade unhardcoded to read it")
        if schema < STORE_SCHEMA:
            raise RecordsError("records.schema", self.where,
                               f"has store schema {schema}; this router reads "
                               f"{STORE_SCHEMA}, with no migration from it",
                               "read it with the release that wrote it, or start a new store")

    def _not_ours(self) -> RecordsError:
        return RecordsError("records.not_ours", self.where,
                            "is a PostgreSQL database (schema) with other tables, not a "
                            "records store",
                            "use a database of its own, or a schema of its own "
                            "(`?options=-csearch_path%3DNAME` in the DSN)")

    def _connection(self) -> psycopg.Connection[Any]:
        """The store's connection (call with the lock held): a new one after a fork or once
        the old one broke (the server restarted, the network dropped)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = None
            self._conn = self._connect()
        return self._conn

    # -- writing ------------------------------------------------------------------------------

    def write(self, rows: Sequence[Row], writer: ChainWriter) -> None:
        if not rows:
            return
        with self._lock:
            for attempt in range(_RETRIES):
                conn = self._connection()
                try:
                    with conn.transaction():
                        duplicates = self._write(conn, rows, writer)
                    self.duplicates += duplicates
                    return
                except (_Again, pgerrors.DeadlockDetected, pgerrors.SerializationFailure):
                    if attempt == _RETRIES - 1:
                        raise RecordsError("records.locked", self.where,
                                           "other writers kept conflicting with this batch",
                                           "try again") from None
                except psycopg.Error as exc:
                    raise self._classified(exc) from None

    def _write(self, conn: psycopg.Connection[Any], rows: Sequence[Row],
               w: ChainWriter) -> int:
        """The batch; returns how many rows were duplicates."""
        cur = conn.cursor()
        head = cur.execute("SELECT seq, hash, base_seq, base_hash FROM heads WHERE writer = %s "
                           "FOR UPDATE", (w.writer,)).fetchone()
        if head is None:
            cur.execute("INSERT INTO heads (writer, seq, hash) VALUES (%s, 0, '') "
                        "ON CONFLICT (writer) DO NOTHING", (w.writer,))
            head = cur.execute("SELECT seq, hash, base_seq, base_hash FROM heads "
                               "WHERE writer = %s FOR UPDATE", (w.writer,)).fetchone()
            assert head is not None
        seq, prev, base_seq, base_hash = head
        taken = {r[0] for r in cur.execute("SELECT trace_id FROM records WHERE trace_id = ANY(%s)",
                                           ([r.trace_id for r in rows],))}
        fresh: list[Row] = []
        for row in rows:
            if row.trace_id in taken:  # a trace id is written once; a repeat is refused
                continue
            taken.add(row.trace_id)
            fresh.append(row)
        if fresh:
            self._put_objects(cur, fresh)
            values = []
            for row in fresh:
                seq += 1
                digest, blob = sealed(prev, row.body)
                values.append((row.trace_id, row.at, row.policy_hash, row.policy_name,
                               row.selected, row.served_by, row.outcome, w.writer, seq, prev,
                               digest, blob))
                prev = digest
            # One statement per table for the whole batch (arrays, not a row at a time).
            stored = cur.execute(
                "INSERT INTO records (trace_id, at, policy_hash, policy_name, selected, "
                "served_by, outcome, writer, seq, prev, hash, body) SELECT * FROM unnest("
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::bytea[]) "
                "ON CONFLICT (trace_id) DO NOTHING RETURNING trace_id, id",
                [list(column) for column in zip(*values, strict=True)]).fetchall()
            if len(stored) != len(fresh):  # stored meanwhile by another writer: a gap
                raise _Again()
            ids = dict(stored)
            refs = [(ids[row.trace_id], k) for row in fresh for k in dict.fromkeys(row.objects)]
            cur.execute("INSERT INTO refs SELECT * FROM unnest(%s::bigint[], %s::text[]) "
                        "ON CONFLICT DO NOTHING",
                        ([r[0] for r in refs], [r[1] for r in refs]))
        mac = sign(w.key, w.writer, seq, prev, base_seq, base_hash) if w.key else None
        cur.execute("UPDATE heads SET seq = %s, hash = %s, mac = %s WHERE writer = %s",
                    (seq, prev, mac, w.writer))
        return len(rows) - len(fresh)

    @staticmethod
    def _put_objects(cur: psycopg.Cursor[Any], rows: Sequence[Row]) -> None:
        """The objects the rows reference that the store lacks. Checked against the store in
        every batch, not remembered: another replica may have pruned them since."""
        wanted = objects_of(rows)
        have = {r[0] for r in cur.execute("SELECT key FROM objects WHERE key = ANY(%s)",
                                          (list(wanted),))}
        new = packed_objects(wanted, have)
        if new:
            cur.executemany("INSERT INTO objects VALUES (%s, %s, %s) "
                            "ON CONFLICT (key) DO NOTHING", new)

    # -- reading ------------------------------------------------------------------------------

    def get(self, trace_id: str) -> StoredRecord | None:
        rows = self._select(f"SELECT {_COLUMNS} FROM records WHERE trace_id = %s", (trace_id,))
        return stored_record(rows[0], self.where) if rows else None

    def iterate(self, query: Query) -> Iterator[StoredRecord]:
        """Paged by (at, id), so a long iteration holds no transaction open."""
        where, args = query_filter(query, "%s")
        order = "DESC" if query.newest_first else "ASC"
        cmp = "<" if query.newest_first else ">"
        after: tuple[str, int] | None = None
        yielded = 0
        while True:
            extra: list[object] = []
            cond = where
            if after is not None:
                cond = (f"{where} AND " if where else " WHERE ") + f"(at, id) {cmp} (%s, %s)"
                extra = [after[0], after[1]]
            raw = self._select(f"SELECT {_COLUMNS}, id FROM records{cond} "
                               f"ORDER BY at {order}, id {order} LIMIT {_PAGE}", [*args, *extra])
            for r in raw:
                if query.limit is not None and yielded >= query.limit:
                    return
                yield stored_record(r[:-1], self.where)
                yielded += 1
            if len(raw) < _PAGE:
                return
            after = (raw[-1][1], raw[-1][-1])

    def load_object(self, key: str) -> Any:
        found = self._select("SELECT body FROM objects WHERE key = %s", (key,))
        if not found:
            raise RecordsError("records.missing_object", self.where,
                               f"object `{key}` is referenced but not stored",
                               "the store was altered or pruned by hand; run "
                               "`unhardcoded trace verify`")
        try:
            return unpack(found[0][0])
        except Unreadable as exc:
            raise RecordsError("records.corrupt", self.where, f"object `{key}`: {exc}") from None

    def chains(self) -> tuple[Iterator[Link], list[Head]]:
        """Heads and records from one snapshot, on a connection of its own (closed when the
        links are read to the end, or dropped)."""
        conn = self._connect()
        try:
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            heads = [Head(*r) for r in conn.execute(
                "SELECT writer, seq, hash, mac, base_seq, base_hash FROM heads ORDER BY writer")]
        except psycopg.Error as exc:
            conn.close()
            raise self._classified(exc) from None
        except BaseException:
            conn.close()
            raise

        def links() -> Iterator[Link]:
            try:
                with conn.cursor(name="unhardcoded_links") as cur:
                    cur.itersize = 1000
                    cur.execute("SELECT trace_id, writer, seq, prev, hash, body FROM records "
                                "ORDER BY writer, seq")
                    for t, w, s, p, h, b in cur:
                        yield Link(t, w, s, p, h, record_body(b, self.where, t))
            except psycopg.Error as exc:
                raise self._classified(exc) from None
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.close()

        return links(), heads

    def _select(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except psycopg.Error as exc:
                raise self._classified(exc) from None

    # -- retention ----------------------------------------------------------------------------

    def prune(self, older_than: dt.datetime | None, max_bytes: int | None,
              key: bytes | None) -> PruneReport:
        """Delete records older than a time and/or the oldest until the records fit in
        `max_bytes`; objects no record references go in the same transaction. Each writer's
        chain then starts after its last pruned record (its head says so, signed again)."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    return self._prune(conn, older_than, max_bytes, key)
            except psycopg.Error as exc:
                raise self._classified(exc) from None

    def _prune(self, conn: psycopg.Connection[Any], older_than: dt.datetime | None,
               max_bytes: int | None, key: bytes | None) -> PruneReport:
        # Writers lock their head row first: this waits for those in flight, holds back new
        # ones, and so no record or object is added while the bases are set.
        conn.execute("LOCK TABLE heads IN EXCLUSIVE MODE")
        upto: dict[str, int] = {}  # per writer: its records up to this number go
        if older_than is not None:
            # Up to each writer's first record at or after the time: a prefix of its chain,
            # and never a newer record (replicas' ids interleave; their times need not).
            for writer, seq in conn.execute(
                    "SELECT writer, COALESCE(MIN(seq) FILTER (WHERE at >= %s) - 1, MAX(seq)) "
                    "FROM records GROUP BY writer", (utc_text(older_than),)):
                upto[writer] = seq
        if max_bytes is not None:
            over = conn.execute(
                "SELECT id FROM (SELECT id, SUM(octet_length(body) + 200) OVER "
                "(ORDER BY id DESC) AS total FROM records) kept WHERE total > %s "
                "ORDER BY id DESC LIMIT 1", (max_bytes,)).fetchone()  # 200: columns, indexes
            if over is not None:
                for writer, seq in conn.execute("SELECT writer, MAX(seq) FROM records "
                                                "WHERE id <= %s GROUP BY writer", (over[0],)):
                    upto[writer] = max(upto.get(writer, 0), seq)
        bounds = (list(upto), [upto[w] for w in upto])
        chosen = ("FROM records r JOIN unnest(%s::text[], %s::bigint[]) AS b(writer, upto) "
                  "ON r.writer = b.writer AND r.seq <= b.upto")
        bases = conn.execute(
            f"SELECT DISTINCT ON (r.writer) r.writer, r.seq, r.hash, h.seq, h.hash {chosen} "
            "JOIN heads h ON h.writer = r.writer ORDER BY r.writer, r.seq DESC",
            bounds).fetchall()
        for writer, seq, base_hash, head_seq, head_hash in bases:
            mac = sign(key, writer, head_seq, head_hash, seq, base_hash) if key else None
            conn.execute("UPDATE heads SET base_seq = %s, base_hash = %s, mac = %s "
                         "WHERE writer = %s", (seq, base_hash, mac, writer))
        found = conn.execute(
            "WITH gone AS (DELETE FROM records r USING unnest(%s::text[], %s::bigint[]) "
            "AS b(writer, upto) WHERE r.writer = b.writer AND r.seq <= b.upto RETURNING r.id), "
            "refs_gone AS (DELETE FROM refs WHERE record IN (SELECT id FROM gone)) "
            "SELECT COUNT(*) FROM gone", bounds).fetchone()
        n = int(found[0]) if found else 0
        if n == 0:
            return PruneReport(0, 0)
        gone = conn.execute("DELETE FROM objects o WHERE NOT EXISTS "
                            "(SELECT 1 FROM refs r WHERE r.key = o.key)").rowcount
        return PruneReport(n, gone)

    def size(self) -> int:
        found = self._select(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relkind = 'r' "
            "AND c.relname = ANY(%s)", (list(_TABLES),))
        return int(found[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None

    # -- errors and forks ---------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip().replace("\n", " ")
        return text.replace(self._secret, "***") if self._secret else text

    def _classified(self, exc: psycopg.Error) -> RecordsError:
        """By SQLSTATE (psycopg's exception class), never by message text."""
        if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.DeadlockDetected):
            return RecordsError("records.locked", self.where,
                                f"is locked by another session ({self._scrub(exc)})",
                                "wait, or end the session that holds the lock "
                                "(see pg_locks)")
        if isinstance(exc, pgerrors.DataCorrupted | pgerrors.IndexCorrupted
                      | pgerrors.UndefinedTable | pgerrors.UndefinedColumn):
            return RecordsError("records.corrupt", self.where,
                                f"is damaged or was altered by hand ({self._scrub(exc)})",
                                "restore it from a backup, or name another database or schema")
        if isinstance(exc, pgerrors.InsufficientPrivilege | pgerrors.InvalidSchemaName
                      | pgerrors.InvalidCatalogName | pgerrors.ReadOnlySqlTransaction):
            return RecordsError("records.location", self.where,
                                f"cannot be used: {self._scrub(exc)}",
                                "grant the role the rights it needs, or name another store")
        return RecordsError("records.io", self.where, self._scrub(exc))

    def after_fork_in_child(self) -> None:
        self.after_fork()

    def after_fork(self) -> None:
        """In a forked child (called by the fork hook, and by the writer): the parent's
        connection is neither used nor closed here — closing it would end the parent's
        session — and the next call connects anew. Safe to call twice."""
        self._lock = threading.Lock()
        conn, self._conn = self._conn, None
        if conn is not None:
            _ORPHANS.append(conn)  # psycopg never closes a parent's connection when collected


def public_location(dsn: str) -> tuple[str, str]:
    """The DSN as messages may show it — `postgresql://HOST:PORT/DBNAME`, no user, password or
    options — and the password, to be scrubbed from any message."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        bare = re.sub(r"^[a-z]+://(?:[^@/?#]*@)?([^?#]*).*$", r"postgresql://\1", dsn.strip())
        return (bare if bare.startswith("postgresql://") else "postgresql"), ""
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    db = quote(str(params.get("dbname") or params.get("user") or ""), safe="")
    return f"postgresql://{host}{port}/{db}", str(params.get("password") or "")




_ORPHANS: list[psycopg.Connection[Any]] = []  # a parent's connections: kept, not collected
