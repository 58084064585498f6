"""Problems: the one shape every refusal takes (bad policy, catalog, request or config).

A problem has a stable `code`, a location (`pointer`: RFC 6901 into the input, or an
`entry`/`field` for catalog files), a lowercase one-line `message` with user input in backticks,
and a `hint` where one helps. Refusals report every problem at once, sorted by location.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    pointer: str
    message: str
    hint: str | None = None

    def line(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.code} at {self.pointer or '/'}: {self.message}{hint}"


class RefusedError(Exception):
    """Raised when an input is refused; carries every problem found."""

    def __init__(self, what: str, problems: Sequence[Problem]) -> None:
        self.what = what
        self.problems = tuple(sorted(problems, key=lambda p: (pointer_key(p.pointer), p.code)))
        super().__init__(f"{what} refused: " + "; ".join(p.line() for p in self.problems))

    def to_json(self) -> list[dict[str, str | None]]:
        return [p.model_dump() for p in self.problems]


class PolicyError(RefusedError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("policy", problems)


class CatalogError(RefusedError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("catalog", problems)


class RequestError(RefusedError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("request", problems)


def pointer_key(pointer: str) -> tuple[tuple[int, int | str], ...]:
    """The order problems are reported in: by location, array indexes numerically."""
    parts: list[tuple[int, int | str]] = []
    for token in pointer_tokens(pointer):
        parts.append((0, int(token)) if token.isdigit() else (1, token))
    return tuple(parts)


# A label or tag: a caller's request label (`pii`), an operator's offering tag (`approved`).
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def pointer_tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens of an RFC 6901 pointer (`""` is the whole document)."""
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def escape_token(token: str | int) -> str:
    """RFC 6901 reference token escaping."""
    return str(token).replace("~", "~0").replace("/", "~1")


def child_pointer(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape_token(token)}"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


class Suggester:
    """`did_you_mean` over many choices (a catalog's offering ids). A trigram index shortlists
    the choices sharing the most trigrams with the word, and difflib picks among those: one
    suggestion costs the word's index postings, not a comparison with every choice."""

    def __init__(self, choices: Iterable[str], shortlist: int = 32) -> None:
        self._choices = list(dict.fromkeys(choices))
        self._shortlist = shortlist
        self._index: dict[str, list[int]] = defaultdict(list)
        for i, choice in enumerate(self._choices):
            for gram in _trigrams(choice):
                self._index[gram].append(i)

    def hint(self, word: str) -> str | None:
        shared: Counter[int] = Counter()
        for gram in _trigrams(word):
            shared.update(self._index.get(gram, ()))
        best = [self._choices[i] for i, _ in shared.most_common(self._shortlist)]
        return did_you_mean(word, best)


def _trigrams(word: str) -> set[str]:
    padded = f"  {word} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def quote(value: object, limit: int = 60) -> str:
    """User input rendered safely inside a one-line message."""
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_error(err: Mapping[str, Any], aliases: Mapping[str, str] | None = None
                     ) -> tuple[str, str]:
    """One pydantic error as (pointer below the validated object, lowercase message): the one
    mapping from pydantic's `ErrorDetails` to our problems. `aliases` maps field names to the
    names users write (e.g. `schema_` → `schema`)."""
    pointer = ""
    for token in err["loc"]:
        pointer = child_pointer(pointer, (aliases or {}).get(str(token), token))
    kind = err.get("type")
    if kind == "extra_forbidden":
        return pointer, "unknown field"
    if kind == "missing":
        return pointer, "required field is missing"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        return pointer, msg[len("Value error, "):]
    return pointer, msg[0].lower() + msg[1:]
