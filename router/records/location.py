"""Where records go: `RouterConfig.records`, else `UNHARDCODED_RECORDS`, else
`$XDG_DATA_HOME/unhardcoded/records.sqlite3` (`~/.local/share/…` when unset).
`UNHARDCODED_RECORDS=off` (or `none`, or empty) turns recording off."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from router.records.sqlite import SqliteStore
from router.records.store import RecordsError, RecordStore

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
