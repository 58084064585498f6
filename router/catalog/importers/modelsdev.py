"""Import models.dev: its TOML tree (`providers/<id>/provider.toml`,
`providers/<id>/models/**.toml`, lab files `models/<lab>/<model>.toml`) or its `api.json`.

Prices are already USD per 1M tokens. A provider model file may name a lab file in `base_model`:
it inherits the lab file's fields (tables merged one level deep, `base_model_omit` paths removed
from the base first). Chains are followed; a cycle or a missing base is a problem. `api.json` is
already resolved. The same tree also fills gaps of LiteLLM offerings in `catalog/generate.py`
(`ModelsDev.lookup` + `fill_gaps`).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from router.catalog.importers._common import (
    MAX_SOURCE_ENTRIES,
    ImportResult,
    JsonObj,
    Skip,
    check_bool,
    check_count,
    check_number,
    finish_import,
    parse_json,
    pointer,
    positive_int,
    problem,
    read_source,
    scaled_price,
    sha256_hex,
)
from router.catalog.importers._names import PROVIDER_RE, Route, is_free, offering_id, route_key
from router.catalog.importers.litellm import CAPABILITY_FLAGS, NOT_CHAT_MODEL_RE, PRICE_FIELDS
from router.catalog.offerings import MAX_CATALOG_BYTES
from router.common import jsonio
from router.common.problems import CatalogError, Problem

# Offering provider -> models.dev provider directories (same service, same model ids).
MODELS_DEV_PROVIDERS: Final[dict[str, tuple[str, ...]]] = {
    "anthropic": ("anthropic",), "openai": ("openai",), "azure": ("azure",),
    "bedrock": ("amazon-bedrock",), "bedrock_mantle": ("amazon-bedrock",),
    "gemini": ("google",), "vertex_ai": ("google-vertex", "google-vertex-anthropic"),
    "mistral": ("mistral",), "xai": ("xai",), "deepseek": ("deepseek",), "groq": ("groq",),
    "cerebras": ("cerebras",), "together_ai": ("togetherai",), "fireworks_ai": ("fireworks-ai",),
    "deepinfra": ("deepinfra",), "novita": ("novita-ai",), "nebius": ("nebius",),
    "perplexity": ("perplexity",), "moonshot": ("moonshotai",), "minimax": ("minimax",),
    "zai": ("zai",), "cohere": ("cohere",), "databricks": ("databricks",), "wandb": ("wandb",),
    "baseten": ("baseten",), "ovhcloud": ("ovhcloud",), "scaleway": ("scaleway",),
    "github_copilot": ("github-copilot",), "cloudflare": ("cloudflare-workers-ai",),
    "snowflake": ("snowflake-cortex",), "vercel_ai_gateway": ("vercel",), "morph": ("morph",),
    "inception": ("inception",), "v0": ("v0",), "sarvam": ("sarvam",),
    "friendliai": ("friendli",), "aihubmix": ("aihubmix",), "opencode_go": ("opencode-go",),
    "gmi": ("gmicloud",), "xiaomi_mimo": ("xiaomi",), "dashscope": ("alibaba",),
    "abliteration": ("abliteration-ai",), "meta_llama": ("llama",), "amazon_nova": ("nova",),
    "ollama": ("ollama-cloud",),
}
# models.dev provider directory -> offering provider, for a standalone import: the first
# offering provider that claims a directory, except `ollama-cloud` (a paid cloud service,
# unlike the free local `ollama` runtime). Directories not listed keep their own id.
PROVIDER_OF_DIRECTORY: Final[dict[str, str]] = {}
for _provider, _directories in MODELS_DEV_PROVIDERS.items():
    for _directory in _directories:
        if _directory != "ollama-cloud":
            PROVIDER_OF_DIRECTORY.setdefault(_directory, _provider)
# models.dev providers that run on the user's machine: their 0 prices are genuine.
LOCAL_RUNTIMES: Final = frozenset({"lmstudio", "atomic-chat"})
MODALITY_CAPABILITIES: Final = {"image": "vision", "pdf": "pdf_input", "audio": "audio_input"}
MAX_BASE_DEPTH: Final = 16


# --------------------------------------------------------------------------- the TOML tree


class ModelsDev:
    """The models.dev TOML tree: raw bytes of every file (for the hash), parsed on demand.

    Symbolic links are not followed. Sizes are bounded (`MAX_CATALOG_BYTES` in all, at most
    `MAX_SOURCE_ENTRIES` files).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, bytes] = {rel: data for rel, data in _read_tree(root)}
        self._parsed: dict[str, JsonObj] = {}
        self._index: dict[str, dict[str, str]] = {}

    def digest(self) -> str:
        """sha256 over (relative path, sha256 of content) of every TOML file, in path order."""
        h = hashlib.sha256()
        for rel, data in self.files.items():
            h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        return h.hexdigest()

    def provider_models(self, directory: str) -> dict[str, str]:
        """Model id (original case) -> relative path, for one provider directory."""
        prefix = f"providers/{directory}/models/"
        return {rel[len(prefix):-len(".toml")]: rel for rel in self.files
                if rel.startswith(prefix)}

    def directories(self) -> list[str]:
        """Provider directories (those with a provider.toml or model files), sorted."""
        found = {rel.split("/")[1] for rel in self.files
                 if rel.startswith("providers/") and rel.count("/") >= 2}
        return sorted(found)

    def _provider_index(self, directory: str) -> dict[str, str]:
        """Lowercased model id -> relative path for one provider directory."""
        if directory not in self._index:
            self._index[directory] = {k.lower(): v
                                      for k, v in self.provider_models(directory).items()}
        return self._index[directory]

    def parse(self, rel: str, ptr: str = "") -> JsonObj:
        """One file parsed (a fresh copy; the parse is cached)."""
        if rel not in self._parsed:
            try:  # strict and bounded: deep nesting or huge numbers are refused, not a crash
                text = self.files[rel].decode("utf-8")
                self._parsed[rel] = jsonio.loads_toml(text, f"`{rel}`", max_depth=32)
            except UnicodeDecodeError:
                raise CatalogError([problem("import.invalid_toml", ptr,
                                            f"`{rel}` is not UTF-8 text")]) from None
            except jsonio.JsonRefused as exc:
                raise CatalogError([problem("import.invalid_toml", ptr, exc.message)]) from None
        return copy.deepcopy(self._parsed[rel])

    def resolve(self, rel: str, ptr: str = "") -> JsonObj:
        """Parse one provider model file and apply `base_model` inheritance (chains followed;
        a cycle, a missing base or a chain deeper than 16 raises `CatalogError`)."""
        chain = [rel]
        entry = self.parse(rel, ptr)
        layers = [entry]
        while "base_model" in layers[-1]:
            name = layers[-1]["base_model"]
            if not isinstance(name, str):
                raise CatalogError([problem("import.invalid_value", ptr + "/base_model",
                                            f"`{chain[-1]}`: `base_model` must be a string")])
            base_rel = f"models/{name}.toml"
            if base_rel in chain:
                cycle = " -> ".join(f"`{r}`" for r in [*chain, base_rel])
                raise CatalogError([problem("import.base_model_cycle", ptr + "/base_model",
                                            f"`base_model` chain is a cycle: {cycle}")])
            if base_rel not in self.files:
                raise CatalogError([problem(
                    "import.base_model_missing", ptr + "/base_model",
                    f"`{chain[-1]}`: `base_model` `{name}` names no file `{base_rel}`")])
            if len(chain) > MAX_BASE_DEPTH:
                raise CatalogError([problem("import.base_model_depth", ptr + "/base_model",
                                            f"`base_model` chain longer than {MAX_BASE_DEPTH}")])
            chain.append(base_rel)
            layers.append(self.parse(base_rel, ptr + "/base_model"))
        merged = layers.pop()
        while layers:
            top = layers.pop()
            omit = top.get("base_model_omit", [])
            for dotted in omit if isinstance(omit, list) else []:
                drop_dotted(merged, str(dotted))
            merged = overlay(merged, top)
        return merged

    def lookup(self, provider: str, api_name: str) -> JsonObj | None:
        """The models.dev entry for this provider's model id (first mapped directory wins)."""
        for directory in MODELS_DEV_PROVIDERS.get(provider, ()):
            rel = self._provider_index(directory).get(api_name.lower())
            if rel is not None:
                return self.resolve(rel)
        return None


