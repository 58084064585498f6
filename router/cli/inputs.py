"""What the commands read and write: bounded JSON, policy text, the catalog in force, and files
replaced atomically. Errors are `InputError` (every problem; `main` prints them as JSON and
exits 2)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from router.common import jsonio
from router.common.problems import Problem

MAX_INPUT_BYTES = 8 * 1024 * 1024


class InputError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.line() for p in problems))


def read_json(path: str, what: str) -> Any:
    try:
        return jsonio.read_json(path, MAX_INPUT_BYTES)
    except jsonio.JsonRefused as exc:
        raise InputError([Problem(code=f"{what}.{exc.kind}", pointer="",
                                  message=exc.message)]) from None


def policy_text(path: str) -> str:
    try:
        return jsonio.read_text(path, MAX_INPUT_BYTES)
    except jsonio.JsonRefused as exc:
        code = "policy.too_large" if exc.kind == "too_large" else "policy.unreadable"
        raise InputError([Problem(code=code, pointer="", message=exc.message)]) from None


def catalog_of(args: argparse.Namespace) -> Any:
    """The catalog in force: `--catalog` (or the embedded one) with `--overlay`s applied."""
    from router.catalog.offerings import default_catalog, load_catalog
    from router.catalog.overlays import apply_overlays, load_overlays

    base = load_catalog(args.catalog) if args.catalog else default_catalog()
    overlays = getattr(args, "overlay", None) or []
    return apply_overlays(base, load_overlays(overlays)) if overlays else base


def replace_file(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically (a temporary file beside it, synced, renamed), with
    permissions `mode` when given: a failure leaves the old file as it was. Raises `OSError`."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
