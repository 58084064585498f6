"""Catalog files (spec §2): bad files are refused whole with every problem named, nothing is
half-loaded, the embedded catalog is sound; and the CLI reports refusals as JSON, exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.catalog.offerings import (
    MAX_OFFERINGS,
    Catalog,
    build_catalog,
    default_catalog,
    load_catalog,
    parse_catalog,
)
from router.cli.main import main
from router.common.problems import CatalogError
from router.facade import Router
from router.policy.admit import admit_text

REQUEST = {"messages": [{"role": "user", "content": "Summarise this ticket, please."}],
           "max_tokens": 100}
POLICY: list[Any] = [
    "policy", ["ev_zero"],
    ["filter", [">=", "context_window", 100000], ["<=", "output_price", 10.0]],
    ["rank", ["asc", "est_cost"]],
    ["select", ["first"], ["cascade", 2]],
    ["mutate", ["clamp_max_tokens"]],
    ["fallback", ["retry", 1, 200]],
]


def entry(oid: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": oid, "model": oid.rsplit("/", 1)[-1], "provider": oid.split("/", 1)[0],
        "region": "global", "context_window": 200_000, "max_output_tokens": 8_192,
        "input_price": 1.0, "output_price": 5.0, "cached_input_price": 0.1,
        "capabilities": ["tools", "streaming"], "tags": ["approved"],
        "deprecation_date": "2030-01-01", "api_model": "api-name",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


GOOD_ENTRIES = [
    entry("anthropic/claude-haiku-4-5"),
    entry("bedrock/eu/claude-haiku-4-5", region="eu", input_price=1.1, output_price=5.5),
    entry("openai/gpt-4o-mini", input_price=0.15, output_price=0.6, context_window=128_000),
    entry("openai/gpt-4o", input_price=2.5, output_price=10.0, context_window=128_000),
    entry("xai/grok", input_price=3.0, output_price=15.0),
]


def doc(*entries: Any, **top: Any) -> dict[str, Any]:
    return {"schema": 1, "source": "test", "offerings": list(entries), **top}


def refused(data: object) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        build_catalog(data)
    return info.value


def codes(err: CatalogError) -> list[tuple[str, str]]:
    return [(p.code, p.pointer) for p in err.problems]


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(doc(*GOOD_ENTRIES)), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Good files


def test_good_catalog_loads(good_file: Path) -> None:
    cat = load_catalog(good_file)
    assert len(cat) == len(GOOD_ENTRIES)
    assert [o.id for o in cat] == sorted(e["id"] for e in GOOD_ENTRIES)
    haiku = cat.get("anthropic/claude-haiku-4-5")
    assert haiku is not None and haiku.input_price == 1.0 and haiku.deprecation_date == (
        "2030-01-01")
    assert cat.version.startswith("cat-")
    again = build_catalog(cat.to_json())
    assert again.version == cat.version


def test_missing_optional_values_stay_unknown() -> None:
    cat = build_catalog(doc({"id": "p/m", "model": "m", "provider": "p", "region": "us"}))
    (o,) = cat.offerings
    assert o.context_window is None and o.input_price is None and o.capabilities is None
    assert o.attr("input_price") is None


def test_version_does_not_depend_on_entry_order() -> None:
    a = build_catalog(doc(*GOOD_ENTRIES))
    b = build_catalog(doc(*reversed(GOOD_ENTRIES)))
    assert a.version == b.version
    c = build_catalog(doc(*GOOD_ENTRIES[:-1], entry("xai/grok", input_price=3.5)))
    assert c.version != a.version


# --------------------------------------------------------------------------------------------
# Bad documents: every problem named


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(doc(entry("a/b"), schema=2), [("catalog.schema", "/schema")],
                     id="schema-2"),
        pytest.param({"offerings": []}, [("catalog.schema", "/schema")], id="schema-missing"),
        pytest.param(doc(schema="1"), [("catalog.schema", "/schema")], id="schema-string"),
        pytest.param(doc(schema=True), [("catalog.schema", "/schema")], id="schema-true"),
        pytest.param([], [("catalog.not_an_object", "")], id="not-an-object"),
        pytest.param({"schema": 1}, [("catalog.type", "/offerings")], id="offerings-missing"),
        pytest.param(doc(offerings={"a": 1}), [("catalog.type", "/offerings")],
                     id="offerings-object"),
        pytest.param(doc(source=5), [("catalog.type", "/source")], id="source-type"),
        pytest.param(doc(generated={"at": 5}), [("catalog.type", "/generated")],
                     id="generated-type"),
        pytest.param(doc(colour="blue"), [("catalog.unknown_field", "/colour")],
                     id="unknown-top-level"),
    ],
)
def test_bad_top_level(data: object, expected: list[tuple[str, str]]) -> None:
    assert codes(refused(data)) == expected


BAD_ENTRIES: list[tuple[str, dict[str, Any] | object, str]] = [
    # (case id, entry, field named)
    ("missing-id", {k: v for k, v in entry("a/b").items() if k != "id"}, "id"),
    ("missing-model", entry("a/b", model=None), "model"),
    ("missing-provider", entry("a/b", provider=None), "provider"),
    ("missing-region", entry("a/b", region=None), "region"),
    ("context-string", entry("a/b", context_window="200000"), "context_window"),
    ("context-float", entry("a/b", context_window=1.5), "context_window"),
    ("context-zero", entry("a/b", context_window=0), "context_window"),
    ("context-bool", entry("a/b", context_window=True), "context_window"),
    ("max-output-negative", entry("a/b", max_output_tokens=-1), "max_output_tokens"),
    ("price-negative", entry("a/b", input_price=-0.01), "input_price"),
    ("output-price-negative", entry("a/b", output_price=-5), "output_price"),
    ("cached-price-negative", entry("a/b", cached_input_price=-1.0), "cached_input_price"),
    ("price-string", entry("a/b", input_price="1.0"), "input_price"),
    ("price-bool", entry("a/b", output_price=False), "output_price"),
    ("price-nan", entry("a/b", input_price=float("nan")), "input_price"),
    ("price-inf", entry("a/b", output_price=float("inf")), "output_price"),
    ("price-absurd", entry("a/b", output_price=1e12), "output_price"),
    ("unknown-field", entry("a/b", colour="blue"), "colour"),
    ("live-status", entry("a/b", status="available"), "status"),
    ("live-latency", entry("a/b", latency_ms=120.0), "latency_ms"),
    ("live-error-rate", entry("a/b", error_rate=0.01), "error_rate"),
    ("derived-deprecated", entry("a/b", deprecated=True), "deprecated"),
    ("unknown-capability", entry("a/b", capabilities=["tools", "telepathy"]), "capabilities"),
    ("capabilities-string", entry("a/b", capabilities="tools"), "capabilities"),
    ("tags-string", entry("a/b", tags="approved"), "tags"),
    ("bad-date-month", entry("a/b", deprecation_date="2025-13-01"), "deprecation_date"),
    ("bad-date-day", entry("a/b", deprecation_date="2025-02-30"), "deprecation_date"),
    ("bad-date-words", entry("a/b", deprecation_date="next year"), "deprecation_date"),
    ("bad-date-datetime", entry("a/b", deprecation_date="2025-01-01T00:00:00"),
     "deprecation_date"),
    ("bad-date-number", entry("a/b", deprecation_date=20250101), "deprecation_date"),
    ("api-model-empty", entry("a/b", api_model=""), "api_model"),
    ("id-number", entry("a/b", id=7), "id"),
]


@pytest.mark.parametrize(("bad", "field"), [pytest.param(e, f, id=i) for i, e, f in BAD_ENTRIES])
def test_bad_entry_is_named(bad: dict[str, Any], field: str) -> None:
    err = refused(doc(entry("ok/first"), bad))
    assert err.problems, "refused"
    assert {p.code for p in err.problems} == {"catalog.invalid_entry"}
    pointers = [p.pointer for p in err.problems]
    assert all(p.startswith("/offerings/1") for p in pointers), pointers
    assert any(p.split("/")[3:4] == [field] for p in pointers), (pointers, field)
    for p in err.problems:
        assert "entry 1" in p.message
        if isinstance(bad.get("id"), str):
            assert f"`{bad['id']}`" in p.message
    named = [p for p in err.problems if p.pointer.split("/")[3:4] == [field]]
    assert f"`{field}`" in named[0].message


def test_live_fields_are_refused_with_a_reason() -> None:
    err = refused(doc(entry("a/b", status="available")))
    (problem,) = err.problems
    assert problem.pointer == "/offerings/0/status"
    assert "live" in problem.message


def test_non_object_entry() -> None:
    err = refused(doc(entry("a/b"), "a/c", None, 5))
    assert codes(err) == [("catalog.invalid_entry", f"/offerings/{i}") for i in (1, 2, 3)]
    assert [p.message.split(":")[0] for p in err.problems] == ["entry 1", "entry 2", "entry 3"]


def test_duplicate_ids() -> None:
    err = refused(doc(entry("a/b"), entry("a/c"), entry("a/b", input_price=2.0)))
    assert codes(err) == [("catalog.duplicate_id", "/offerings/2/id")]
    assert "entry 0" in err.problems[0].message and "`a/b`" in err.problems[0].message


def test_every_problem_named_at_once_sorted() -> None:
    entries: list[Any] = [entry(f"p/m{i}") for i in range(12)]
    entries[1] = entry("p/m1", input_price=-1)
    entries[3] = entry("p/m3", status="open", capabilities=["telepathy"])
    entries[5] = entry("p/m5", model=None)
    entries[7] = entry("p/m0")  # duplicate of entry 0
    entries[10] = entry("p/m10", deprecation_date="2025-99-99")
    err = refused(doc(*entries, schema=3, extra=True))
    assert codes(err) == [
        ("catalog.unknown_field", "/extra"),
        ("catalog.invalid_entry", "/offerings/1/input_price"),
        ("catalog.invalid_entry", "/offerings/3/capabilities"),
        ("catalog.invalid_entry", "/offerings/3/status"),
        ("catalog.invalid_entry", "/offerings/5/model"),
        ("catalog.duplicate_id", "/offerings/7/id"),
        ("catalog.invalid_entry", "/offerings/10/deprecation_date"),
        ("catalog.schema", "/schema"),
    ]
    text = str(err)
    for needle in ("entry 1 (`p/m1`)", "entry 3 (`p/m3`)", "entry 5 (`p/m5`)", "entry 7",
                   "entry 10 (`p/m10`)", "`input_price`", "`deprecation_date`", "`model`"):
        assert needle in text, needle


def test_too_many_offerings() -> None:
    one = entry("a/b")
    err = refused(doc(*([one] * (MAX_OFFERINGS + 1))))
    assert codes(err) == [("catalog.too_large", "/offerings")]


# --------------------------------------------------------------------------------------------
# Bad files


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        '{"schema": 1, "offerings": [}',
        json.dumps(doc(entry("a/b"))).replace("1.0", "NaN", 1),
        json.dumps(doc(entry("a/b"))).replace("5.0", "Infinity", 1),
        json.dumps(doc(entry("a/b"))).replace("5.0", "-Infinity", 1),
    ],
    ids=["empty", "truncated", "words", "syntax", "NaN", "Infinity", "-Infinity"],
)
def test_non_json_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text)
    assert codes(info.value) == [("catalog.invalid_json", "")]
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert codes(info.value) == [("catalog.invalid_json", "")]
    assert str(path) in info.value.problems[0].message


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(doc(entry("a/b", model="caf\u00e9"))).replace(
        "\\u00e9", "\u00e9").encode("latin-1"))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert codes(info.value) == [("catalog.invalid_json", "")]
    assert "UTF-8" in info.value.problems[0].message


def test_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"schema": 1, "offerings": ' + "[" * 100_000 + "]" * 100_000 + "}",
                    encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog(path)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.json" if kind == "missing" else tmp_path
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert codes(info.value) == [("catalog.unreadable", "")]
    assert str(path) in info.value.problems[0].message


def test_router_on_a_bad_path_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc(entry("a/b", input_price=-1))), encoding="utf-8")
    with pytest.raises(CatalogError):
        Router(bad)


# --------------------------------------------------------------------------------------------
# Nothing half-loaded


@pytest.fixture
def router(good_file: Path) -> Iterator[Router]:
    r = Router(load_catalog(good_file))
    yield r
    r.close()


def snapshot(r: Router) -> tuple[object, ...]:
    d = r.route(POLICY, REQUEST).decision
    return (d.admissible, d.selected, d.cascade, r.catalog.version, len(r.catalog),
            tuple(r.catalog.offerings))


def test_refused_file_changes_nothing(router: Router, good_file: Path, tmp_path: Path) -> None:
    before = snapshot(router)
    assert before[1] == "openai/gpt-4o-mini"
    # a file whose first entries are fine and whose last entry is bad
    bad_entries = [entry("cheap/model", provider="openai", input_price=0.0001,
                                  output_price=0.0001),
                   *GOOD_ENTRIES, entry("bad/one", input_price=-1)]
    files = {
        "bad-entry.json": json.dumps(doc(*bad_entries)),
        "not-json.json": "{",
        "nan.json": json.dumps(doc(*bad_entries[:-1])).replace("0.0001", "NaN"),
        "schema.json": json.dumps(doc(*bad_entries[:-1], schema=2)),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CatalogError):
            load_catalog(path)
        with pytest.raises(CatalogError):
            Router(path)
        assert snapshot(router) == before, name
    assert load_catalog(good_file).version == before[3]


def test_good_catalog_with_the_cheap_model_would_change_the_decision(
    router: Router, tmp_path: Path
) -> None:
    """Control for the test above: the bad file's good part would have changed the winner."""
    cat = build_catalog(doc(entry("cheap/model", provider="openai", input_price=0.0001,
                                  output_price=0.0001),
                            *GOOD_ENTRIES))
    other = Router(cat)
    try:
        assert other.route(POLICY, REQUEST).selected == "cheap/model"
    finally:
        other.close()


