"""The records stores the store tests run against: SQLite (a file in a temp dir) and PostgreSQL
(a schema of its own per test, in the database that `UNHARDCODED_TEST_POSTGRES` names).

Without that variable the PostgreSQL tests are skipped — unless `UNHARDCODED_REQUIRE_POSTGRES=1`
(set by `.ci/run`, which starts a server), when they fail: CI never skips them silently.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.records import RecordStore, RecordWriter, SqliteStore

POSTGRES_VARIABLE = "UNHARDCODED_TEST_POSTGRES"
REQUIRE_VARIABLE = "UNHARDCODED_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgres")


def _unavailable(problem: str) -> None:
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"PostgreSQL tests are required ({REQUIRE_VARIABLE}=1), but {problem}",
                    pytrace=False)
    pytest.skip(f"cannot test the PostgreSQL store: {problem}")


def require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")


def postgres_dsn() -> str:
    """The test server's DSN: skips the test when there is none, fails it when required."""
    require_psycopg()
    dsn = os.environ.get(POSTGRES_VARIABLE, "").strip()
    if not dsn:
        _unavailable(f"{POSTGRES_VARIABLE} is not set (see docs/records.md)")
    return dsn


def in_schema(dsn: str, schema: str) -> str:
    """The DSN with the schema as its search path (libpq's `options` URI parameter)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


class Backend:
    name: str
    location: str

    def open(self, timeout_s: float | None = None) -> RecordStore:
        raise NotImplementedError

    def writer(self, key: bytes | None = None) -> RecordWriter:
        return RecordWriter(self.open(), key)

    def sql(self, statement: str, *args: object) -> None:
        """Run a statement on a connection of its own (`?` placeholders), committed."""
        raise NotImplementedError

    def one(self, statement: str, *args: object) -> tuple[Any, ...]:
        raise NotImplementedError

    def hold_lock(self) -> contextlib.AbstractContextManager[None]:
        """Another session holding a lock that keeps writers out, until the block ends."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def open(self, timeout_s: float | None = None) -> RecordStore:
        if timeout_s is None:
            return SqliteStore(self.path)
        return SqliteStore(self.path, busy_timeout_s=timeout_s)

    def sql(self, statement: str, *args: object) -> None:
        conn = sqlite3.connect(self.path)
        conn.execute(statement, args)
        conn.commit()
        conn.close()

    def one(self, statement: str, *args: object) -> tuple[Any, ...]:
        conn = sqlite3.connect(self.path)
        found = conn.execute(statement, args).fetchone()
        conn.close()
        return tuple(found)

    @contextlib.contextmanager
    def hold_lock(self) -> Iterator[None]:
        holder = sqlite3.connect(self.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.dsn = dsn
        self.schema = f"records_test_{uuid.uuid4().hex[:12]}"
        self.location = in_schema(dsn, self.schema)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {self.schema}")
        self._conn = psycopg.connect(self.location, autocommit=True)

    def open(self, timeout_s: float | None = None) -> RecordStore:
        from router.records import open_store
        from router.records.postgres import PostgresStore

        if timeout_s is None:
            return open_store(self.location)
        return PostgresStore(self.location, lock_timeout_s=timeout_s)

    def sql(self, statement: str, *args: object) -> None:
        self._conn.execute(statement.replace("?", "%s"), args)

    def one(self, statement: str, *args: object) -> tuple[Any, ...]:
        found = self._conn.execute(statement.replace("?", "%s"), args).fetchone()
        assert found is not None
        return tuple(found)

    @contextlib.contextmanager
    def hold_lock(self) -> Iterator[None]:
        import psycopg

        with psycopg.connect(self.location) as holder:
            holder.execute("LOCK TABLE heads IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                holder.rollback()

    def close(self) -> None:
        import psycopg

        self._conn.close()
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute("SET lock_timeout = '10s'")
            admin.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


def make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "postgres":
        return PostgresBackend(postgres_dsn())
    return SqliteBackend(tmp_path / "r.sqlite3")
