"""Catalog importers (LiteLLM, OpenRouter, models.dev) on the real sample files (unpacked from
tests/data/catalog-sources.tar.xz by the ``catalog_sources`` fixture), on malformed inputs, and
through the command line.

Expected values are read from the source files themselves, so a spot check compares the
importer's mapping with the source, not with numbers copied into the test.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from router.catalog.importers import IMPORTERS, ImportResult, import_catalog, render_catalog
from router.catalog.importers.litellm import import_litellm
from router.catalog.importers.modelsdev import import_models_dev, import_models_dev_tree
from router.catalog.importers.openrouter import import_openrouter
from router.catalog.offerings import Catalog, default_catalog, load_catalog, parse_catalog
from router.cli.main import main
from router.common.problems import CatalogError
from tests.catalog_sources import LITELLM, MODELS_DEV, OPENROUTER


@pytest.fixture(scope="session")
def litellm_file(catalog_sources: Path) -> Path:
    return catalog_sources / LITELLM


@pytest.fixture(scope="session")
def openrouter_file(catalog_sources: Path) -> Path:
    return catalog_sources / OPENROUTER


@pytest.fixture(scope="session")
def models_dev_dir(catalog_sources: Path) -> Path:
    return catalog_sources / MODELS_DEV


@pytest.fixture(scope="session")
def litellm_raw(litellm_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(litellm_file.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def litellm_result(litellm_file: Path) -> ImportResult:
    return import_catalog("litellm", litellm_file)


@pytest.fixture(scope="session")
def openrouter_raw(openrouter_file: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(openrouter_file.read_text(encoding="utf-8"))["data"]
    return data


@pytest.fixture(scope="session")
def openrouter_result(openrouter_file: Path) -> ImportResult:
    return import_catalog("openrouter", openrouter_file)


@pytest.fixture(scope="session")
def models_dev_result(models_dev_dir: Path) -> ImportResult:
    return import_catalog("models.dev", models_dev_dir)


def refused(fn: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(CatalogError) as info:
        fn(*args, **kwargs)
    return [(p.code, p.pointer) for p in info.value.problems]


def million(per_token: float) -> float:
    return round(per_token * 1e6, 6)


# --------------------------------------------------------------------------- the registry


def test_registry_names_every_importer() -> None:
    assert set(IMPORTERS) == {"litellm", "openrouter", "models.dev"}


def test_unknown_source_is_refused_with_a_hint(litellm_file: Path) -> None:
    with pytest.raises(CatalogError) as info:
        import_catalog("litelm", litellm_file)
    (p,) = info.value.problems
    assert p.code == "import.unknown_source" and p.hint == "did you mean `litellm`?"


# --------------------------------------------------------------------------- LiteLLM


def test_litellm_counts(litellm_result: ImportResult, litellm_raw: dict[str, Any]) -> None:
    report = litellm_result.report
    assert report.read == len(litellm_raw) == 4878
    assert report.imported == len(litellm_result.catalog) == 3189
    assert report.read == report.imported + report.skipped_total
    assert dict(report.skipped) == {
        "not_chat": 1308, "duplicate_id": 222, "alias": 98, "provisioned_throughput": 24,
        "fine_tune_template": 12, "no_token_data": 8, "pricing_tier": 6,
        "not_a_chat_model": 6, "wildcard": 4, "sample_spec": 1,
    }


def test_litellm_odd_entries_counted_from_the_source(litellm_result: ImportResult,
                                                     litellm_raw: dict[str, Any]) -> None:
    skipped = litellm_result.report.skipped
    aliases = [k for k, v in litellm_raw.items() if isinstance(v, dict) and "alias_of" in v]
    assert skipped["alias"] == len(aliases)
    wildcards = [k for k, v in litellm_raw.items() if "*" in k and isinstance(v, dict)
                 and "alias_of" not in v and v.get("mode") == "chat"]
    assert skipped["wildcard"] == len(wildcards)
    assert "sample_spec" in litellm_raw and skipped["sample_spec"] == 1
    assert all("*" not in o.id and "sample" not in o.id for o in litellm_result.catalog)


@pytest.mark.parametrize(("oid", "key"), [
    ("openai/gpt-4o", "gpt-4o"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("bedrock/eu/claude-haiku-4-5-20251001", "eu.anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("azure/eu/gpt-4o-2024-08-06", "azure/eu/gpt-4o-2024-08-06"),
    ("gemini/gemini-2.5-pro", "gemini/gemini-2.5-pro"),
])
def test_litellm_spot_checks_against_the_source(litellm_result: ImportResult,
                                                litellm_raw: dict[str, Any], oid: str,
                                                key: str) -> None:
    entry = litellm_raw[key]
    o = litellm_result.catalog.get(oid)
    assert o is not None, oid
    assert o.input_price == million(entry["input_cost_per_token"])
    assert o.output_price == million(entry["output_cost_per_token"])
    assert o.cached_input_price == million(entry["cache_read_input_token_cost"])
    assert o.context_window == entry["max_input_tokens"]
    assert o.max_output_tokens == entry["max_output_tokens"]
    assert o.deprecation_date == entry["deprecation_date"]
    assert o.capabilities is not None and "streaming" in o.capabilities
    assert ("tools" in o.capabilities) == (entry.get("supports_function_calling") is True)


def test_litellm_known_values(litellm_result: ImportResult) -> None:
    gpt4o = litellm_result.catalog.get("openai/gpt-4o")
    assert gpt4o is not None
    assert (gpt4o.input_price, gpt4o.output_price, gpt4o.context_window) == (2.5, 10.0, 128000)
    eu = litellm_result.catalog.get("bedrock/eu/claude-haiku-4-5-20251001")
    assert eu is not None and eu.region == "eu"
    assert eu.api_model == "eu.anthropic.claude-haiku-4-5-20251001-v1:0"


def test_litellm_tiered_price_is_not_the_base_price(litellm_result: ImportResult,
                                                    litellm_raw: dict[str, Any]) -> None:
    entry = litellm_raw["gemini/gemini-2.5-pro"]
    assert entry["input_cost_per_token_above_200k_tokens"] != entry["input_cost_per_token"]
    o = litellm_result.catalog.get("gemini/gemini-2.5-pro")
    assert o is not None and o.input_price == million(entry["input_cost_per_token"])
    assert litellm_result.report.adjustments["tiered_prices_ignored"] > 0


def test_litellm_zero_price_is_unknown_unless_free(litellm_result: ImportResult) -> None:
    # codestral/codestral-2405 has input_cost_per_token 0 in the source: unknown, not free
    codestral = litellm_result.catalog.get("codestral/codestral-2405")
    assert codestral is not None and codestral.input_price is None
    free = [o for o in litellm_result.catalog if o.input_price == 0]
    assert free and all(o.provider in {"ollama", "lemonade", "publicai", "gemini", "zai"}
                        or "free" in o.model for o in free)
    assert litellm_result.report.adjustments["zero_price_dropped.input_price"] == 41


def test_litellm_missing_values_stay_unknown(litellm_result: ImportResult,
                                             litellm_raw: dict[str, Any]) -> None:
    cat = litellm_result.catalog
    for o in cat:
        assert o.input_price is None or o.input_price >= 0
    no_output = [o for o in cat if o.max_output_tokens is None]
    assert no_output  # some sources lack it, and nothing invents a 0
    assert all(o.context_window is None or o.context_window > 0 for o in cat)


def test_litellm_import_matches_generator_mapping(litellm_result: ImportResult) -> None:
    """The embedded catalog = this import + models.dev gap filling: every imported field that
    is known has the same value in the embedded catalog."""
    embedded = default_catalog()
    assert {o.id for o in embedded} == {o.id for o in litellm_result.catalog}
    for o in litellm_result.catalog.offerings[::50]:
        e = embedded.get(o.id)
        assert e is not None
        for name, value in o.static_json().items():
            if name != "capabilities":
                assert e.static_json()[name] == value, (o.id, name)


def test_generator_reproduces_the_embedded_catalog(catalog_sources: Path) -> None:
    from catalog.generate import generate, render

    catalog, report = generate(catalog_sources)
    embedded = importlib.resources.files("router").joinpath("catalog", "default.json")
    assert render(catalog) == embedded.read_text(encoding="utf-8")
    assert report["imported"] == 3189


def test_litellm_malformed_values_name_entry_and_field() -> None:
    data = {
        "openai/gpt-x": {"mode": "chat", "litellm_provider": "openai",
                         "input_cost_per_token": "0.000001", "output_cost_per_token": -1e-6,
                         "max_input_tokens": 12.5, "supports_vision": "yes",
                         "deprecation_date": "soon"},
        "fine": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-6},
        "sample_spec": {"input_cost_per_token": "ignored: skipped before it is read"},
    }
    with pytest.raises(CatalogError) as info:
        import_litellm(data)
    problems = {p.pointer: p for p in info.value.problems}
    assert set(problems) == {
        "/openai~1gpt-x/input_cost_per_token", "/openai~1gpt-x/output_cost_per_token",
        "/openai~1gpt-x/max_input_tokens", "/openai~1gpt-x/supports_vision",
        "/openai~1gpt-x/deprecation_date",
    }
    msg = problems["/openai~1gpt-x/input_cost_per_token"].message
    assert "`openai/gpt-x`" in msg and "input_cost_per_token" in msg and "number" in msg
    assert {p.code for p in info.value.problems} == {"import.invalid_value"}


@pytest.mark.parametrize(("data", "code"), [
    ([1, 2], "import.shape"),
    ("text", "import.shape"),
])
def test_litellm_wrong_shape(data: object, code: str) -> None:
    assert refused(import_litellm, data) == [(code, "")]


@pytest.mark.parametrize("content", [b"{", b"\xff\xfe", b'{"a": NaN}', b""])
def test_litellm_not_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(content)
    assert refused(import_catalog, "litellm", path) == [("import.invalid_json", "")]


def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert refused(import_catalog, "litellm", tmp_path / "nope.json") == \
        [("import.unreadable", "")]


def test_litellm_entry_the_catalog_refuses_points_at_the_source_key() -> None:
    data = {"gpt-huge": {"mode": "chat", "litellm_provider": "openai",
                         "max_input_tokens": 10**12}}
    with pytest.raises(CatalogError) as info:
        import_litellm(data)
    (p,) = info.value.problems
    assert p.pointer == "/gpt-huge" and "context_window" in p.message


# --------------------------------------------------------------------------- OpenRouter


def test_openrouter_counts(openrouter_result: ImportResult,
                           openrouter_raw: list[dict[str, Any]]) -> None:
    report = openrouter_result.report
    assert report.read == len(openrouter_raw) == 364
    assert report.imported + report.skipped_total == report.read
    assert report.imported == 364
    free = [m for m in openrouter_raw if m["id"].endswith(":free")
            or (m["pricing"]["prompt"] == "0" and m["pricing"]["completion"] == "0")]
    assert report.adjustments["free_model"] == len(free)
    variable = [m for m in openrouter_raw if m["pricing"]["prompt"] == "-1"]
    assert report.adjustments["variable_price_unknown.input_price"] == len(variable) == 3


@pytest.mark.parametrize("model_id", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5",
                                      "openai/gpt-4o-mini", "google/gemini-2.5-pro"])
def test_openrouter_spot_checks_against_the_source(openrouter_result: ImportResult,
                                                   openrouter_raw: list[dict[str, Any]],
                                                   model_id: str) -> None:
    (m,) = [m for m in openrouter_raw if m["id"] == model_id]
    o = openrouter_result.catalog.get("openrouter/" + model_id.split("/")[1])
    assert o is not None
    assert (o.provider, o.region, o.api_model) == ("openrouter", "global", model_id)
    assert o.input_price == float(Decimal(m["pricing"]["prompt"]) * 1_000_000)
    assert o.output_price == float(Decimal(m["pricing"]["completion"]) * 1_000_000)
    if "input_cache_read" in m["pricing"]:
        assert o.cached_input_price == float(Decimal(m["pricing"]["input_cache_read"]) * 10**6)
    assert o.context_window == m["context_length"]
    assert o.max_output_tokens == m["top_provider"]["max_completion_tokens"]
    assert o.capabilities is not None
    assert ("tools" in o.capabilities) == ("tools" in m["supported_parameters"])
    assert ("vision" in o.capabilities) == ("image" in m["architecture"]["input_modalities"])


def test_openrouter_known_values(openrouter_result: ImportResult) -> None:
    o = openrouter_result.catalog.get("openrouter/gpt-4o")
    assert o is not None
    assert (o.input_price, o.output_price, o.context_window, o.max_output_tokens) == \
        (2.5, 10.0, 128000, 16384)


def test_openrouter_variable_price_is_unknown(openrouter_result: ImportResult) -> None:
    auto = openrouter_result.catalog.get("openrouter/auto")
    assert auto is not None
    assert auto.input_price is None and auto.output_price is None


def test_openrouter_free_models_keep_zero(openrouter_result: ImportResult,
                                          openrouter_raw: list[dict[str, Any]]) -> None:
    free_id = next(m["id"] for m in openrouter_raw if m["id"].endswith(":free"))
    o = openrouter_result.catalog.get("openrouter/" + free_id.split("/")[1].lower())
    assert o is not None
    assert o.input_price == 0.0 and o.output_price == 0.0
    assert o.model == free_id.split("/")[1].lower().removesuffix(":free")
    assert o.api_model == free_id
    zero = openrouter_result.catalog.get("openrouter/free")
    assert zero is not None and zero.input_price == 0.0


def test_openrouter_expiration_date(openrouter_result: ImportResult,
                                    openrouter_raw: list[dict[str, Any]]) -> None:
    expiring = [m for m in openrouter_raw if m.get("expiration_date")]
    assert expiring
    for m in expiring:
        o = openrouter_result.catalog.get("openrouter/" + m["id"].split("/")[1].lower())
        assert o is not None and o.deprecation_date == m["expiration_date"]


def _or_model(**overrides: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "id": "acme/model-1", "context_length": 8192,
        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
        "top_provider": {"max_completion_tokens": None},
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "supported_parameters": ["tools", "structured_outputs", "response_format"],
    }
    model.update(overrides)
    return model


def test_openrouter_mapping_of_a_small_file() -> None:
    data = {"data": [
        _or_model(),
        _or_model(id="acme/cheap", pricing={"prompt": "0", "completion": "0.000001"}),
        _or_model(id="acme/model-1"),  # a second entry for the same id
        _or_model(id="acme/painter", architecture={"input_modalities": ["text"],
                                                   "output_modalities": ["image"]}),
    ]}
    result = import_openrouter(data)
    one = result.catalog.get("openrouter/model-1")
    assert one is not None
    assert (one.input_price, one.output_price, one.max_output_tokens) == (1.0, 2.0, None)
    assert one.capabilities == ("json_schema", "streaming", "tools")
    cheap = result.catalog.get("openrouter/cheap")
    assert cheap is not None and cheap.input_price is None and cheap.output_price == 1.0
    assert dict(result.report.skipped) == {"duplicate_id": 1, "not_chat": 1}
    assert result.report.adjustments["zero_price_dropped.input_price"] == 1


def test_openrouter_malformed_values() -> None:
    data = {"data": [
        _or_model(pricing={"prompt": "abc", "completion": "-2"}),
        _or_model(id="acme/b", context_length="big", expiration_date="2026-13-01"),
        {"name": "no id"},
        "not an object",
    ]}
    assert sorted(refused(import_openrouter, data)) == sorted([
        ("import.invalid_value", "/data/0/pricing/prompt"),
        ("import.invalid_value", "/data/0/pricing/completion"),
        ("import.invalid_value", "/data/1/context_length"),
        ("import.invalid_value", "/data/1/expiration_date"),
        ("import.shape", "/data/2"),
        ("import.shape", "/data/3"),
    ])


@pytest.mark.parametrize("data", [{"models": []}, {"data": {}}, 5])
def test_openrouter_wrong_shape(data: object) -> None:
    (code, _), = refused(import_openrouter, data)
    assert code == "import.shape"


# --------------------------------------------------------------------------- models.dev


def _resolved(root: Path, rel: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((root / rel).read_text(encoding="utf-8"))
    return data


def test_models_dev_counts(models_dev_result: ImportResult, models_dev_dir: Path) -> None:
    report = models_dev_result.report
    files = list((models_dev_dir / "providers").glob("*/models/**/*.toml"))
    assert report.read == len(files)
    assert report.imported + report.skipped_total == report.read
    assert report.imported == len(models_dev_result.catalog) > 4000
    assert set(report.skipped) <= {"duplicate_id", "not_chat", "not_a_chat_model",
                                   "no_token_data", "unparseable_key"}


def test_models_dev_spot_check_against_the_source(models_dev_result: ImportResult,
                                                  models_dev_dir: Path) -> None:
    md = _resolved(models_dev_dir, "providers/anthropic/models/claude-3-5-sonnet-20240620.toml")
    assert "base_model" not in md
    o = models_dev_result.catalog.get("anthropic/claude-3-5-sonnet-20240620")
    assert o is not None
    assert (o.input_price, o.output_price, o.cached_input_price) == \
        (md["cost"]["input"], md["cost"]["output"], md["cost"]["cache_read"])
    assert (o.context_window, o.max_output_tokens) == \
        (md["limit"]["context"], md["limit"]["output"])
    assert o.capabilities is not None
    assert {"vision", "pdf_input", "tools", "prompt_caching"} <= set(o.capabilities)
    assert "reasoning" not in o.capabilities  # reasoning = false in the file


def test_models_dev_base_model_inheritance(models_dev_result: ImportResult,
                                           models_dev_dir: Path) -> None:
    rel = "providers/amazon-bedrock/models/global.anthropic.claude-fable-5.toml"
    top = _resolved(models_dev_dir, rel)
    base = _resolved(models_dev_dir, f"models/{top['base_model']}.toml")
    assert "limit" not in top  # the limits come from the lab file
    o = models_dev_result.catalog.get("bedrock/claude-fable-5")
    assert o is not None and o.api_model == "global.anthropic.claude-fable-5"
    assert o.input_price == top["cost"]["input"]
    assert o.context_window == base["limit"]["context"]
    assert o.max_output_tokens == base["limit"]["output"]
    assert o.capabilities is not None and "reasoning" in o.capabilities  # from the base


def test_models_dev_regions_and_local_runtimes(models_dev_result: ImportResult) -> None:
    cat = models_dev_result.catalog
    au = cat.get("bedrock/au/claude-haiku-4-5-20251001")
    assert au is not None and au.region == "au"
    local = [o for o in cat if o.provider == "lmstudio"]
    assert local and all(o.input_price == 0.0 for o in local)  # api on 127.0.0.1: free
    assert not [o for o in cat if o.provider == "github-models" and o.input_price == 0]


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


PROVIDER = 'name = "Acme"\nenv = ["ACME_API_KEY"]\nnpm = "@ai-sdk/openai-compatible"\n'


def test_models_dev_chain_and_omit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "providers/acme/provider.toml": PROVIDER,
        "providers/acme/models/m.toml": (
            'base_model = "lab/b"\nbase_model_omit = ["limit.input"]\n'
            '[cost]\ninput = 2\noutput = 4\n'),
        "models/lab/b.toml": 'base_model = "lab/c"\ntool_call = true\n'
                             '[limit]\ncontext = 1000\ninput = 800\n',
        "models/lab/c.toml": 'reasoning = true\n[limit]\noutput = 100\ncontext = 5\n'
                             '[modalities]\ninput = ["text", "image"]\noutput = ["text"]\n',
    })
    result = import_models_dev_tree(root)
    (o,) = result.catalog
    assert (o.id, o.input_price, o.output_price) == ("acme/m", 2.0, 4.0)
    assert (o.context_window, o.max_output_tokens) == (1000, 100)  # limit.input omitted
    assert o.capabilities == ("reasoning", "streaming", "tools", "vision")


@pytest.mark.parametrize(("files", "expected"), [
    ({"providers/acme/models/m.toml": 'base_model = "lab/x"\n',
      "models/lab/x.toml": 'base_model = "lab/y"\n',
      "models/lab/y.toml": 'base_model = "lab/x"\n'},
     [("import.base_model_cycle", "/acme/models/m/base_model")]),
    ({"providers/acme/models/m.toml": 'base_model = "lab/self"\n',
      "models/lab/self.toml": 'base_model = "lab/self"\n'},
     [("import.base_model_cycle", "/acme/models/m/base_model")]),
    ({"providers/acme/models/m.toml": 'base_model = "lab/nowhere"\n'},
     [("import.base_model_missing", "/acme/models/m/base_model")]),
    ({"providers/acme/models/m.toml": "cost = [\n"}, [("import.invalid_toml", "/acme/models/m")]),
    ({"providers/acme/models/m.toml": '[cost]\ninput = "cheap"\n[limit]\ncontext = -1\n'},
     [("import.invalid_value", "/acme/models/m/cost/input"),
      ("import.invalid_value", "/acme/models/m/limit/context")]),
    ({"providers/acme/models/m.toml": 'tool_call = "yes"\n[modalities]\ninput = "text"\n'},
     [("import.invalid_value", "/acme/models/m/modalities/input"),
      ("import.invalid_value", "/acme/models/m/tool_call")]),
])
def test_models_dev_malformed_trees(tmp_path: Path, files: dict[str, str],
                                    expected: list[tuple[str, str]]) -> None:
    root = _tree(tmp_path, {"providers/acme/provider.toml": PROVIDER, **files})
    assert refused(import_models_dev_tree, root) == expected


def test_models_dev_cycle_message_names_the_chain(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"providers/acme/models/m.toml": 'base_model = "lab/x"\n',
                            "models/lab/x.toml": 'base_model = "lab/x"\n'})
    with pytest.raises(CatalogError) as info:
        import_models_dev_tree(root)
    assert "`models/lab/x.toml` -> `models/lab/x.toml`" in info.value.problems[0].message


def test_models_dev_empty_directory_is_refused(tmp_path: Path) -> None:
    assert refused(import_models_dev_tree, tmp_path) == [("import.shape", "")]


def test_models_dev_api_json_equals_the_tree(tmp_path: Path, models_dev_dir: Path) -> None:
    """The same models as a tree and as api.json (resolved) give the same offerings."""
    root = tmp_path / "tree"
    for part in ("providers/anthropic", "providers/amazon-bedrock", "models"):
        shutil.copytree(models_dev_dir / part, root / part)
    tree = import_models_dev_tree(root)
    from router.catalog.importers.modelsdev import ModelsDev

    md = ModelsDev(root)
    api: dict[str, Any] = {}
    for directory in md.directories():
        info = md.parse(f"providers/{directory}/provider.toml")
        models = {mid: md.resolve(rel) for mid, rel in md.provider_models(directory).items()}
        api[directory] = {**info, "id": directory, "models": models}
    doc = json.loads(json.dumps(api, default=str))
    from_api = import_models_dev(doc, where="api.json")
    assert [o.static_json() for o in from_api.catalog] == [o.static_json() for o in tree.catalog]
    assert len(tree.catalog) > 50


def test_models_dev_api_json_wrong_shape() -> None:
    assert refused(import_models_dev, []) == [("import.shape", "")]
    assert refused(import_models_dev, {"acme": {"name": "x"}}) == \
        [("import.shape", "/acme/models")]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("source", ["litellm", "openrouter"])
def test_round_trip_import_export_import(tmp_path: Path, source: str,
                                         litellm_result: ImportResult,
                                         openrouter_result: ImportResult) -> None:
    result = litellm_result if source == "litellm" else openrouter_result
    text = render_catalog(result.catalog.to_json())
    again = parse_catalog(text)
    assert again.version == result.catalog.version
    assert again.offerings == result.catalog.offerings
    out = tmp_path / "export.json"
    cat_file = tmp_path / "catalog.json"
    cat_file.write_text(text, encoding="utf-8")
    assert main(["catalog", "export", "--catalog", str(cat_file), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
    assert load_catalog(out).version == result.catalog.version


def test_round_trip_models_dev(models_dev_result: ImportResult) -> None:
    again = parse_catalog(render_catalog(models_dev_result.catalog.to_json()))
    assert again.version == models_dev_result.catalog.version


# --------------------------------------------------------------------------- command line


def test_cli_import_writes_catalog_and_report(tmp_path: Path, openrouter_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "or.json"
    code = main(["catalog", "import", "--from", "openrouter", str(openrouter_file), "-o", str(out),
                 "--report-json"])
    stdout, stderr = capsys.readouterr()
    assert code == 0 and stderr == ""
    report = json.loads(stdout)
    assert report["ok"] is True and report["imported"] == 364 and report["read"] == 364
    catalog: Catalog = load_catalog(out)
    assert report["version"] == catalog.version and len(catalog) == 364


def test_cli_import_text_report(tmp_path: Path, litellm_file: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ll.json"
    assert main(["catalog", "import", "--from", "litellm", str(litellm_file), "-o", str(out)]) == 0
    stdout, _ = capsys.readouterr()
    assert "imported 3189 offerings from 4878 litellm entries" in stdout
    assert "skipped     98  alias" in stdout


def test_cli_import_models_dev_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path / "md", {"providers/acme/provider.toml": PROVIDER,
                                   "providers/acme/models/m.toml": "[cost]\ninput = 1\n"})
    out = tmp_path / "md.json"
    assert main(["catalog", "import", "--from", "models.dev", str(root), "-o", str(out)]) == 0
    assert [o.id for o in load_catalog(out)] == ["acme/m"]


def test_cli_import_refusal_leaves_the_old_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"m": {"mode": "chat", "litellm_provider": "openai",
                                     "input_cost_per_token": "free"}}), encoding="utf-8")
    out = tmp_path / "catalog.json"
    out.write_text("previous catalog", encoding="utf-8")
    code = main(["catalog", "import", "--from", "litellm", str(bad), "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert "Traceback" not in stderr
    report = json.loads(stderr)
    assert report["refused"] == "catalog"
    assert [p["pointer"] for p in report["problems"]] == ["/m/input_cost_per_token"]
    assert out.read_text(encoding="utf-8") == "previous catalog"
    assert {p.name for p in tmp_path.iterdir()} == {"bad.json", "catalog.json"}  # no temp file


def test_cli_import_unknown_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["catalog", "import", "--from", "nope", "x", "-o", "y"])
    assert info.value.code == 2


def test_cli_import_unwritable_output(tmp_path: Path, openrouter_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "import", "--from", "openrouter", str(openrouter_file), "-o",
                 str(tmp_path / "missing-dir" / "x.json")])
    _, stderr = capsys.readouterr()
    assert code == 2
    assert json.loads(stderr)["problems"][0]["code"] == "cli.unwritable"


def test_every_skip_reason_is_documented(litellm_result: ImportResult,
                                         openrouter_result: ImportResult,
                                         models_dev_result: ImportResult) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "catalog.md").read_text("utf-8")
    reasons: Counter[str] = Counter()
    for r in (litellm_result, openrouter_result, models_dev_result):
        reasons.update(r.report.skipped)
        reasons.update(k.split(".")[0] for k in r.report.adjustments)
    missing = [r for r in reasons if f"`{r}`" not in docs and f"`{r}.<field>`" not in docs]
    assert not missing, missing
