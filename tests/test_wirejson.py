"""`router.common.wirejson`: orjson where it reads and writes the same data as `json`, `json`
where it might not — checked against `json` itself over generated values and texts."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.common import wirejson
from router.dispatch.failures import no_json_constant

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def standard_loads(data: str | bytes) -> Any:
    return json.loads(data, parse_constant=no_json_constant)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", fn(*args)
    except Exception as exc:
        return "error", type(exc)


def same(a: Any, b: Any) -> bool:
    """Equal, with types: 1 and 1.0 and True are different readings."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a)
                                              and math.isnan(b)))


@settings(max_examples=400, deadline=None)
@given(values)
def test_what_dumps_writes_reads_back_as_json_would(value: Any) -> None:
    written = wirejson.dumps(value)
    assert same(standard_loads(written), standard_loads(json.dumps(value)))
    assert same(wirejson.loads(written, no_json_constant), standard_loads(written))


@settings(max_examples=400, deadline=None)
@given(values)
def test_loads_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    for data in (text, text.encode()):
        assert same(wirejson.loads(data, no_json_constant), standard_loads(data))


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890",  # past 64 bits: an int, not a float
    '{"seed": 18446744073709551616, "n": -9223372036854775809}',
    '"\\ud800"',  # a lone surrogate escape: json reads it, orjson refuses
    "1e400",  # reads as infinity in json
    '{"a": 1, "a": 2}',
    '["1234567890123456789012", 1.5e-7, 9.43e-05]',
])
def test_texts_orjson_reads_differently_are_read_by_json(text: str) -> None:
    for data in (text, text.encode()):
        assert same(wirejson.loads(data, no_json_constant), json.loads(data))


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "{", "[1,]", "\"\xff\""])
def test_texts_json_refuses_are_refused_the_same_way(text: str) -> None:
    assert outcome(wirejson.loads, text, no_json_constant) == outcome(standard_loads, text)


@pytest.mark.parametrize("value", [{1: "int key"}, [2**64], {"deep": [2**80]}, "\ud800"])
def test_values_orjson_refuses_are_written_or_refused_as_json_would(value: Any) -> None:
    expected = outcome(lambda v: json.dumps(v, separators=(",", ":"),
                                            ensure_ascii=False).encode(), value)
    assert outcome(wirejson.dumps, value) == expected


def test_a_provider_answer_nested_past_the_limit_is_malformed() -> None:
    from router.dispatch.failures import UpstreamFailure
    from router.dispatch.providers.http import MAX_JSON_DEPTH, parse_json

    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    for data in (at_limit, at_limit.encode()):
        assert parse_json(data, "p", "body") == json.loads(at_limit)
        with pytest.raises(UpstreamFailure, match=f"nests deeper than {MAX_JSON_DEPTH}"):
            parse_json(b"[" + at_limit.encode() + b"]" if isinstance(data, bytes)
                       else "[" + data + "]", "p", "body")
    shallow = json.dumps({"content": "[{" * 100})  # brackets in a string: not nesting
    assert parse_json(shallow, "p", "stream event") == json.loads(shallow)


@pytest.mark.parametrize("text", [
    "[999999999999999999, -999999999999999999]",  # 18 digits: orjson reads them exactly
    "[9999999999999999999, 18446744073709551615, 18446744073709551616]",  # 19-20 digits
    '{"id": "chatcmpl-1234567890123456789", "n": 1}',  # a 19-digit run inside a string
    "[1234567890123456789.5, 0.1234567890123456789]",  # 19 digits in floats
    '["\ud800"]',  # a lone surrogate character in the text itself (not an escape)
    '{"long": "' + "7" * 5000 + '"}',
])
def test_digit_runs_and_surrogates_read_as_json_reads_them(text: str) -> None:
    """The 19-digit scan sends whatever might lose an integer's digits to `json`, and a text
    orjson cannot take (a lone surrogate) falls back as well; str, bytes and bytearray alike."""
    assert same(wirejson.loads(text, no_json_constant), standard_loads(text))
    if "\ud800" not in text:  # (not UTF-8)
        for data in (text.encode(), bytearray(text.encode())):
            assert same(wirejson.loads(data, no_json_constant), json.loads(data))
