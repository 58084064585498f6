"""Catalog importers: price lists people already have -> a validated `Catalog` plus a report.

One small interface: an importer is a function `(Path) -> ImportResult` registered by name in
`IMPORTERS` (the names `unhardcoded catalog import --from` accepts). Each module also has a
function over parsed data (`import_litellm(data)`, ...) for callers that already hold it.

    result = import_catalog("litellm", Path("model_prices_and_context_window.json"))
    result.catalog          # router.catalog.offerings.Catalog, validated by build_catalog
    result.report.skipped   # {"alias": 98, "not_chat": 1308, ...}

Mappings are documented in docs/catalog.md (Importing other catalogs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from router.catalog.importers._common import ImportReport, ImportResult, render_catalog
from router.catalog.importers.litellm import import_litellm, import_litellm_file
from router.catalog.importers.modelsdev import import_models_dev, import_models_dev_path
from router.catalog.importers.openrouter import import_openrouter, import_openrouter_file
from router.common.problems import CatalogError, Problem, did_you_mean

Importer = Callable[[Path], ImportResult]

IMPORTERS: Mapping[str, Importer] = MappingProxyType({
    "litellm": import_litellm_file,
    "openrouter": import_openrouter_file,
    "models.dev": import_models_dev_path,
})
"""`--from` name -> importer. `models.dev` takes the TOML tree directory or `api.json`."""


def import_catalog(source: str, path: str | Path) -> ImportResult:
    """Import `path` with the importer registered as `source` (raises `CatalogError`)."""
    importer = IMPORTERS.get(source)
    if importer is None:
        raise CatalogError([Problem(code="import.unknown_source", pointer="",
                                    message=f"no importer `{source}`; one of "
                                            f"{', '.join(IMPORTERS)}",
                                    hint=did_you_mean(source, IMPORTERS))])
    return importer(Path(path))


__all__ = [
    "IMPORTERS",
    "ImportReport",
    "ImportResult",
    "Importer",
    "import_catalog",
    "import_litellm",
    "import_models_dev",
    "import_openrouter",
    "render_catalog",
]
