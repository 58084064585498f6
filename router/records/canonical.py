"""Canonical JSON and hashes for records: one byte form per value, so a hash names content."""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from router.common import jsonio


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, finite numbers only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def pack(value: Any) -> bytes:
    """A value as it is stored: canonical JSON, deflated."""
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
