"""Generate the embedded default catalog (``router/catalog/default.json``) from public prices.

A tool kept in the repository, not shipped: the package holds only ``router*``.  ``--sources`` is a
directory laid out like the samples the tests use (``PROVENANCE.md``, ``litellm/``,
``models.dev/``), which are committed as ``tests/data/catalog-sources.tar.xz``.  To regenerate
the embedded catalog from them, from the project root::

    mkdir -p /tmp/cs && tar -xJf tests/data/catalog-sources.tar.xz -C /tmp/cs
    python -m catalog.generate --sources /tmp/cs/catalog-sources -o router/catalog/default.json

An *offering* is one model served by one provider in one region.  Offerings come from LiteLLM's
price map (``litellm/model_prices_and_context_window_backup.json``); the models.dev TOML tree only
fills fields LiteLLM leaves empty for the *same* offering.  The output is reproducible: no clock,
no network, sorted keys, offerings sorted by ``id``.  See ``docs/catalog.md`` for the full rules.

Mapping of one LiteLLM entry (``mode == "chat"`` only) to an offering:

* ``provider``  ``litellm_provider`` normalised (``bedrock_converse`` -> ``bedrock``,
  ``vertex_ai-*`` -> ``vertex_ai``, ``cohere_chat`` -> ``cohere``; ``bedrock/claude_platform/``
  keys -> ``bedrock_claude_platform``, a separate Anthropic-operated service).
* ``region``    Bedrock geo prefixes (``eu.``, ``us.``, ``apac.``, ``global.``, ``jp.``, ``au.``,
  ``ca.``, ``in.``, ``us-gov.``), Azure path regions (``azure/eu/``, ``azure/us/``,
  ``azure/global/``, ``azure/apac/``, ``azure/us-gov/``), AWS region path segments
  (``bedrock/eu-west-1/`` -> ``eu``, ``ap-*`` -> ``apac``, ``us-gov-*`` -> ``us-gov``, ...);
  everything else ``global``.
* ``model``     key without routing prefixes, Bedrock geo/vendor prefixes and version suffixes;
  last path segment (``org/model/variant`` -> ``model-variant``); lowercased; ``@VERSION`` ->
  ``-VERSION`` (``@default`` dropped); Vertex ``-maas`` dropped.
* ``api_model`` the name the provider's API expects, only where it differs from ``model``.
* ``id``        ``provider/model`` (region ``global``) or ``provider/region/model``.
* prices        ``*_cost_per_token`` x 1e6 (USD per 1M tokens); tiered/batch/priority ignored;
  a 0 price is kept only for known-free offerings, otherwise it is unknown (omitted).
* limits        ``max_input_tokens`` -> ``context_window``, ``max_output_tokens``.
* capabilities  ``supports_*`` flags, plus ``streaming`` for every chat model.

Skipped: ``sample_spec``, ``alias_of`` entries, non-chat modes, wildcard keys, ``ft:`` templates,
entries without a provider, provisioned-throughput commitments, pricing-tier pseudo entries,
entries with no token data at all, embedding/TTS models filed as chat, unparseable keys, and
duplicate ids (the first by a fixed preference order wins).  Nothing runs at import.

The mapping itself lives in ``router.catalog.importers`` (``litellm`` for the entries, ``modelsdev``
for the TOML tree and gap filling), shared with ``unhardcoded catalog import``; this module adds
the provenance header, the models.dev gap filling hook and the report.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from router.catalog.importers._common import JsonObj, render_catalog, sha256_hex
from router.catalog.importers._names import Route
from router.catalog.importers.litellm import build_offerings
from router.catalog.importers.modelsdev import ModelsDev, fill_gaps
from router.catalog.offerings import build_catalog
from router.common.problems import CatalogError

LITELLM_FILE: Final = "litellm/model_prices_and_context_window_backup.json"
MODELS_DEV_DIR: Final = "models.dev"
PROVENANCE_FILE: Final = "PROVENANCE.md"


@dataclass(frozen=True)
class Provenance:
    """Versions and date of the sources, read from PROVENANCE.md."""

    litellm_version: str
    models_dev_commit: str
    date: str


def read_provenance(sources: pathlib.Path) -> Provenance:
    """Extract the LiteLLM version and the models.dev commit and date from PROVENANCE.md."""
    text = (sources / PROVENANCE_FILE).read_text(encoding="utf-8")
    version = re.search(r"`litellm`\s+(\d+(?:\.\d+)+)", text)
    commit = re.search(r"commit\s+([0-9a-f]{7,40})\s+\((\d{4}-\d{2}-\d{2})\)", text)
    if version is None or commit is None:
        raise ValueError(f"{PROVENANCE_FILE}: litellm version or models.dev commit not found")
    return Provenance(version.group(1), commit.group(1), commit.group(2))


def models_dev_filler(md: ModelsDev) -> Any:
    """The gap-filling hook for ``build_offerings``: the same offering's models.dev entry."""

    def fill(offering: JsonObj, route: Route, entry: JsonObj, free: bool,
             counts: Counter[str]) -> None:
        md_entry = md.lookup(route.provider, route.api_name)
        if md_entry is not None:
            counts["models_dev_matched"] += 1
            fill_gaps(offering, entry, md_entry, free, counts)

    return fill


