"""Operator overlays: tags, disabled offerings, negotiated prices, private deployments; applied in
order, recorded in the catalog version; every problem named; a refused overlay changes nothing.
Also the `base_url` extension of an offering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router.catalog.offerings import Catalog, build_catalog, load_catalog
from router.catalog.overlays import (
    OverlayError,
    apply_overlays,
    build_overlay,
    export_document,
    load_overlay,
    load_overlays,
    parse_overlay,
)
from router.cli.main import main
from router.common.problems import CatalogError
from router.facade import Router
from router.live.state import LiveState, disabled_values, with_disabled


def entry(oid: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": oid, "model": oid.rsplit("/", 1)[-1], "provider": oid.split("/", 1)[0],
        "region": "global", "context_window": 200_000, "max_output_tokens": 8_192,
        "input_price": 1.0, "output_price": 5.0, "capabilities": ["tools", "streaming"],
    }
    base.update(overrides)
    return base


BASE = build_catalog({"schema": 1, "source": "test", "offerings": [
    entry("anthropic/claude-haiku-4-5"),
    entry("bedrock/eu/claude-haiku-4-5", region="eu", input_price=1.1, output_price=5.5),
    entry("openai/gpt-4o", input_price=2.5, output_price=10.0),
    entry("openai/gpt-4o-mini", input_price=0.15, output_price=0.6),
]})

VLLM = {"id": "vllm/llama-3.3-70b", "model": "llama-3.3-70b", "provider": "vllm",
        "region": "eu", "context_window": 131072, "input_price": 0, "output_price": 0,
        "capabilities": ["tools", "streaming"], "base_url": "http://10.0.0.5:8000/v1"}

TOML = """\
schema = 1
description = "ACME production"
disable = ["openai/gpt-4o-mini"]

[tags]
"anthropic/*" = ["approved", "zdr"]
"vllm/*" = ["approved"]

[prices."openai/gpt-4o"]
input_price = 2
output_price = 8.0

