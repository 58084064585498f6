"""Reading the JSON files and texts a user hands us: bounded, strict, never a traceback.

One implementation for policies, catalogs, overlays, requests, importer sources and package
data. Strict means: UTF-8 only; no `NaN`/`Infinity`; no duplicate object keys (a duplicate
would silently drop one of the two values); no integer longer than `MAX_INT_DIGITS`; nesting no
deeper than a caller's bound (checked before parsing, so no recursion). Every refusal is a
`JsonRefused` with a stable kind and one line; callers turn it into their own error family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_INT_DIGITS = 40
DEFAULT_MAX_DEPTH = 256


class JsonRefused(Exception):
    """`kind` is one of `too_large`, `unreadable`, `invalid_json`, `too_deep`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def read_bounded(path: str | Path, limit: int) -> bytes:
    """At most `limit` bytes of a file; a longer file (or an endless one such as `/dev/zero`)
    is refused after reading `limit + 1` bytes, whatever its reported size."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise JsonRefused("unreadable", f"cannot read `{path}`: {exc.strerror}") from None
    if len(data) > limit:
        raise JsonRefused("too_large", f"`{path}` is over the limit of {limit} bytes")
    return data


def read_text(path: str | Path, limit: int) -> str:
    """A bounded UTF-8 text file."""
    return decode(read_bounded(path, limit), f"`{path}`")


def decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRefused("invalid_json", f"{where} is not UTF-8 text") from None


def nesting(text: str) -> int:
    """Deepest bracket nesting outside strings (a scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, where: str = "input", max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse strict JSON text (see the module's docstring)."""
    if isinstance(text, bytes):
        text = decode(text, where)
    depth = nesting(text)
    if depth > max_depth:
        raise JsonRefused("too_deep", f"{where} is nested {depth} levels deep; "
                                      f"the limit is {max_depth}")
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates,
                          parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        raise JsonRefused("invalid_json", f"{where} is not valid JSON: {exc}") from None


def read_json(path: str | Path, limit: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """A bounded, strict JSON file."""
    return loads(read_bounded(path, limit), f"`{path}`", max_depth)


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key `{key[:80]}` in one object")
        out[key] = value
    return out


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits (the limit is {MAX_INT_DIGITS})")
    return int(digits)
