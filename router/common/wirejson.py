"""JSON on the wire — provider calls and their answers, the service's answers and stream
events — through orjson, with the standard library wherever the two might differ.

- `dumps` gives compact UTF-8 JSON. orjson refuses what it cannot write the way `json` would
  (integers past 64 bits, keys that are not strings, subclasses, dataclasses, dates); those go
  through `json`, which writes them or raises as before. (orjson writes NaN and infinities as
  `null`; `json` would have written `NaN`, which is not JSON.)
- `loads` parses strict JSON. orjson reads an integer past 64 bits as a float, so text with a
  run of 19 or more digits goes to `json` (found by mapping every ASCII digit to `0` and
  looking for nineteen of them: a fifth of a regular expression's search, which cost a
  stream event more than parsing it); so does any text orjson refuses (a lone surrogate
  escape, a literal that only reads as infinity, NaN), which `json` then reads or refuses with
  its own message, exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_AS_JSON_WOULD = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
                  | orjson.OPT_PASSTHROUGH_DATETIME)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x5F for b in range(256))  # 0-9 → 0
_LONG_RUN = b"0" * 19  # an integer of 19 digits may not fit 64 bits


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_AS_JSON_WOULD)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: str | bytes | bytearray, parse_constant: Callable[[str], Any]) -> Any:
    """Parse JSON; `parse_constant` is `json`'s hook for NaN and Infinity (orjson refuses
    them, so they always reach it)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)  # (a lone surrogate encoded above is refused here)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=parse_constant)
