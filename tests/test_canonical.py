"""The canonical forms records hash (`router.records.canonical`): form 2 reads back as the same
data as form 1, and a value read back from the store makes the same bytes again — the
condition for checking a hash later."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.records.canonical import (
    GIL_RELEASE_BYTES,
    canonical,
    digest,
    normal,
    pack,
    sha256_hex,
    unpack,
)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)


@settings(max_examples=500, deadline=None)
@given(values)
def test_form_2_is_the_same_data_as_form_1(value: Any) -> None:
    assert json.loads(canonical(value, 2)) == json.loads(canonical(value, 1))


@settings(max_examples=500, deadline=None)
@given(values)
def test_each_form_makes_the_same_bytes_from_what_it_reads_back(value: Any) -> None:
    for schema in (1, 2):
        data = canonical(value, schema)
        assert canonical(json.loads(data), schema) == data
        assert canonical(normal(value), schema) == data


@pytest.mark.parametrize(("value", "form_1", "form_2"), [
    ({"b": 9.43e-05, "a": [1.5e-07, 0.1, 1e16]}, b'{"a":[1.5e-07,0.1,1e+16],"b":9.43e-05}',
     b'{"a":[1.5e-7,0.1,1e+16],"b":0.0000943}'),
    ({"é": "ü\n"}, '{"é":"ü\\n"}'.encode(), '{"é":"ü\\n"}'.encode()),
    ([2**70, 1e-05], b"[1180591620717411303424,1e-05]", b"[1180591620717411303424,1e-05]"),
])
def test_the_forms_byte_for_byte(value: Any, form_1: bytes, form_2: bytes) -> None:
    """A value orjson cannot write (an integer past 64 bits) takes form 1 in form 2 too."""
    assert canonical(value, 1) == form_1
    assert canonical(value, 2) == form_2


def test_what_is_not_json_data_is_refused_in_both_forms() -> None:
    import datetime as dt

    for schema in (1, 2):
        with pytest.raises(TypeError):
            canonical({"at": dt.datetime(2026, 12, 2)}, schema)
    with pytest.raises(ValueError):
        canonical(float("nan"), 1)


@settings(max_examples=200, deadline=None)
@given(values)
def test_pack_and_unpack_round_trip(value: Any) -> None:
    assert unpack(pack(value)) == normal(value)



@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3 * GIL_RELEASE_BYTES))
def test_sha256_in_pieces_is_sha256(data: bytes) -> None:
    """`sha256_hex` feeds hashlib pieces short enough to keep the GIL; the hash is the same."""
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1, GIL_RELEASE_BYTES - 2, GIL_RELEASE_BYTES - 1,
                                  GIL_RELEASE_BYTES, GIL_RELEASE_BYTES + 1,
                                  2 * (GIL_RELEASE_BYTES - 1), 400_000])
def test_sha256_in_pieces_at_the_piece_edges(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert len(data) == size
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_a_digest_is_the_sha256_of_the_canonical_form() -> None:
    value = {"ranking": [[f"openai/model-{i}", [i / 7]] for i in range(200)], "schema": 2}
    assert len(canonical(value)) > GIL_RELEASE_BYTES
    assert digest(value) == hashlib.sha256(canonical(value)).hexdigest()
    assert digest(value, 1) == hashlib.sha256(canonical(value, 1)).hexdigest()
