"""Canonical JSON and hashes for records: one byte form per value, so a hash names content.

The form is versioned by the record row's schema (`row.ROW_SCHEMA`), because a hash is only
checked again if the same bytes can be made again:

- **schema 2** (rows written now): orjson's output — sorted keys, no spaces, UTF-8 unescaped,
  each float in the shortest digits that read back as the same float (`9.43e-05` is written
  `0.0000943`, `1.5e-07` as `1.5e-7`). A value orjson cannot write (an integer past 64 bits,
  a key that is not a string) takes schema 1's form. Non-finite numbers, which no record
  holds (every number in one comes from strict JSON or a finite computation), are written
  `null`. About ten times faster than schema 1: Python's float formatting was most of a
  record's serialisation.
- **schema 1** (rows written before): `json.dumps` with sorted keys, no spaces, UTF-8,
  finite numbers only.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import orjson

from router.common import jsonio

LATEST = 2  # the form rows are written in
_ORJSON = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_PASSTHROUGH_DATETIME)  # (not JSON data: refused, as by json)


def canonical(value: Any, schema: int = LATEST) -> bytes:
    """`value`'s canonical JSON in the form of row schema `schema` (see the module)."""
    if schema >= 2:
        try:
            return orjson.dumps(value, option=_ORJSON)
        except TypeError:
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest(value: Any, schema: int = LATEST) -> str:
    return sha256_hex(canonical(value, schema))


# hashlib lets go of the GIL while it hashes this many bytes or more at once (CPython's
# HASHLIB_GIL_MINSIZE); `sha256_hex` feeds it less at a time.
GIL_RELEASE_BYTES = 2048


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data`, fed to hashlib in pieces too small for it to let go of the GIL.

    The records writer hashes every row it builds (the decision's outcome, ~6 KB). A let-go
    and re-take of the GIL per row is too short for a thread waiting on it to wake and take
    it, yet it counts as a switch, so the waiting thread never asks for its turn: the service's
    event loop was held for up to tens of milliseconds while the writer built a batch of rows
    (benchmarks/README.md, "Recording's tail at one client"). Without the let-go, the
    interpreter's switch interval hands the loop its turn."""
    if len(data) < GIL_RELEASE_BYTES:
        return hashlib.sha256(data).hexdigest()
    view = memoryview(data)
    h = hashlib.sha256()
    step = GIL_RELEASE_BYTES - 1
    for i in range(0, len(view), step):
        h.update(view[i:i + step])
    return h.hexdigest()


def pack(value: Any) -> bytes:
    """A value as it is stored: canonical JSON (the latest form), deflated."""
    return packed(canonical(value))


def packed(data: bytes) -> bytes:
    """Canonical JSON already made (`canonical`), deflated as `pack` does."""
    return zlib.compress(data, 6)


MAX_UNPACKED = 512 * 1024 * 1024  # a catalog snapshot of 50,000 offerings is far below this


class Unreadable(ValueError):
    """A stored value that is not what this store writes (too large, not JSON, too deep)."""


def unpack(blob: bytes, limit: int = MAX_UNPACKED) -> Any:
    """A stored value, read as strictly as any input: a store can come from elsewhere (an
    auditor's copy), so its inflated size, JSON and nesting are bounded."""
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise Unreadable(f"not a stored value ({exc})") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise Unreadable(f"a stored value inflates past {limit} bytes")
    try:
        return jsonio.loads(data, "stored value")
    except jsonio.JsonRefused as exc:
        raise Unreadable(exc.message) from None


def normal(value: Any) -> Any:
    """A value as JSON data (tuples become lists), as it reads back from the store."""
    return json.loads(json.dumps(value, allow_nan=False))