def _read_tree(root: Path) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, bytes) of every regular `*.toml` file under `root`, in path order."""
    if not root.is_dir():
        raise CatalogError([problem("import.unreadable", "",
                                    f"`{root}` is not a directory")])
    paths: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            if name.endswith(".toml") and not path.is_symlink():
                paths.append((path.relative_to(root).as_posix(), path))
        if len(paths) > MAX_SOURCE_ENTRIES:
            raise CatalogError([problem("import.too_large", "",
                                        f"`{root}`: over {MAX_SOURCE_ENTRIES} TOML files")])
    total = 0
    for rel, path in sorted(paths):
        data = read_source(path)
        total += len(data)
        if total > MAX_CATALOG_BYTES:
            raise CatalogError([problem("import.too_large", "",
                                        f"`{root}`: over {MAX_CATALOG_BYTES} bytes of TOML")])
        yield rel, data


def drop_dotted(obj: JsonObj, dotted: str) -> None:
    """Delete `a.b.c` from nested dicts if present."""
    *parents, leaf = dotted.split(".")
    node: Any = obj
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def overlay(base: JsonObj, top: JsonObj) -> JsonObj:
    """`base` updated by `top`; tables are merged one level deep."""
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- field mapping


def table(md: JsonObj, name: str) -> JsonObj:
    """A TOML table of `md` or an empty dict."""
    value = md.get(name)
    return value if isinstance(value, dict) else {}


def price_from_toml(value: Any) -> float | None:
    """models.dev prices are already USD per 1M tokens."""
    return scaled_price(value, 1.0)


def models_dev_values(md: JsonObj) -> JsonObj:
    """The values one models.dev entry offers, in offering field names (0 prices raw)."""
    limit = table(md, "limit")
    cost = table(md, "cost")
    values: JsonObj = {
        "context_window": positive_int(limit.get("input", limit.get("context"))),
        "max_output_tokens": positive_int(limit.get("output")),
        "input_price": price_from_toml(cost.get("input")),
        "output_price": price_from_toml(cost.get("output")),
        "cached_input_price": price_from_toml(cost.get("cache_read")),
    }
    return {k: v for k, v in values.items() if v is not None}


def models_dev_capabilities(md: JsonObj) -> dict[str, bool]:
    """Capability -> supported, as far as models.dev states it."""
    caps: dict[str, bool] = {}
    for name, cap in (("tool_call", "tools"), ("reasoning", "reasoning"),
                      ("structured_output", "json_schema")):
        if isinstance(md.get(name), bool):
            caps[cap] = md[name]
    modalities = md.get("modalities")
    inputs = modalities.get("input") if isinstance(modalities, dict) else None
    if isinstance(inputs, list):
        for modality, cap in MODALITY_CAPABILITIES.items():
            caps[cap] = modality in inputs
    return caps


def fill_gaps(offering: JsonObj, entry: JsonObj, md: JsonObj, free: bool,
              counts: Counter[str]) -> None:
    """Fill fields a LiteLLM offering lacks from the same offering's models.dev entry."""
    for name, value in models_dev_values(md).items():
        if name in offering or (value == 0 and not free):
            continue
        offering[name] = value
        counts[f"models_dev_filled.{name}"] += 1
    flags = {cap: flag for flag, cap in CAPABILITY_FLAGS.items()}
    caps: set[str] = offering["capabilities"]
    for cap, supported in models_dev_capabilities(md).items():
        if supported and flags[cap] not in entry and cap not in caps:
            caps.add(cap)
            counts[f"models_dev_filled.capability.{cap}"] += 1