# --------------------------------------------------------------------------------------------
# The embedded catalog


@pytest.fixture(scope="module")
def embedded() -> Catalog:
    return default_catalog()


def test_embedded_catalog_loads(embedded: Catalog) -> None:
    assert len(embedded) > 1000
    ids = [o.id for o in embedded]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert embedded.version.startswith("cat-")


def test_embedded_haiku_known_values(embedded: Catalog) -> None:
    haiku = embedded.get("anthropic/claude-haiku-4-5")
    assert haiku is not None
    assert haiku.model == "claude-haiku-4-5"
    assert haiku.provider == "anthropic"
    assert haiku.input_price == 1.0
    assert haiku.output_price == 5.0
    assert haiku.context_window == 200_000
    assert haiku.input_price != 0 and haiku.output_price != 0


def test_embedded_regional_offerings(embedded: Catalog) -> None:
    for prefix in ("bedrock/eu/", "azure/eu/"):
        regional = [o for o in embedded if o.id.startswith(prefix)]
        assert regional, prefix
        assert {o.region for o in regional} == {"eu"}, prefix
    eu_haiku = [o for o in embedded if o.id.startswith("bedrock/eu/")
                and o.model.startswith("claude-haiku-4-5")]
    assert eu_haiku and all(o.input_price and o.output_price for o in eu_haiku)