def generate(sources: pathlib.Path) -> tuple[JsonObj, JsonObj]:
    """Build the catalog from ``sources``; return (catalog, report)."""
    provenance = read_provenance(sources)
    litellm_path = sources / LITELLM_FILE
    raw = litellm_path.read_bytes()
    prices: JsonObj = json.loads(raw)
    md = ModelsDev(sources / MODELS_DEV_DIR)
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    conflicts: list[str] = []
    offerings = [o for _, o in build_offerings(prices, skipped, counts, conflicts,
                                               models_dev_filler(md))]
    catalog: JsonObj = {
        "schema": 1,
        "source": (
            "generated by catalog/generate.py from LiteLLM "
            f"{litellm_path.name} (litellm {provenance.litellm_version}) "
            f"+ models.dev {provenance.models_dev_commit}"
        ),
        "generated": {
            "litellm": f"{litellm_path.name} sha256:{sha256_hex(raw)}",
            "models_dev": (
                f"{provenance.models_dev_commit} ({provenance.date}) "
                f"sha256:{md.digest()} over {len(md.files)} toml files"
            ),
            "date": provenance.date,
        },
        "offerings": offerings,
    }
    build_catalog(catalog, "generated catalog")  # validate before anything is written
    report = build_report(len(prices), offerings, skipped, counts)
    report["duplicate_price_conflicts"] = conflicts
    return catalog, report


def build_report(read: int, offerings: list[JsonObj], skipped: Counter[str],
                 counts: Counter[str]) -> JsonObj:
    """Counts: entries read, offerings imported, skips by reason, fills, by provider/region."""
    providers = Counter(str(o["provider"]) for o in offerings)
    regions = Counter(str(o["region"]) for o in offerings)
    return {
        "read": read,
        "imported": len(offerings),
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "adjustments": dict(sorted(counts.items())),
        "by_provider": dict(providers.most_common()),
        "by_region": dict(regions.most_common()),
    }


def render(catalog: JsonObj) -> str:
    """The exact on-disk form of a catalog."""
    return render_catalog(catalog)


def main(argv: list[str] | None = None) -> int:
    """CLI: write the catalog, print the report to stderr."""
    parser = argparse.ArgumentParser(prog="python -m catalog.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=pathlib.Path, required=True,
                        help="directory holding PROVENANCE.md, litellm/ and models.dev/ "
                             "(e.g. tests/data/catalog-sources.tar.xz, unpacked)")
    parser.add_argument("-o", "--output", type=pathlib.Path, required=True,
                        help="catalog file to write (the embedded one is "
                             "router/catalog/default.json)")
    args = parser.parse_args(argv)
    try:
        catalog, report = generate(args.sources)
    except CatalogError as exc:
        print(json.dumps({"ok": False, "problems": exc.to_json()}, indent=1), file=sys.stderr)
        return 2
    args.output.write_text(render(catalog), encoding="utf-8")
    print(json.dumps(report, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