# --------------------------------------------------------------------------- standalone import


@dataclass(frozen=True)
class _Entry:
    """One provider model of the source, before mapping."""

    directory: str  # models.dev provider id
    model_id: str  # models.dev model id (the provider's API name)
    ptr: str  # `/<provider>/models/<model id>` (the same in the tree and in api.json)
    label: str  # what messages call it (file path or api.json location)


def model_problems(md: JsonObj, entry: _Entry) -> list[Problem]:
    """Malformed values of one resolved model: each names the file, the field and why."""
    problems: list[Problem] = []
    for name in ("cost", "limit", "modalities"):
        if name in md and not isinstance(md[name], dict):
            problems.append(problem("import.invalid_value", f"{entry.ptr}/{name}",
                                    f"`{entry.label}`: `{name}` must be a table"))
    cost, limit, modalities = table(md, "cost"), table(md, "limit"), table(md, "modalities")
    for name in ("input", "output", "cache_read"):
        check_number(cost.get(name), f"{entry.ptr}/cost/{name}", f"`{entry.label}`",
                     f"cost.{name}", problems)
    for name in ("context", "input", "output"):
        check_count(limit.get(name), f"{entry.ptr}/limit/{name}", f"`{entry.label}`",
                    f"limit.{name}", problems)
    for name in ("tool_call", "reasoning", "structured_output"):
        check_bool(md.get(name), f"{entry.ptr}/{name}", f"`{entry.label}`", name, problems)
    for name in ("input", "output"):
        value = modalities.get(name)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            problems.append(problem("import.invalid_value", f"{entry.ptr}/modalities/{name}",
                                    f"`{entry.label}`: `modalities.{name}` must be a list of "
                                    "strings"))
    return problems