[[offerings]]
id = "vllm/llama-3.3-70b"
model = "llama-3.3-70b"
provider = "vllm"
region = "eu"
context_window = 131072
input_price = 0
output_price = 0
capabilities = ["tools", "streaming"]
base_url = "http://10.0.0.5:8000/v1"
"""

JSON_DOC: dict[str, Any] = {
    "schema": 1, "description": "ACME production", "disable": ["openai/gpt-4o-mini"],
    "tags": {"anthropic/*": ["approved", "zdr"], "vllm/*": ["approved"]},
    "prices": {"openai/gpt-4o": {"input_price": 2, "output_price": 8.0}},
    "offerings": [VLLM],
}


def problems(fn: Any, *args: Any) -> list[tuple[str, str]]:
    with pytest.raises(OverlayError) as info:
        fn(*args)
    return [(p.code, p.pointer) for p in info.value.problems]


# --------------------------------------------------------------------------- applying


def test_overlay_applies_tags_prices_disable_and_offerings() -> None:
    cat = apply_overlays(BASE, [parse_overlay(TOML, "ops.toml", "toml")])
    haiku = cat.get("anthropic/claude-haiku-4-5")
    assert haiku is not None and haiku.tags == ("approved", "zdr")
    bedrock = cat.get("bedrock/eu/claude-haiku-4-5")
    assert bedrock is not None and bedrock.tags == ()
    gpt4o = cat.get("openai/gpt-4o")
    assert gpt4o is not None and (gpt4o.input_price, gpt4o.output_price) == (2.0, 8.0)
    assert gpt4o.cached_input_price is None  # not given: unchanged
    vllm = cat.get("vllm/llama-3.3-70b")
    assert vllm is not None and vllm.base_url == "http://10.0.0.5:8000/v1"
    assert vllm.tags == ("approved",)  # a glob matches an offering the same overlay adds
    assert cat.disabled == frozenset({"openai/gpt-4o-mini"})
    assert cat.get("openai/gpt-4o-mini") is not None  # disabled offerings stay visible
    assert len(cat) == len(BASE) + 1
    assert cat.generated["overlay.1"].startswith("ops.toml sha256:")


def test_toml_and_json_with_the_same_content_give_the_same_version() -> None:
    toml = apply_overlays(BASE, [parse_overlay(TOML, "a.toml", "toml")])
    js = apply_overlays(BASE, [parse_overlay(json.dumps(JSON_DOC), "b.json")])
    assert toml.version == js.version
    assert toml.offerings == js.offerings


def test_version_changes_with_the_overlay_and_the_base() -> None:
    plain = apply_overlays(BASE, [build_overlay(JSON_DOC)])
    changed = apply_overlays(BASE, [build_overlay({**JSON_DOC, "disable": []})])
    assert len({BASE.version, plain.version, changed.version}) == 3
    assert apply_overlays(BASE, [build_overlay(JSON_DOC)]).version == plain.version
    other_base = build_catalog({"schema": 1, "offerings": [entry("anthropic/claude-haiku-4-5"),
                                                           entry("openai/gpt-4o"),
                                                           entry("openai/gpt-4o-mini")]})
    small = build_overlay({"schema": 1, "tags": {"openai/*": ["approved"]}})
    assert apply_overlays(BASE, [small]).version != apply_overlays(other_base, [small]).version


def test_no_overlays_is_the_identity() -> None:
    assert apply_overlays(BASE, []) is BASE


def test_overlays_apply_in_order() -> None:
    first = build_overlay({"schema": 1, "offerings": [VLLM]}, "first.json")
    second = build_overlay({"schema": 1, "tags": {"vllm/llama-3.3-70b": ["private"]},
                            "prices": {"vllm/llama-3.3-70b": {"input_price": 0.5}}},
                           "second.json")
    cat = apply_overlays(BASE, [first, second])
    vllm = cat.get("vllm/llama-3.3-70b")
    assert vllm is not None and vllm.tags == ("private",) and vllm.input_price == 0.5
    assert [cat.generated[k].split()[0] for k in ("overlay.1", "overlay.2")] == \
        ["first.json", "second.json"]
    # the other order refers to an offering that does not exist yet
    assert problems(apply_overlays, BASE, [second, first]) == [
        ("overlay.unknown_offering", "/prices/vllm~1llama-3.3-70b"),
        ("overlay.unknown_offering", "/tags/vllm~1llama-3.3-70b"),
    ]


def test_with_disabled_sets_live_status() -> None:
    cat = apply_overlays(BASE, [build_overlay(JSON_DOC)])
    live = with_disabled(LiveState.not_consulted(), cat)
    assert live.of("openai/gpt-4o-mini").status == "disabled"
    assert live.of("openai/gpt-4o").status == "available"
    assert live.consulted is False
    assert with_disabled(LiveState.not_consulted(), BASE).values == {}
    assert set(disabled_values(cat)) == {"openai/gpt-4o-mini"}


def test_disabled_offering_is_never_selected() -> None:
    policy = ["policy", ["ev_zero"], ["filter"], ["rank", ["asc", "output_price"]],
              ["select", ["first"], ["cascade", 1]], ["mutate"], ["fallback"]]
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    plain = Router(BASE).route(policy, request)
    assert plain.selected == "openai/gpt-4o-mini"
    cat = apply_overlays(BASE, [build_overlay({"schema": 1, "disable": ["openai/gpt-4o-mini"]})])
    router = Router(cat)
    result = router.route(policy, request, with_disabled(LiveState.not_consulted(), cat))
    assert result.selected == "anthropic/claude-haiku-4-5"
    assert result.record()["catalog_version"] == cat.version


def test_export_leaves_disabled_offerings_out() -> None:
    cat = apply_overlays(BASE, [build_overlay(JSON_DOC, "ops.json")])
    doc = export_document(cat)
    ids = [o["id"] for o in doc["offerings"]]
    assert "openai/gpt-4o-mini" not in ids and "vllm/llama-3.3-70b" in ids
    assert doc["generated"]["overlay.disabled_omitted"] == "1"
    again = build_catalog(doc)
    assert again.get("vllm/llama-3.3-70b") == cat.get("vllm/llama-3.3-70b")
    assert again.disabled == frozenset()


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("doc", "expected"), [
    pytest.param({"schema": 2}, [("overlay.invalid", "/schema")], id="schema"),
    pytest.param({}, [("overlay.invalid", "/schema")], id="no-schema"),
    pytest.param({"schema": True}, [("overlay.invalid", "/schema")], id="schema-bool"),
    pytest.param({"schema": 1, "colour": "red"}, [("overlay.invalid", "/colour")],
                 id="unknown-field"),
    pytest.param({"schema": 1, "disable": "openai/gpt-4o"}, [("overlay.invalid", "/disable")],
                 id="disable-not-list"),
    pytest.param({"schema": 1, "tags": {"openai/*": "approved"}},
                 [("overlay.invalid", "/tags/openai~1*")], id="tags-not-list"),
    pytest.param({"schema": 1, "prices": {"openai/gpt-4o": {"input_prise": 1}}},
                 [("overlay.invalid", "/prices/openai~1gpt-4o/input_prise")], id="price-field"),
    pytest.param({"schema": 1, "prices": {"openai/gpt-4o": {"input_price": -1}}},
                 [("overlay.invalid", "/prices/openai~1gpt-4o/input_price")], id="negative"),
    pytest.param({"schema": 1, "prices": {"openai/gpt-4o": {"input_price": "2"}}},
                 [("overlay.invalid", "/prices/openai~1gpt-4o/input_price")], id="price-str"),
    pytest.param({"schema": 1, "prices": {"openai/gpt-4o": {}}},
                 [("overlay.type", "/prices/openai~1gpt-4o")], id="price-empty"),
    pytest.param({"schema": 1, "prices": {"openai/*": {"input_price": 1}}},
                 [("overlay.invalid_pattern", "/prices/openai~1*")], id="price-glob"),
    pytest.param({"schema": 1, "tags": {"openai/*": ["ok", "bad tag"]}},
                 [("overlay.invalid_tag", "/tags/openai~1*/1")], id="bad-tag"),
    pytest.param({"schema": 1, "disable": ["bad pattern"]},
                 [("overlay.invalid_pattern", "/disable/0")], id="bad-pattern"),
    pytest.param({"schema": 1, "offerings": [{**VLLM, "status": "available"}]},
                 [("overlay.invalid", "/offerings/0/status")], id="live-field"),
    pytest.param({"schema": 1, "offerings": [{**VLLM, "base_url": "ftp://x/v1"}]},
                 [("overlay.invalid", "/offerings/0/base_url")], id="base-url-scheme"),
    pytest.param({"schema": 1, "offerings": [{**VLLM, "base_url": "http://u:p@x/v1"}]},
                 [("overlay.invalid", "/offerings/0/base_url")], id="base-url-credentials"),
    pytest.param({"schema": 1, "offerings": [{"id": "x/y"}]},
                 [("overlay.invalid", "/offerings/0/model"),
                  ("overlay.invalid", "/offerings/0/provider"),
                  ("overlay.invalid", "/offerings/0/region")], id="offering-missing"),
])
def test_bad_overlay_documents(doc: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems(build_overlay, doc, "ops.json") == expected


def test_overlay_messages_name_file_and_hint() -> None:
    with pytest.raises(OverlayError) as info:
        build_overlay({"schema": 1, "disabel": ["x/y"]}, "ops.json")
    (p,) = info.value.problems
    assert p.message.startswith("`ops.json`: ")
    assert p.hint == "did you mean `disable`?"
    with pytest.raises(OverlayError) as info:
        build_overlay({"schema": 1, "offerings": [{**VLLM, "status": "disabled"}]}, "ops.json")
    assert "disable" in (info.value.problems[0].hint or "")


def test_references_are_checked_against_the_catalog() -> None:
    overlay = build_overlay({
        "schema": 1,
        "disable": ["openai/gpt4o", "mistral/*"],
        "tags": {"openai/gpt-4o-mni": ["approved"]},
        "prices": {"openai/gpt-5": {"input_price": 1}},
        "offerings": [{**VLLM, "id": "openai/gpt-4o"}],
    }, "ops.json")
    with pytest.raises(OverlayError) as info:
        apply_overlays(BASE, [overlay])
    found = {(p.code, p.pointer): p for p in info.value.problems}
    assert set(found) == {
        ("overlay.unknown_offering", "/disable/0"),
        ("overlay.no_match", "/disable/1"),
        ("overlay.unknown_offering", "/tags/openai~1gpt-4o-mni"),
        ("overlay.unknown_offering", "/prices/openai~1gpt-5"),
        ("overlay.duplicate_id", "/offerings/0/id"),
    }
    assert found[("overlay.unknown_offering", "/disable/0")].hint == \
        "did you mean `openai/gpt-4o`?"


@pytest.mark.parametrize(("name", "content", "code"), [
    ("ops.toml", "schema = \n", "overlay.invalid_toml"),
    ("ops.json", "{", "overlay.invalid_json"),
    ("ops.json", '{"schema": NaN}', "overlay.invalid_json"),
    ("ops.json", "[1]", "overlay.not_an_object"),
    ("ops.yaml", "schema: 1", "overlay.format"),
])
def test_bad_overlay_files(tmp_path: Path, name: str, content: str, code: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert problems(load_overlay, path) == [(code, "")]


def test_missing_overlay_file(tmp_path: Path) -> None:
    assert problems(load_overlay, tmp_path / "nope.toml") == [("overlay.unreadable", "")]


def test_problems_of_several_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"schema": 3}', encoding="utf-8")
    (tmp_path / "b.toml").write_text("schema = 1\ncolour = 1\n", encoding="utf-8")
    with pytest.raises(OverlayError) as info:
        load_overlays([tmp_path / "a.json", tmp_path / "b.toml"])
    assert sorted(p.message.split(":")[0] for p in info.value.problems) == \
        sorted([f"`{tmp_path / 'a.json'}`", f"`{tmp_path / 'b.toml'}`"])


# --------------------------------------------------------------------------- base_url


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "https://llm.internal.example/v1",
                                 "http://10.0.0.5:8000", "http://[::1]:8000/v1"])
def test_good_base_urls(url: str) -> None:
    cat = build_catalog({"schema": 1, "offerings": [{**VLLM, "base_url": url}]})
    (o,) = cat
    assert o.base_url == url and o.static_json()["base_url"] == url


@pytest.mark.parametrize("url", ["localhost:8000", "file:///etc/passwd", "http://", "http:///v1",
                                 "http://a b/v1", "http://x/v1?key=1", "http://x/v1#f",
                                 "https://user:secret@x/v1", "http://x:99999/v1",
                                 "http://x/" + "a" * 2100, ""])
def test_bad_base_urls_are_refused(url: str) -> None:
    with pytest.raises(CatalogError) as info:
        build_catalog({"schema": 1, "offerings": [{**VLLM, "base_url": url}]})
    assert [p.pointer for p in info.value.problems] == ["/offerings/0/base_url"]


def test_base_url_changes_the_catalog_version() -> None:
    a = build_catalog({"schema": 1, "offerings": [VLLM]})
    b = build_catalog({"schema": 1, "offerings": [{**VLLM, "base_url": "http://10.0.0.6/v1"}]})
    assert a.version != b.version


# --------------------------------------------------------------------------- command line


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(BASE.to_json()), encoding="utf-8")
    overlay = tmp_path / "ops.toml"
    overlay.write_text(TOML, encoding="utf-8")
    return str(catalog), str(overlay)


def test_cli_list_and_show_with_overlay(files: tuple[str, str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    catalog, overlay = files
    assert main(["catalog", "list", "--catalog", catalog, "--overlay", overlay]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1 + len(BASE) + 1
    (disabled,) = [line for line in lines if line.endswith("disabled")]
    assert disabled.startswith("openai/gpt-4o-mini")
    assert main(["catalog", "show", "vllm/llama-3.3-70b", "--catalog", catalog,
                 "--overlay", overlay]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out)["base_url"] == "http://10.0.0.5:8000/v1"


def test_cli_route_with_overlay_skips_disabled(files: tuple[str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    catalog, overlay = files
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps(["policy", ["ev_zero"], ["filter", ["in", "provider",
                                                                     ["openai"]]],
                                  ["rank", ["asc", "output_price"]], ["select", ["first"]],
                                  ["mutate"], ["fallback"]]), encoding="utf-8")
    request = tmp_path / "r.json"
    request.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}), "utf-8")
    args = ["route", "--policy", str(policy), "--request", str(request), "--catalog", catalog,
            "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["selected"] == "openai/gpt-4o-mini"
    assert main([*args, "--overlay", overlay]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["selected"] == "openai/gpt-4o"
    assert record["catalog_version"] != BASE.version


def test_cli_bad_overlay_exit_2(files: tuple[str, str], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    catalog, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 1, "disable": ["openai/gpt4o"]}), encoding="utf-8")
    out = tmp_path / "out.json"
    code = main(["catalog", "export", "--catalog", catalog, "--overlay", str(bad), "-o",
                 str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == "" and "Traceback" not in stderr
    report = json.loads(stderr)
    assert report["refused"] == "overlay"
    assert report["problems"][0]["hint"] == "did you mean `openai/gpt-4o`?"
    assert not out.exists()


def test_cli_export_flattens_overlays(files: tuple[str, str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    catalog, overlay = files
    out = tmp_path / "flat.json"
    assert main(["catalog", "export", "--catalog", catalog, "--overlay", overlay, "-o",
                 str(out)]) == 0
    flat: Catalog = load_catalog(out)
    assert "openai/gpt-4o-mini" not in {o.id for o in flat}
    gpt4o = flat.get("openai/gpt-4o")
    assert gpt4o is not None and gpt4o.input_price == 2.0
    # exporting the flat file again is a fixed point
    out2 = tmp_path / "flat2.json"
    assert main(["catalog", "export", "--catalog", str(out), "-o", str(out2)]) == 0
    assert out2.read_text("utf-8") == out.read_text("utf-8")
