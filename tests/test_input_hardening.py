"""Hardening of inputs (issue 11, findings 8-12 and the overlay part of 14): whatever a file or a
library caller hands us -- huge integers, NaN and infinity, deep nesting, non-objects, thousands
of unknown ids -- is refused as a problem with a code and a location, never a traceback, and
nothing non-standard reaches a provider."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router import CatalogError, PolicyError, RequestError, build_catalog
from router.catalog.importers.modelsdev import ModelsDev
from router.catalog.overlays import (
    MAX_UNKNOWN_REPORTED,
    OverlayError,
    apply_overlays,
    build_overlay,
    load_overlay,
    parse_overlay,
)
from router.cli.main import main
from router.common import jsonio
from router.common.problems import Suggester, did_you_mean
from router.config import RouterConfig
from router.facade import Router
from tests.dispatch_support import catalog, offering, policy, request
from tests.fakes import FakeProvider

PRICE_400 = "9" * 400


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture()
def lifted_int_limit() -> Iterator[None]:
    """A process that lifted Python's int-to-string limit (as some applications do)."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


# --------------------------------------------------------------------------- finding 8


def test_a_400_digit_integer_price_is_a_catalog_error_naming_entry_and_field() -> None:
    doc = {"schema": 1, "offerings": [offering("openai/x", "openai", "x", 10**400, 1.0)]}
    with pytest.raises(CatalogError) as info:  # was: OverflowError from float()
        build_catalog(doc)
    [p] = info.value.problems
    assert (p.code, p.pointer) == ("catalog.invalid_entry", "/offerings/0/input_price")
    assert "`openai/x`" in p.message and "1000000" in p.message


def test_a_400_digit_integer_price_is_an_overlay_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(f'schema = 1\n[prices."openai/cheap"]\ninput_price = {PRICE_400}\n')
    with pytest.raises(OverlayError) as info:  # was: OverflowError
        load_overlay(path)
    [p] = info.value.problems
    assert p.code == "overlay.invalid_toml" and "400 digits" in p.message
    # the same number in a parsed document (a library caller) is refused at its pointer
    with pytest.raises(OverlayError) as built:
        build_overlay({"schema": 1, "prices": {"openai/cheap": {"output_price": 10**400}}})
    assert [(q.code, q.pointer) for q in built.value.problems] == [
        ("overlay.invalid", "/prices/openai~1cheap/output_price")]


# --------------------------------------------------------------------------- findings 9, 12


@pytest.fixture(scope="module")
def router() -> Iterator[Router]:
    with Router(catalog(), config=RouterConfig(environ={})) as r:
        yield r


def every_method(router: Router, body: Any) -> list[RequestError]:
    """The refusal of `body` by route, explain, complete and stream (each must refuse)."""
    calls = [lambda: router.route(policy(), body),
             lambda: router.explain(policy(), "openai/cheap", body),
             lambda: router.complete_sync(policy(), body),
             lambda: router.stream_sync(policy(), body)]
    errors = []
    for call in calls:
        with pytest.raises(RequestError) as info:
            call()
        errors.append(info.value)
    return errors


@pytest.mark.parametrize("body", [[1, 2, 3], "x", 7])
def test_a_non_object_request_is_refused_by_every_method(router: Router, body: Any) -> None:
    for error in every_method(router, body):
        assert [(p.code, p.pointer) for p in error.problems] == [("request.invalid", "")]


@pytest.mark.parametrize(("body", "pointer"), [
    pytest.param({**request(), "metadata": {"x": deep(2000)}}, "/metadata/x", id="metadata"),
    pytest.param({**request(), "tools": deep(2000)}, "/tools", id="tools"),
    pytest.param({**request(), "messages": [{"role": "user", "content": [
        {"type": "input_audio", "v": deep(2000)}]}]}, "/messages/0/content/0/v", id="content"),
])
def test_a_request_nested_2000_deep_is_refused_with_a_pointer(router: Router, body: Any,
                                                              pointer: str) -> None:
    for error in every_method(router, body):  # was: RecursionError, or accepted
        [p] = error.problems
        assert p.code == "request.too_deep"
        assert p.pointer.startswith(pointer + "/0") and p.pointer.count("/") == 64
        assert p.hint == "at most 64 levels of arrays and objects"


