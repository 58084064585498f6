"""Decision records that last: a store (SQLite, one file), a background writer that keeps
recording off the request path, the full record rebuilt on read, replay and tamper evidence.
"""

from router.records.chain import KEY_VARIABLE, Finding, verify
from router.records.location import (
    RECORDS_VARIABLE,
    Records,
    RecordsSetting,
    default_location,
    open_store,
    recorder,
)
from router.records.rebuild import Replayed, Replayer
from router.records.row import Pending
from router.records.sqlite import SqliteStore
from router.records.store import PruneReport, Query, RecordsError, RecordStore, StoredRecord
from router.records.writer import RecordWriter, WriterSettings

__all__ = [
    "KEY_VARIABLE", "RECORDS_VARIABLE", "Finding", "Pending", "PruneReport", "Query",
    "RecordStore", "RecordWriter", "Records", "RecordsError", "RecordsSetting", "Replayed",
    "Replayer", "SqliteStore", "StoredRecord", "WriterSettings", "default_location",
    "open_store", "recorder", "verify",
]
