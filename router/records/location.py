"""Where records go: `RouterConfig.records`, else `UNHARDCODED_RECORDS`, else
`$XDG_DATA_HOME/unhardcoded/records.sqlite3` (`~/.local/share/…` when unset).
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


def default_location(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(RECORDS_VARIABLE)
    if value is not None:
        return None if value.strip().lower() in OFF else Path(value).expanduser()
    base = environ.get("XDG_DATA_HOME")
    if base:
        return Path(base) / "unhardcoded" / "records.sqlite3"
    home = environ.get("HOME")
    if home:
        return Path(home) / ".local" / "share" / "unhardcoded" / "records.sqlite3"
    return None


def open_store(location: str | Path) -> RecordStore:
    """A store at a path (SQLite). PostgreSQL DSNs are refused with a clear message."""
    text = str(location)
    if text.startswith(("postgres://", "postgresql://")):
        raise RecordsError("records.unsupported", text.split("@")[-1],
                           "PostgreSQL stores are not available in this version",
                           "use a SQLite file path")
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
