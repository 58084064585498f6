"""Canonical JSON and hashes for records: one byte form per value, so a hash names content."""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, finite numbers only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def pack(value: Any) -> bytes:
    """A value as it is stored: canonical JSON, deflated."""
    return zlib.compress(canonical(value), 6)


def unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def normal(value: Any) -> Any:
    """A value as JSON data (tuples become lists), as it reads back from the store."""
    return json.loads(json.dumps(value, allow_nan=False))
