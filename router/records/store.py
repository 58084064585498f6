"""The records store interface: write batches, read one record, query, iterate, prune, and
read every writer's chain for `verify`. SQLite (`records.sqlite`) is the embedded default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from router.common.problems import Problem, RefusedError
from router.records.canonical import Unreadable, pack, unpack
from router.records.chain import Head, Link
from router.records.row import Row, StoredObject, catalog_object

STORE_SCHEMA = 1
APPLICATION = "unhardcoded-records"


class RecordsError(RefusedError):
    """A store that cannot be used: not ours, corrupt, locked, another schema, bad location."""

    def __init__(self, code: str, where: str, message: str, hint: str | None = None) -> None:
        super().__init__("records", [Problem(code=code, pointer="", message=f"{where}: {message}",
                                             hint=hint)])
        self.code = code


@dataclass(frozen=True)
class StoredRecord:
    trace_id: str
    at: str
    policy_hash: str
    policy_name: str | None
    selected: str | None
    served_by: str | None
    outcome: str
    writer: str
    seq: int
    hash: str
    body: dict[str, Any]


def record_body(blob: bytes, where: str, trace_id: str) -> dict[str, Any]:
    """A stored row's body, read strictly: damage is `records.corrupt` naming the record."""
    try:
        body = unpack(blob)
    except Unreadable as exc:
        raise RecordsError("records.corrupt", where, f"record `{trace_id}`: {exc}") from None
    if not isinstance(body, dict):
        raise RecordsError("records.corrupt", where, f"record `{trace_id}` is not an object")
    return body


def stored_record(r: Sequence[Any], where: str) -> StoredRecord:
    """A `StoredRecord` from the columns trace_id, at, policy_hash, policy_name, selected,
    served_by, outcome, writer, seq, hash, body (in that order)."""
    return StoredRecord(trace_id=r[0], at=r[1], policy_hash=r[2], policy_name=r[3],
                        selected=r[4], served_by=r[5], outcome=r[6], writer=r[7], seq=r[8],
                        hash=r[9], body=record_body(r[10], where, r[0]))


@dataclass(frozen=True)
class Query:
    since: str | None = None  # UTC ISO text, inclusive
    until: str | None = None  # exclusive
    policy: str | None = None  # a policy hash (or a prefix of one) or a policy name
    served_by: str | None = None
    outcome: str | None = None
    limit: int | None = None
    newest_first: bool = False


def query_filter(q: Query, mark: str) -> tuple[str, list[object]]:
    """The SQL `WHERE` of a query, with `mark` as the parameter placeholder (`?`, `%s`)."""
    parts: list[str] = []
    args: list[object] = []
    if q.since:
        parts.append(f"at >= {mark}")
        args.append(q.since)
    if q.until:
        parts.append(f"at < {mark}")
        args.append(q.until)
    if q.policy:  # a name, or a hash prefix (LIKE's wildcards escaped)
        parts.append(f"(policy_name = {mark} OR policy_hash LIKE {mark} ESCAPE '\\')")
        args += [q.policy, q.policy.replace("\\", "\\\\").replace("%", "\\%")
                 .replace("_", "\\_") + "%"]
    if q.served_by:
        parts.append(f"served_by = {mark}")
        args.append(q.served_by)
    if q.outcome:
        parts.append(f"outcome = {mark}")
        args.append(q.outcome)
    return (" WHERE " + " AND ".join(parts) if parts else ""), args


@dataclass(frozen=True)
class PruneReport:
    records: int
    objects: int


@dataclass(frozen=True)
class ChainWriter:
    """Who appends: a writer id and, when configured, the key its heads are signed with."""

    writer: str
    key: bytes | None = None


class RecordStore(Protocol):
    where: str

    def write(self, rows: Sequence[Row], writer: ChainWriter) -> None:
        """Append rows (and the objects they reference that are new) in one transaction,
        chained after the writer's last record; durable when it returns."""

    def get(self, trace_id: str) -> StoredRecord | None: ...

    def iterate(self, query: Query) -> Iterator[StoredRecord]: ...

    def load_object(self, key: str) -> Any:
        """A content-addressed object (policy, catalog snapshot, live layer)."""

    def chains(self) -> tuple[Iterator[Link], list[Head]]:
        """Every record as a chain link in (writer, seq) order, and every writer's head."""

    def prune(self, older_than: dt.datetime | None, max_bytes: int | None,
              key: bytes | None) -> PruneReport: ...

    def size(self) -> int: ...

    def after_fork(self) -> None:
        """Called in a forked child before it writes: reconnect, leaving the parent's
        connection untouched."""

    def close(self) -> None: ...


def objects_of(rows: Sequence[Row]) -> dict[str, StoredObject]:
    """The objects a batch of rows references, once each, by key."""
    return {obj.key: obj for row in rows for obj in row.new_objects}


def packed_objects(wanted: dict[str, StoredObject], have: set[str]) -> list[tuple[str, str, bytes]]:
    """(key, kind, stored bytes) of the wanted objects a store lacks, by key (one order for
    every writer: no deadlock between two inserting the same objects)."""
    out = []
    for key in sorted(set(wanted) - have):
        obj = wanted[key]
        body = catalog_object(obj.body) if obj.kind == "catalog" else obj.body
        out.append((key, obj.kind, pack(body)))
    return out
