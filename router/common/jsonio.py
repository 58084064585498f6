"""Reading the JSON and TOML files and texts a user hands us: bounded, strict, never a traceback.

One implementation for policies, catalogs, overlays, requests, importer sources and package
data. Strict means: UTF-8 only; no `NaN`/`Infinity` (nor a literal such as `1e999` that only
reads as infinity); no duplicate object keys (a duplicate would silently drop one of the two
values); no integer longer than `MAX_INT_DIGITS`; nesting no deeper than a caller's bound
(checked before parsing, so no recursion). TOML (`loads_toml`) follows the same rules:
duplicate keys are an error in TOML itself, `nan`/`inf` are refused as in JSON, integers must
fit 64 bits (as TOML 1.0 requires), and nesting and digit runs are bounded before the parser
runs. Every refusal is a `JsonRefused` with a stable kind and one line; callers turn it into
their own error family.

`value_problems` applies the same rules to data that was never text -- the dicts and lists a
library caller passes in -- walking it without recursion.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.common.problems import child_pointer

MAX_INT_DIGITS = 40
MAX_JSON_INT = 10**MAX_INT_DIGITS  # an integer's magnitude stays below this
MAX_TOML_INT = 2**63  # TOML integers are 64-bit signed
MAX_DIGIT_RUN = 100  # a longer run of digits in TOML text is refused before it is converted
DEFAULT_MAX_DEPTH = 256


class JsonRefused(Exception):
    """`kind` is one of `too_large`, `unreadable`, `invalid_json`, `invalid_toml`, `too_deep`."""

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


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}\"]+")


def opening_brackets(text: str | bytes | bytearray) -> int:
    """How many `[` and `{` the text holds, strings included: a bound on its nesting that
    costs two C scans, so text with few brackets skips the exact measure."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def nesting(text: str) -> int:
    """Deepest bracket nesting outside strings (no recursion). Strings and everything but
    brackets are dropped by regular expressions first, so the loop sees only the structure;
    text with an unterminated string takes the exact character scan."""
    structure = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if '"' in structure:
        return _nesting_scan(text)
    depth = deepest = 0
    for ch in structure:
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _nesting_scan(text: str) -> int:
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
    if opening_brackets(text) > max_depth and (depth := nesting(text)) > max_depth:
        raise JsonRefused("too_deep", f"{where} is nested {depth} levels deep; "
                                      f"the limit is {max_depth}")
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates,
                          parse_int=_bounded_int, parse_float=_finite_float)
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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number `{text[:40]}` is out of range (it reads as infinity)")
    return value


# --------------------------------------------------------------------------- TOML


def loads_toml(text: str, where: str = "input", max_depth: int = DEFAULT_MAX_DEPTH
               ) -> dict[str, Any]:
    """Parse strict TOML text (see the module's docstring). Nesting and digit runs are bounded
    before parsing (the parser recurses, and converts digits to integers in quadratic time);
    the values are then checked as `value_problems` does, with TOML's 64-bit integers."""
    depth, digits = toml_scan(text)
    if depth > max_depth:
        raise JsonRefused("too_deep", f"{where} is nested {depth} levels deep; "
                                      f"the limit is {max_depth}")
    if digits > MAX_DIGIT_RUN:
        raise JsonRefused("invalid_toml", f"{where} has a number of {digits} digits; numbers "
                                          f"of more than {MAX_DIGIT_RUN} digits are refused")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:  # the last two: backstop
        raise JsonRefused("invalid_toml", f"{where} is not valid TOML: {exc}") from None
    # + 1: the top-level table, which no bracket opens (dotted keys nest without brackets too)
    found = value_problems(data, max_depth + 1, max_int=MAX_TOML_INT, limit=1)
    if found:
        p = found[0]
        raise JsonRefused("too_deep" if p.kind == "too_deep" else "invalid_toml",
                          f"{where} at `{p.pointer or '/'}`: {p.message}")
    return data


_ML_QUOTE = '"' * 3
_ML_APOSTROPHE = "'" * 3
_TOML_NEXT = re.compile('"{3}' + "|'{3}" + r"""|["'#\[\]{}]|[0-9][0-9_]*""")
_ML_BASIC_END = re.compile(r'(?:[^\\"]|\\.|"(?!""))*"{3,5}', re.DOTALL)
_BASIC_END = re.compile(r'(?:[^"\\\n]|\\.)*"')
_LITERAL_END = re.compile(r"[^'\n]*'")
_ML_LITERAL_END = re.compile("'{3,5}")


def toml_scan(text: str) -> tuple[int, int]:
    """(deepest bracket nesting, longest run of digits) outside strings and comments, in one
    linear scan without recursion. An unterminated string ends the scan (the parser reports
    it)."""
    depth = deepest = longest = 0
    pos = 0
    while (m := _TOML_NEXT.search(text, pos)) is not None:
        token, pos = m.group(), m.end()
        end: int | None = pos
        if token == _ML_QUOTE:
            e = _ML_BASIC_END.match(text, pos)
            end = e.end() if e else None
        elif token == _ML_APOSTROPHE:
            e = _ML_LITERAL_END.search(text, pos)
            end = e.end() if e else None
        elif token == '"':
            e = _BASIC_END.match(text, pos)
            end = e.end() if e else None
        elif token == "'":
            e = _LITERAL_END.match(text, pos)
            end = e.end() if e else None
        elif token == "#":
            i = text.find("\n", pos)
            end = len(text) if i < 0 else i + 1
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
        else:
            longest = max(longest, len(token) - token.count("_"))
        if end is None:
            break
        pos = end
    return deepest, longest


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ValueProblem:
    """Why a value is not plain, finite JSON data: `kind` is `too_deep` or `bad_value`."""

    kind: str
    pointer: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class _BadKey:
    key: object


