"""Live refresh: the catalog and overlay files a router was built from, watched and reloaded.

A reload validates the files whole (a refused file changes nothing), derives every registered
policy for the new version in the background, and only then swaps the new catalog in — a
decision never waits on a derivation and never sees a half-built catalog. Decisions name the
catalog version they used. Files that leave no offering at all (an empty catalog: a failed
export or import, a truncated file) are refused like any invalid file; to stop all traffic on
purpose, an overlay disables every offering (`disable = ["*"]`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from router.catalog.offerings import Catalog, default_catalog, load_catalog
from router.common.problems import CatalogError, Problem, RefusedError, quote

log = logging.getLogger("unhardcoded.refresh")
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class CatalogSource:
    """Where a catalog comes from: a file (or the embedded catalog) and overlays, in order."""

    catalog_path: Path | None = None
    overlay_paths: tuple[Path, ...] = ()

    def load(self) -> Catalog:
        """Read and validate everything; raises `RefusedError` naming every problem."""
        from router.catalog.overlays import apply_overlays, load_overlays

        base = default_catalog() if self.catalog_path is None else load_catalog(self.catalog_path)
        catalog = apply_overlays(base, load_overlays(self.overlay_paths))
        if not len(catalog):
            where = f"`{self.catalog_path}`" if self.catalog_path else "the embedded catalog"
            after = " with its overlays" if self.overlay_paths else ""
            raise CatalogError([Problem(
                code="catalog.empty", pointer="/offerings",
                message=f"{where}{after} has no offerings: a router cannot serve from it",
                hint='check the file (a failed export or import?); to stop all traffic on '
                     'purpose, disable every offering in an overlay: `disable = ["*"]`')])
        return catalog

    def fingerprint(self) -> Fingerprint:
        """(path, size, mtime_ns) of every file; a missing file reads as (path, -1, -1)."""
        paths = ([self.catalog_path] if self.catalog_path else []) + list(self.overlay_paths)
        out = []
        for p in paths:
            try:
                st = os.stat(p)
                out.append((str(p), st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((str(p), -1, -1))
        return tuple(out)


@dataclass(frozen=True)
class ReloadReport:
    changed: bool
    previous_version: str
    version: str
    policies_derived: int = 0
    seconds: float = 0.0
    problems: tuple[str, ...] = ()  # why the new files were refused (nothing changed)
    swapped_at: float | None = None  # time.monotonic() when the new version started serving

    @property
    def refused(self) -> bool:
        return bool(self.problems)


@dataclass
class Watcher:
    """Polls the source's files and reloads when they change (a background daemon thread)."""

    source: CatalogSource
    reload: Callable[[], ReloadReport]
    interval_s: float = 2.0
    reports: deque[ReloadReport] = field(default_factory=lambda: deque(maxlen=100))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        seen = self.source.fingerprint()

        def run() -> None:
            nonlocal seen
            while not self._stop.wait(self.interval_s):
                now = self.source.fingerprint()
                if now == seen:
                    continue
                seen = now
                try:
                    report = self.reload()
                except Exception as exc:  # a watcher must outlive one bad reload
                    log.error("catalog reload failed, the previous version stays in force: "
                              "%s: %s", type(exc).__name__, exc)
                    log.debug("catalog reload failed", exc_info=True)
                    continue
                self.reports.append(report)
                log_report(report)

        self._thread = threading.Thread(target=run, name="catalog-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)


def log_report(report: ReloadReport) -> None:
    if report.refused:
        log.warning("catalog change refused, the previous version stays in force: %s",
                    "; ".join(report.problems))
    elif report.changed:
        n = report.policies_derived
        log.info("catalog %s now serving (was %s; %d %s derived in %.2f s)",
                 report.version, report.previous_version, n,
                 "policy" if n == 1 else "policies", report.seconds)


def log_reload(future: Future[ReloadReport]) -> None:
    """Log the outcome of a background reload (SIGHUP): its report, or why it failed."""
    exc = future.exception()
    if exc is not None:
        log.error("catalog reload failed: %s", exc)
    else:
        log_report(future.result())


def refused_report(current: Catalog, exc: RefusedError) -> ReloadReport:
    return ReloadReport(False, current.version, current.version,
                        problems=tuple(p.line() for p in exc.problems))


def source_of(catalog_path: str | Path | None,
              overlay_paths: Sequence[str | Path]) -> CatalogSource:
    return CatalogSource(None if catalog_path is None else Path(catalog_path),
                         tuple(Path(p) for p in overlay_paths))


class CatalogHolder:
    """The catalog in force — swapped whole by `reload`, read once per decision — and the files
    it was read from (none when it was given as a `Catalog` object)."""

    def __init__(self, catalog: Catalog | str | Path | None,
                 overlays: Sequence[str | Path] = ()) -> None:
        self.source: CatalogSource | None = None
        if isinstance(catalog, Catalog):
            if overlays:
                from router.catalog.overlays import apply_overlays, load_overlays
                catalog = apply_overlays(catalog, load_overlays(overlays))
        else:
            self.source = source_of(catalog, overlays)
            catalog = self.source.load()
        self.current: Catalog = catalog
        self._lock = threading.Lock()
        self._watcher: Watcher | None = None

    def _files(self, what: str) -> CatalogSource:
        if self.source is None:
            raise ValueError(f"this router was given a Catalog object: there are no files to "
                             f"{what} (pass a path, or None for the embedded catalog)")
        return self.source

    def reload(self, prepare: Callable[[Catalog], int]) -> ReloadReport:
        """Re-read the files; `prepare` the new version (derive what must be ready), then swap
        it in. A refused file changes nothing: the report lists its problems."""
        source = self._files("reload")
        with self._lock:
            started = time.perf_counter()
            current = self.current
            try:
                new = source.load()
            except RefusedError as exc:
                return refused_report(current, exc)
            except Exception as exc:  # files are input: a refusal, never a traceback
                log.debug("reading the catalog files failed", exc_info=True)
                return refused_report(current, CatalogError([Problem(
                    code="catalog.unreadable", pointer="",
                    message=f"reading the files failed: {type(exc).__name__}: "
                            f"{quote(str(exc), 200)}",
                    hint="the version in force keeps serving; please report this as a bug")]))
            if new.version == current.version:
                return ReloadReport(False, current.version, current.version)
            derived = prepare(new)
            self.current = new
            return ReloadReport(True, current.version, new.version, derived,
                                time.perf_counter() - started, swapped_at=time.monotonic())

    def reload_in_background(self, prepare: Callable[[Catalog], int]) -> Future[ReloadReport]:
        future: Future[ReloadReport] = Future()

        def run() -> None:
            try:
                future.set_result(self.reload(prepare))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=run, name="catalog-reload", daemon=True).start()
        return future

    def watch(self, reload: Callable[[], ReloadReport], interval_s: float) -> Watcher:
        source = self._files("watch")
        self.stop()
        self._watcher = Watcher(source, reload, interval_s).start()
        return self._watcher

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