def test_embedded_catalog_round_trips(embedded: Catalog) -> None:
    assert build_catalog(embedded.to_json()).version == embedded.version


def test_embedded_catalog_has_no_live_fields(embedded: Catalog) -> None:
    for o in embedded.offerings[:50]:
        dumped = o.static_json()
        assert not {"status", "latency_ms", "error_rate", "deprecated"} & set(dumped)


# --------------------------------------------------------------------------------------------
# The command line


def write(path: Path, value: object) -> str:
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def test_cli_policy_check_bad_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ["policy", ["ev_zero"],
           ["filter", [">=", "context", 200000], ["has", "context_window", "x"]],
           ["rank", ["asc", "region"]], ["select", ["first"]], ["mutate"], ["fallback"]]
    code = main(["policy", "check", write(tmp_path / "p.json", bad)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    report = json.loads(err)
    assert report["ok"] is False
    problems = report["problems"]
    assert [(p["code"], p["pointer"]) for p in problems] == [
        ("policy.unknown_attribute", "/2/1/1"),
        ("policy.type_mismatch", "/2/2/1"),
        ("policy.bad_metric", "/3/1/1"),
    ]
    for p in problems:
        assert set(p) == {"code", "pointer", "message", "hint"}
        assert p["message"]
    assert problems[0]["hint"] == "did you mean `context_window`?"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text",
    ["{", "[1, 2", '["policy", NaN]', "\"" + "x" * 70_000 + "\""],
    ids=["truncated", "list", "NaN", "too-large"],
)
def test_cli_policy_check_unparseable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      text: str) -> None:
    code = main(["policy", "check", write(tmp_path / "p.json", text)])
    _, err = capsys.readouterr()
    assert code == 2
    (problem,) = json.loads(err)["problems"]
    assert problem["code"] in ("policy.invalid_json", "policy.too_large")