def check_model(md: JsonObj, model_id: str) -> None:
    """Raise `Skip` for entries that do not become offerings."""
    outputs = table(md, "modalities").get("output")
    if isinstance(outputs, list) and outputs and "text" not in outputs:
        raise Skip("not_chat")
    if NOT_CHAT_MODEL_RE.search(model_id.lower()):
        raise Skip("not_a_chat_model")
    cost, limit = table(md, "cost"), table(md, "limit")
    if not any(k in cost for k in ("input", "output")) and not limit:
        raise Skip("no_token_data")


def is_local(directory: str) -> bool:
    """Whether a models.dev provider is a runtime on the user's machine (its 0 prices are real).

    An explicit list: a loopback `api` URL is not enough (Privatemode's is a local proxy of a
    paid service).
    """
    return directory in LOCAL_RUNTIMES


def md_offering(route: Route, md: JsonObj, free: bool, counts: Counter[str]) -> JsonObj:
    """One offering from a resolved models.dev model."""
    offering: JsonObj = {"id": offering_id(route), "model": route.model,
                         "provider": route.provider, "region": route.region, "tags": []}
    if route.api_name != route.model:
        offering["api_model"] = route.api_name
    for name, value in models_dev_values(md).items():
        if name in PRICE_FIELDS and value == 0 and not free:
            counts[f"zero_price_dropped.{name}"] += 1
            continue
        offering[name] = value
    caps = {"streaming"} | {cap for cap, ok in models_dev_capabilities(md).items() if ok}
    if "cached_input_price" in offering:
        caps.add("prompt_caching")
    offering["capabilities"] = sorted(caps)
    if table(md, "cost").get("tiers") or table(md, "cost").get("context_over_200k"):
        counts["tiered_prices_ignored"] += 1
    if md.get("status") == "deprecated":
        counts["deprecated_without_date"] += 1
    return offering


def completeness(md: JsonObj) -> int:
    cost, limit = table(md, "cost"), table(md, "limit")
    return sum(1 for k in ("input", "output", "cache_read") if k in cost) + \
        sum(1 for k in ("context", "input", "output") if k in limit)


def _tree_entries(md: ModelsDev) -> Iterator[tuple[_Entry, str]]:
    """(entry, relative path) of every provider model file in the tree."""
    for directory in md.directories():
        for model_id, rel in sorted(md.provider_models(directory).items()):
            yield _Entry(directory, model_id, pointer(directory, "models", model_id), rel), rel


def _api_entries(data: object, where: str) -> Iterator[tuple[_Entry, JsonObj]]:
    """(entry, model object) of every model in an `api.json` document (shape-checked)."""
    if not isinstance(data, dict):
        raise CatalogError([problem(
            "import.shape", "", f"`{where}`: expected a JSON object of providers",
            "models.dev's api.json maps provider ids to {…, \"models\": {…}}")])
    problems: list[Problem] = []
    found: list[tuple[_Entry, JsonObj]] = []
    for directory, info in data.items():
        models = info.get("models") if isinstance(info, dict) else None
        if not isinstance(models, dict):
            problems.append(problem("import.shape", pointer(directory, "models"),
                                    f"`{where}`: provider `{directory}` has no `models` object"))
            continue
        for model_id, model in models.items():
            ptr = pointer(directory, "models", model_id)
            if not isinstance(model, dict):
                problems.append(problem("import.shape", ptr,
                                        f"`{where}`: model `{model_id}` is not an object"))
                continue
            found.append((_Entry(directory, model_id, ptr, f"{where}#{ptr}"), model))
            if len(found) > MAX_SOURCE_ENTRIES:
                raise CatalogError([problem("import.too_large", "",
                                            f"`{where}`: over {MAX_SOURCE_ENTRIES} models")])
    if problems:
        raise CatalogError(problems)
    yield from found