@pytest.mark.parametrize(("extra", "pointer"), [
    ({"temperature": float("nan")}, "/temperature"),
    ({"top_p": float("inf")}, "/top_p"),
    ({"metadata": {"scores": [1.0, float("-inf")]}}, "/metadata/scores/1"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"maximum": float("inf")}}}}}]},
     "/tools/0/function/parameters/properties/n/maximum"),
    ({"seed": 10**400}, "/seed"),
])
def test_non_finite_numbers_anywhere_in_a_request_are_refused_with_a_pointer(
        router: Router, extra: dict[str, Any], pointer: str) -> None:
    for error in every_method(router, {**request(), **extra}):
        [p] = error.problems
        assert (p.code, p.pointer) == ("request.bad_value", pointer)
        assert p.hint is not None


def test_values_json_cannot_carry_are_refused_with_a_pointer(router: Router) -> None:
    body = {**request(), "metadata": {"tags": {"a", "b"}, 3: "x", "note": "\ud800"}}
    with pytest.raises(RequestError) as info:
        router.route(policy(), body)
    assert [(p.code, p.pointer, p.message) for p in info.value.problems] == [
        ("request.bad_value", "/metadata", "an object key must be a string, not int"),
        ("request.bad_value", "/metadata/note", "the string is not valid Unicode (a lone "
                                                "surrogate)"),
        ("request.bad_value", "/metadata/tags", "not a JSON value: set"),
    ]


