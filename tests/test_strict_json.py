"""Every file and text we read goes through one strict, bounded JSON reader
(`router.common.jsonio`): duplicate keys, NaN, endless files, deep nesting and huge integers
are refused with a precise code, for policies, catalogs, overlays and requests alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import CatalogError, OverlayError, PolicyError, admit_text, load_catalog
from router.catalog.overlays import load_overlay
from router.cli.main import main
from router.common import jsonio

POLICY = ('["policy", ["ev_zero"], ["filter"], ["rank"], ["select", ["first"]], ["mutate"],'
          ' ["fallback"]]')


def test_duplicate_keys_are_refused_everywhere(tmp_path: Path) -> None:
    overlay = tmp_path / "ops.json"
    overlay.write_text('{"schema": 1, "disable": ["openai/gpt-4o"], "disable": []}')
    with pytest.raises(OverlayError) as e:
        load_overlay(overlay)
    assert e.value.problems[0].code == "overlay.invalid_json"
    assert "duplicate key `disable`" in e.value.problems[0].message

    catalog = tmp_path / "c.json"
    catalog.write_text('{"schema": 1, "schema": 1, "offerings": []}')
    with pytest.raises(CatalogError) as c:
        load_catalog(catalog)
    assert "duplicate key `schema`" in c.value.problems[0].message

    evidence = POLICY.replace('["ev_zero"]', '["ev", ["score", "pass", {"m": 0.9, "m": 0.1}]]')
    with pytest.raises(PolicyError) as p:
        admit_text(evidence)
    assert p.value.problems[0].code == "policy.invalid_json"
    assert "duplicate key `m`" in p.value.problems[0].message


def test_non_finite_numbers_and_huge_integers_are_refused() -> None:
    for text in ('{"t": NaN}', '{"t": Infinity}', '{"t": -Infinity}', '{"t": ' + "9" * 400 + "}"):
        with pytest.raises(jsonio.JsonRefused) as e:
            jsonio.loads(text)
        assert e.value.kind == "invalid_json"
    assert jsonio.loads('{"t": 12345678901234567890}') == {"t": 12345678901234567890}


def test_nesting_is_bounded_before_parsing() -> None:
    deep = "[" * 100_000 + "]" * 100_000  # would overflow the recursive parser
    with pytest.raises(jsonio.JsonRefused) as e:
        jsonio.loads(deep)
    assert e.value.kind == "too_deep"
    assert jsonio.nesting('["[[[", {"a": [1]}]') == 3  # brackets in strings do not count


def test_an_endless_file_is_read_only_up_to_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(jsonio.JsonRefused) as e:
        jsonio.read_bounded("/dev/zero", 1024)
    assert e.value.kind == "too_large"
    code = main(["route", "--policy", "/dev/zero", "--request", "/dev/zero"])
    assert code == 2
    problems = json.loads(capsys.readouterr().err)["problems"]
    assert problems[0]["code"] == "policy.too_large"


def test_a_request_file_with_nan_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(POLICY)
    request = tmp_path / "r.json"
    request.write_text('{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}')
    assert main(["route", "--policy", str(policy), "--request", str(request)]) == 2
    problems = json.loads(capsys.readouterr().err)["problems"]
    assert problems[0]["code"] == "request.invalid_json"
    assert "NaN" in problems[0]["message"]


def test_a_number_literal_that_reads_as_infinity_is_refused(tmp_path: Path) -> None:
    for text in ('{"t": 1e999}', '{"t": -1E400}', '[0.5e99999]'):
        with pytest.raises(jsonio.JsonRefused) as e:  # was: parsed as inf
            jsonio.loads(text)
        assert e.value.kind == "invalid_json" and "reads as infinity" in e.value.message
    assert jsonio.loads('{"t": 1e308}') == {"t": 1e308}
    catalog = tmp_path / "c.json"
    catalog.write_text('{"schema": 1, "offerings": [{"id": "a/b", "model": "b", "provider": "a",'
                       ' "region": "eu", "input_price": 1e999}]}')
    with pytest.raises(CatalogError) as c:
        load_catalog(catalog)
    assert c.value.problems[0].code == "catalog.invalid_json"
    with pytest.raises(PolicyError) as p:
        admit_text(POLICY.replace('["filter"]', '["filter", ["<=", "input_price", 1e999]]'))
    assert p.value.problems[0].code == "policy.invalid_json"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='[]{}"\\ab,:1 ', max_size=60))
def test_the_fast_depth_check_equals_the_character_scan(text: str) -> None:
    from router.common.jsonio import _nesting_scan, nesting

    assert nesting(text) == _nesting_scan(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='[]{}"\\ab,:1 ', max_size=60))
def test_opening_brackets_bound_the_nesting(text: str) -> None:
    """The count that lets shallow text skip the exact measure never under-counts."""
    assert jsonio.nesting(text) <= jsonio.opening_brackets(text)
    assert jsonio.opening_brackets(text.encode()) == jsonio.opening_brackets(text)


@pytest.mark.parametrize("limit", [1, 3, 64])
def test_the_depth_limit_is_exact_with_or_without_the_bracket_count(limit: int) -> None:
    at_limit = "[" * limit + "]" * limit
    assert jsonio.loads(at_limit, max_depth=limit) == json.loads(at_limit)
    with pytest.raises(jsonio.JsonRefused, match=f"nested {limit + 1} levels deep"):
        jsonio.loads("[" + at_limit + "]", max_depth=limit)
    # many brackets, all inside a string: counted, then measured, and accepted
    shallow = json.dumps({"t": "[{" * (limit + 5)})
    assert jsonio.loads(shallow, max_depth=limit) == json.loads(shallow)