def test_cli_policy_check_missing_file(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "check", str(tmp_path / "missing.json")])
    _, err = capsys.readouterr()
    assert code == 2
    assert json.loads(err)["problems"][0]["code"] == "policy.unreadable"


def test_cli_policy_check_lone_surrogate(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Valid JSON text with a lone surrogate escape: refused (exit 2), no traceback."""
    policy = [*POLICY[:5], ["mutate", ["set", "user", "\ud800"]], POLICY[6]]
    path = write(tmp_path / "p.json", json.dumps(policy))  # ASCII text with the escape
    assert "\\ud800" in Path(path).read_text(encoding="utf-8")
    code = main(["policy", "check", path])
    _, err = capsys.readouterr()
    assert code == 2
    assert json.loads(err)["ok"] is False


def test_cli_policy_check_good_policy(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(POLICY, indent=2)
    code = main(["policy", "check", write(tmp_path / "p.json", text)])
    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    result = json.loads(out)
    expected = admit_text(text)
    assert result == {"ok": True, "hash": expected.hash, "canonical": expected.canonical}


def test_cli_catalog_show_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "show", "anthropic/claude-haiku-4-6"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    (problem,) = json.loads(err)["problems"]
    assert problem["code"] == "catalog.unknown_offering"
    assert problem["hint"] == "did you mean `anthropic/claude-haiku-4-5`?"


def test_cli_catalog_show_known_id(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "show", "anthropic/claude-haiku-4-5"])
    out, _ = capsys.readouterr()
    assert code == 0
    shown = json.loads(out)
    assert shown["input_price"] == 1.0 and shown["output_price"] == 5.0
    assert shown["context_window"] == 200_000


def test_cli_catalog_show_with_a_catalog_file(good_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "show", "openai/gpt-4o-mni", "--catalog", str(good_file)])
    _, err = capsys.readouterr()
    assert code == 2
    assert json.loads(err)["problems"][0]["hint"] == "did you mean `openai/gpt-4o-mini`?"


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(doc(entry("a/b", input_price=-1), entry("a/c", status="available"))),
        "{",
        json.dumps(doc(entry("a/b"))).replace("1.0", "NaN", 1),
        None,  # missing file
    ],
    ids=["invalid-entries", "not-json", "NaN", "missing"],
)
def test_cli_route_with_a_bad_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      content: str | None) -> None:
    catalog = tmp_path / "bad.json"
    if content is not None:
        catalog.write_text(content, encoding="utf-8")
    code = main(["route", "--policy", write(tmp_path / "p.json", POLICY),
                 "--request", write(tmp_path / "r.json", REQUEST),
                 "--catalog", str(catalog), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    report = json.loads(err)
    assert report["ok"] is False and report["refused"] == "catalog"
    assert report["problems"]
    if content is not None and content.startswith('{"schema"') and "NaN" not in content:
        assert [p["pointer"] for p in report["problems"]] == [
            "/offerings/0/input_price", "/offerings/1/status"]


def test_cli_route_with_a_good_catalog(tmp_path: Path, good_file: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["route", "--policy", write(tmp_path / "p.json", POLICY),
                 "--request", write(tmp_path / "r.json", REQUEST),
                 "--catalog", str(good_file), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    record = json.loads(out)
    assert record["selected"] == "openai/gpt-4o-mini"
    assert record["policy"] == json.loads(admit_text(json.dumps(POLICY)).canonical)
