"""Where records go: `RouterConfig.records`, else `UNHARDCODED_RECORDS`, else
`$XDG_DATA_HOME/unhardcoded/records.sqlite3` (`~/.local/share/…` when unset). A location that
is a `postgresql://` DSN names a PostgreSQL store (`records.postgres`).
`UNHARDCODED_RECORDS=off` (or `none`, or empty) turns recording off."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from pathlib import Path

from router.records.chain import KEY_VARIABLE
from router.records.sqlite import SqliteStore
from router.records.store import RecordsError, RecordStore
from router.records.writer import RecordWriter

log = logging.getLogger("unhardcoded.records")


class Records(enum.Enum):
    FROM_ENVIRONMENT = "from the environment"


RecordsSetting = str | Path | None | Records

RECORDS_VARIABLE = "UNHARDCODED_RECORDS"
OFF = ("", "off", "none")
_DSN = ("postgres://", "postgresql://")


def default_location(environ: Mapping[str, str]) -> Path | str | None:
    """A path, or a PostgreSQL DSN (as text: a `Path` would fold its `//`)."""
    value = environ.get(RECORDS_VARIABLE)
    if value is not None:
        if value.strip().lower() in OFF:
            return None
        if value.strip().startswith(_DSN):
            return value.strip()
        return Path(value).expanduser()
    base = environ.get("XDG_DATA_HOME")
    if base:
        return Path(base) / "unhardcoded" / "records.sqlite3"
    home = environ.get("HOME")
    if home:
        return Path(home) / ".local" / "share" / "unhardcoded" / "records.sqlite3"
    return None


def is_dsn(location: str | Path) -> bool:
    """Whether a records location names a PostgreSQL server rather than a file."""
    return str(location).strip().startswith(_DSN)


def open_store(location: str | Path) -> RecordStore:
    """A store at a path (SQLite), or named by a `postgresql://` / `postgres://` DSN
    (PostgreSQL; needs the `postgres` extra, psycopg 3)."""
    text = str(location)
    if text.startswith(_DSN):
        try:
            from router.records.postgres import PostgresStore
        except ImportError:  # psycopg (or its libpq) is not installed
            raise RecordsError("records.unsupported", "postgresql",
                               "a PostgreSQL store needs psycopg 3, which is not installed",
                               "pip install 'unhardcoded[postgres]'") from None
        return PostgresStore(text)
    return SqliteStore(location)


def recorder(setting: RecordsSetting, environ: Mapping[str, str]) -> RecordWriter | None:
    """The writer for a router, or None when recording is off. A store named in the config
    that cannot be opened is an error; the default location failing is logged, and the router
    runs without recording."""
    key = environ.get(KEY_VARIABLE)
    signing = key.encode() if key else None
    if setting is None:
        return None
    if not isinstance(setting, Records):
        return RecordWriter(open_store(setting), signing)
    location = default_location(environ)
    if location is None:
        return None
    try:
        return RecordWriter(open_store(location), signing)
    except RecordsError as exc:
        log.warning("records: not recording: %s", exc)
        return None