def test_a_nan_temperature_never_reaches_the_provider() -> None:
    with FakeProvider(api_key="sk-test", models=["cheap-2026"]) as fp, Router(
            catalog(), config=RouterConfig(environ={
                "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fp.base_url + "/v1"})) as r:
        with pytest.raises(RequestError) as info:  # was: sent as `"temperature":NaN`
            r.complete_sync(policy(), request(temperature=float("nan")))
        assert info.value.problems[0].pointer == "/temperature"
        assert fp.requests == []
        done = r.complete_sync(policy(), request(temperature=0.5))  # a finite one is sent
        assert done.served_by == "openai/cheap"
        assert fp.requests[-1].json["temperature"] == 0.5


def test_an_out_of_range_float_literal_in_a_request_file_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps(policy()))
    req = tmp_path / "r.json"  # `1e999` is valid JSON syntax that reads as infinity
    req.write_text('{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}')
    assert main(["route", "--policy", str(pol), "--request", str(req)]) == 2
    [p] = json.loads(capsys.readouterr().err)["problems"]
    assert p["code"] == "request.invalid_json" and "1e999" in p["message"]


# --------------------------------------------------------------------------- finding 11


def test_nan_and_huge_integers_in_library_policies_and_evidence_are_refused(
        router: Router) -> None:
    pols = [policy(filters=[["<=", "input_price", float("inf")]]),
            ["policy", ["ev", ["score", "pass", {"cheap": float("nan")}]], *policy()[2:]],
            ["policy", ["ev", ["score", "pass", {"cheap": 10**400}]], *policy()[2:]]]
    for pol in pols:
        with pytest.raises(PolicyError) as info:
            router.route(pol, request())
        assert [p.code for p in info.value.problems] == ["policy.bad_value"]


def test_a_toml_overlay_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ops.toml"
    path.write_text('schema = 1\ndisable = ["openai/cheap"]\ndisable = []\n')
    with pytest.raises(OverlayError) as info:
        load_overlay(path)
    assert info.value.problems[0].code == "overlay.invalid_toml"


@pytest.mark.parametrize(("content", "words"), [
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested 5000 levels"),
    ("x = " + "9" * 5000 + "\n", "5000 digits"),
    ("x = nan\n", "not a finite number"),
])
def test_a_models_dev_source_file_is_read_strictly(tmp_path: Path, content: str,
                                                   words: str) -> None:
    models = tmp_path / "providers" / "openai" / "models"
    models.mkdir(parents=True)
    (models / "m.toml").write_text(content)
    with pytest.raises(CatalogError) as info:  # was: RecursionError, ValueError, or accepted
        ModelsDev(tmp_path).parse("providers/openai/models/m.toml")
    [p] = info.value.problems
    assert p.code == "import.invalid_toml" and words in p.message


# --------------------------------------------------------------------------- finding 10


@pytest.mark.parametrize(("content", "code", "words"), [
    pytest.param("schema = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n", "overlay.too_deep",
                 "nested 5000 levels deep", id="arrays"),
    pytest.param("schema = 1\nx = " + "{a = " * 5000 + "}" * 5000 + "\n", "overlay.too_deep",
                 "nested 5000 levels deep", id="inline-tables"),
    pytest.param("schema = 1\nx" + ".x" * 5000 + " = 1\n", "overlay.too_deep",
                 "nested deeper than 257 levels", id="dotted-keys"),
    pytest.param('schema = 1\n[prices."openai/cheap"]\ninput_price = ' + "9" * 5000 + "\n",
                 "overlay.invalid_toml", "5000 digits", id="digits"),
    pytest.param('schema = 1\n[prices."openai/cheap"]\ninput_price = 9223372036854775808\n',
                 "overlay.invalid_toml", "64-bit", id="int64"),
    pytest.param('schema = 1\n[prices."openai/cheap"]\ninput_price = -inf\n',
                 "overlay.invalid_toml", "not a finite number", id="inf"),
])
def test_a_hostile_toml_overlay_is_refused_before_it_can_crash(
        tmp_path: Path, lifted_int_limit: None, content: str, code: str, words: str) -> None:
    path = tmp_path / "ops.toml"
    path.write_text(content)
    with pytest.raises(OverlayError) as info:  # was: OverflowError with the limit lifted
        load_overlay(path)
    [p] = info.value.problems
    assert p.code == code and words in p.message, p.message
    assert "set_int_max_str_digits" not in p.message


def test_brackets_and_digits_inside_toml_strings_and_comments_do_not_count() -> None:
    text = ('a = "[[[[ 99999999999" # [[[[\n'
            "b = '[[[[ {{{{'\n"
            'c = """\n[[[[ \\""" {{{{ """\n'
            "d = '''[[[[\n{{{{'''''\n"
            'e = "\\"[[[["\n'
            "f = [1, 2]\n")
    assert jsonio.toml_scan(text) == (1, 1)
    assert jsonio.loads_toml(text, max_depth=1)["f"] == [1, 2]
    assert jsonio.toml_scan("x = [[1, {y = [2]}]]\n[t]\n") == (4, 1)


# --------------------------------------------------------------------------- finding 14


BIG = build_catalog({"schema": 1, "offerings": [
    offering(f"{p}/model-{i}", p, f"model-{i}", 1.0, 2.0)
    for p in ("openai", "anthropic", "mistral") for i in range(300)]})


def test_an_overlay_naming_thousands_of_unknown_ids_lists_the_first_and_counts_the_rest() -> None:
    unknown = [f"nope/model-{i}" for i in range(2000)]
    overlay = parse_overlay(json.dumps({
        "schema": 1, "disable": ["opneai/model-17", *unknown, "azure/*"],
        "tags": {"openai/model-1*": ["ok"]}}), "ops.json")
    with pytest.raises(OverlayError) as info:
        apply_overlays(BIG, [overlay])
    problems = info.value.problems
    assert len(problems) == MAX_UNKNOWN_REPORTED + 1  # was: 2002, one "did you mean" each
    assert [p.pointer for p in problems] == [f"/disable/{i}" for i in range(21)]
    assert problems[0].hint == "did you mean `openai/model-17`?"
    assert problems[1].message == "`ops.json`: no offering `nope/model-0` in the catalog"
    last = problems[-1]
    assert last.code == "overlay.unknown_offering"
    assert "`nope/model-19` and 1981 more ids or globs after it" in last.message


def test_indexed_suggestions_agree_with_a_full_comparison() -> None:
    ids = [o.id for o in BIG]
    suggest = Suggester(ids)
    for typo in ("opneai/model-17", "anthropic/modle-3", "mistral/model-2999", "x", "",
                 "openai/model-1", "antrhopic/model-299", "zzz/qqq"):
        assert suggest.hint(typo) == did_you_mean(typo, ids), typo


@pytest.mark.parametrize("pattern", ["openai/model-1*", "*/model-29?", "anthropic/model-[12]0",
                                     "mistral/*", "[am]*/model-7", "openai/model-1[", "*"])
def test_globs_match_what_fnmatch_matches(pattern: str) -> None:
    import fnmatch

    overlay = build_overlay({"schema": 1, "disable": [pattern]})
    expected = {o.id for o in BIG if fnmatch.fnmatchcase(o.id, pattern)}
    if expected:
        assert apply_overlays(BIG, [overlay]).disabled == expected
    else:
        with pytest.raises(OverlayError) as info:
            apply_overlays(BIG, [overlay])
        assert info.value.problems[0].code == "overlay.no_match"