_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_FINITE_HINT = "JSON has no NaN or Infinity: send a finite number, or leave the field out"
_TYPE_HINT = "pass plain dicts, lists, strings, finite numbers, booleans and None"
# (token, parent): a path whose pointer is built only for a value that is refused
_Path = tuple[Any, ...] | None


def value_problems(value: object, max_depth: int = DEFAULT_MAX_DEPTH,
                   max_int: int = MAX_JSON_INT, limit: int = 20) -> list[ValueProblem]:
    """At most `limit` reasons why `value` is not data a strict reader could have produced: an
    array or object nested deeper than `max_depth` (the top-level value is level 1), a
    non-finite float, an integer of magnitude `max_int` or more, a string or key with a lone
    surrogate, a key that is not a string, or a value of another type (a tuple counts as an
    array). Walked with an explicit stack, so no recursion whatever the nesting; plain scalars
    are passed over quickly (a request is walked on every decision)."""
    if _all_plain(value, max_depth, max_int):
        return []
    found: list[ValueProblem] = []
    stack: list[tuple[object, int, _Path]] = [(value, 1, None)]
    while stack and len(found) < limit:
        item, depth, path = stack.pop()
        problem = _problem_of(item, depth, max_depth, max_int)
        if problem is not None:
            found.append(ValueProblem(problem[0], _pointer(path), problem[1], problem[2]))
            continue
        later: list[tuple[object, int, _Path]] = []  # containers and suspects, in order
        if isinstance(item, dict):
            for key, child in item.items():
                if not _plain(key, max_int) or type(key) is not str:
                    # named by the object's pointer: the key may not be printable
                    later.append((_BadKey(key), depth + 1, path))
                elif not _plain(child, max_int):
                    later.append((child, depth + 1, (key, path)))
        elif isinstance(item, list | tuple):
            later = [(child, depth + 1, (i, path)) for i, child in enumerate(item)
                     if not _plain(child, max_int)]
        stack.extend(reversed(later))
    return found


def _all_plain(value: object, max_depth: int, max_int: int) -> bool:
    """True when `value_problems` would find nothing: the fast path for valid input, with no
    pointers kept (about 3x faster than the full walk). False means "look closer" -- a tuple or
    a subclass, say, may be fine."""
    stack: list[tuple[object, int]] = [(value, 1)]
    surrogate, isfinite = _SURROGATE.search, math.isfinite
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        children: Iterable[object]
        if type(item) is dict:
            for key in item:
                if type(key) is not str or (not key.isascii() and surrogate(key)):
                    return False
            children = item.values()
        elif type(item) is list:
            children = item
        else:
            return False
        for child in children:
            if type(child) is str:
                if not child.isascii() and surrogate(child):
                    return False
            elif type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
            elif type(child) is int:
                if not -max_int < child < max_int:
                    return False
            elif type(child) is float:
                if not isfinite(child):
                    return False
            elif child is not None and type(child) is not bool:
                return False
    return True


def _plain(value: object, max_int: int) -> bool:
    """A scalar that needs no closer look (the fast path of `value_problems`)."""
    if type(value) is str:
        return value.isascii() or _SURROGATE.search(value) is None
    if type(value) is int:
        return -max_int < value < max_int
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) is bool


def _problem_of(item: object, depth: int, max_depth: int, max_int: int
                ) -> tuple[str, str, str | None] | None:
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, str):
        if _SURROGATE.search(item) is None:
            return None
        return ("bad_value", "the string is not valid Unicode (a lone surrogate)", None)
    if isinstance(item, int):
        if -max_int < item < max_int:
            return None
        if max_int == MAX_TOML_INT:
            return ("bad_value", "an integer outside the 64-bit range", "TOML integers are 64-bit")
        digits = int(item.bit_length() * 0.30103) + 1  # never str(): it is quadratic
        return ("bad_value", f"an integer of about {digits} digits is out of range",
                f"integers have at most {MAX_INT_DIGITS} digits")
    if isinstance(item, float):
        if math.isfinite(item):
            return None
        return ("bad_value", f"`{item!r}` is not a finite number", _NON_FINITE_HINT)
    if isinstance(item, dict | list | tuple):
        if depth <= max_depth:
            return None
        return ("too_deep", f"nested deeper than {max_depth} levels",
                f"at most {max_depth} levels of arrays and objects")
    if isinstance(item, _BadKey):
        if isinstance(item.key, str):
            return ("bad_value", "a key is not valid Unicode (a lone surrogate)", None)
        return ("bad_value", f"an object key must be a string, not {type(item.key).__name__}",
                _TYPE_HINT)
    return ("bad_value", f"not a JSON value: {type(item).__name__}", _TYPE_HINT)


def _pointer(path: _Path) -> str:
    tokens: list[Any] = []
    while path is not None:
        tokens.append(path[0])
        path = path[1]
    pointer = ""
    for token in reversed(tokens):
        pointer = child_pointer(pointer, token)
    return pointer
