"""How the command line prints for a person: colours and widths only on a terminal (never with
`NO_COLOR` set or `TERM=dumb`), and values formatted one way everywhere."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, TextIO

_ANSI = re.compile(r"\033\[[0-9;]*m")


@dataclass(frozen=True)
class Style:
    color: bool = False
    width: int | None = None  # a terminal's: long lines are clipped to it

    def clip(self, text: str) -> str:
        """At most `width` visible characters (a clipped line loses its colours)."""
        w = self.width
        if w is None:
            return text
        plain = _ANSI.sub("", text)
        return text if len(plain) <= w else plain[:w - 1] + "…"

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def good(self, text: str) -> str:
        return self._wrap("1;32", text)

    def bad(self, text: str) -> str:
        return self._wrap("1;31", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


PLAIN = Style()


def style_for(stream: TextIO) -> Style:
    """Colours and widths only on a terminal; plain, unclipped text otherwise."""
    env = os.environ
    if not getattr(stream, "isatty", lambda: False)():
        return Style()
    import shutil

    width = max(shutil.get_terminal_size().columns, 60)
    return Style("NO_COLOR" not in env and env.get("TERM") != "dumb", width)


def fmt(v: Any) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