def _map_all(entries: list[tuple[_Entry, JsonObj]], skipped: Counter[str],
             counts: Counter[str], conflicts: list[str]) -> list[tuple[str, JsonObj]]:
    """Resolved models -> (source pointer, offering), one per id (the best-ranked entry)."""
    problems: list[Problem] = []
    ranked: list[tuple[str, int, int, str, str, Route, _Entry, JsonObj]] = []
    for entry, md in entries:
        bad = model_problems(md, entry)
        if bad:
            problems.extend(bad)
            continue
        provider = PROVIDER_OF_DIRECTORY.get(entry.directory, entry.directory.lower())
        try:
            if not PROVIDER_RE.match(provider):
                raise Skip("unparseable_provider")
            check_model(md, entry.model_id)
            route = _route(entry.model_id, provider)
        except Skip as skip:
            skipped[skip.reason] += 1
            continue
        ranked.append((offering_id(route), route.preference, -completeness(md), entry.directory,
                       entry.model_id, route, entry, md))
    if problems:
        raise CatalogError(problems)
    ranked.sort(key=lambda r: r[:5])
    offerings: list[tuple[str, JsonObj]] = []
    index = 0
    while index < len(ranked):
        oid, *_rest, route, entry, md = ranked[index]
        end = index + 1
        while end < len(ranked) and ranked[end][0] == oid:
            end += 1
        group = ranked[index:end]
        skipped["duplicate_id"] += len(group) - 1
        if len({_token_prices(g[-1]) for g in group}) > 1:
            conflicts.append(oid)
        free = is_free(route) or is_local(entry.directory)
        offerings.append((entry.ptr, md_offering(route, md, free, counts)))
        index = end
    return offerings


def _route(model_id: str, provider: str) -> Route:
    """`route_key` over the model id; a gateway prefix before a `@namespace/` segment
    (`workers-ai/@cf/meta/llama-3-8b-instruct`) is not part of the model name."""
    cut = model_id.find("/@")
    if cut < 0:
        return route_key(model_id, provider)
    return replace(route_key(model_id[cut + 1:], provider), api_name=model_id)


def _token_prices(md: JsonObj) -> tuple[Any, Any]:
    cost = table(md, "cost")
    return cost.get("input"), cost.get("output")


def import_models_dev_tree(root: Path) -> ImportResult:
    """Import a models.dev TOML tree (the directory holding `providers/` and `models/`)."""
    tree = ModelsDev(root)
    if not any(rel.startswith("providers/") for rel in tree.files):
        raise CatalogError([problem("import.shape", "",
                                    f"`{root}` has no `providers/*/models/*.toml` files",
                                    "pass the models.dev checkout (or its api.json)")])
    problems: list[Problem] = []
    entries: list[tuple[_Entry, JsonObj]] = []
    for entry, rel in _tree_entries(tree):
        try:
            entries.append((entry, tree.resolve(rel, entry.ptr)))
        except CatalogError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CatalogError(problems)
    return _finish(entries, str(root),
                   f"sha256:{tree.digest()} over {len(tree.files)} toml files")


def import_models_dev(data: object, *, where: str = "models.dev",
                      digest: str | None = None) -> ImportResult:
    """Import a parsed models.dev `api.json` document."""
    entries = list(_api_entries(data, where))
    return _finish(entries, where, f"{Path(where).name} sha256:{digest}" if digest else None)


def _finish(entries: list[tuple[_Entry, JsonObj]], where: str,
            digest: str | None) -> ImportResult:
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    conflicts: list[str] = []
    offerings = _map_all(entries, skipped, counts, conflicts)
    generated = {"importer": "models.dev"}
    if digest is not None:
        generated["models_dev"] = digest
    return finish_import(
        source="models.dev", where=where,
        header=f"imported from models.dev {Path(where).name} by `unhardcoded catalog import`",
        generated=generated, offerings=sorted(offerings, key=lambda o: str(o[1]["id"])),
        read=len(entries), skipped=skipped, adjustments=counts, conflicts=conflicts,
    )


def import_models_dev_path(path: Path) -> ImportResult:
    """A directory is read as the TOML tree, a file as `api.json`."""
    if path.is_dir():
        return import_models_dev_tree(path)
    raw = read_source(path)
    return import_models_dev(parse_json(raw, str(path)), where=str(path),
                             digest=sha256_hex(raw))
