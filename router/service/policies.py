"""Named policies (a directory of JSON files, `support-tickets.json` → `support-tickets`) and
how a request names its policy.

A request's policy comes from, in this order: the body's `policy` field (a name or the policy
itself), the `x-unhardcoded-policy` header (a name or the policy's JSON), or the `model` field —
`policy:NAME` names a policy, and a plain model name is served by a one-model policy over the
catalog's offerings of that model (cheapest first, failing over across its providers).

Loading is all-or-nothing: every file is admitted, and one bad file refuses the whole
directory with every problem of every file (pointers prefixed with the file name).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.catalog.offerings import Catalog
from router.common.jsonio import JsonRefused, read_bounded
from router.common.problems import PolicyError, Problem, RefusedError, Suggester, did_you_mean
from router.policy.admit import MAX_BYTES, admit, admit_text
from router.policy.memo import PolicyInput
from router.policy.terms import Policy

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_FILES = 1000
POLICY_PREFIX = "policy:"
HEADER = "x-unhardcoded-policy"
MODEL_CASCADE = 3  # failover hops of a plain model's policy
MODEL_POLICIES = 512  # plain-model policies kept admitted (LRU)


class PoliciesError(RefusedError):
    """A policies directory that cannot be used; every problem, by file (`FILE#POINTER`)."""

    def __init__(self, where: str, problems: list[Problem]) -> None:
        self.where = where
        super().__init__(f"policies in `{where}`", problems)


def load_named(directory: str | Path | None) -> dict[str, Policy]:
    """Admit every `*.json` file of `directory` (none: no named policies)."""
    if directory is None:
        return {}
    where = str(directory)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except OSError as exc:
        raise PoliciesError(where, [Problem(code="policies.unreadable", pointer="",
                                            message=f"cannot list `{where}`: {exc.strerror}",
                                            hint="pass a directory of policy JSON files")]
                            ) from None
    if len(names) > MAX_FILES:
        raise PoliciesError(where, [Problem(code="policies.too_many", pointer="",
                                            message=f"{len(names)} policy files; the limit is "
                                                    f"{MAX_FILES}")])
    found: dict[str, Policy] = {}
    problems: list[Problem] = []
    for file in names:
        name = file[:-len(".json")]
        if not NAME.match(name):
            problems.append(Problem(code="policies.bad_name", pointer=f"{file}#",
                                    message=f"`{name}` is not a policy name",
                                    hint="1-64 letters, digits or `_.-`, starting with a "
                                         "letter or digit"))
            continue
        try:
            found[name] = admit_text(read_bounded(Path(directory) / file, MAX_BYTES))
        except JsonRefused as exc:
            problems.append(Problem(code=f"policy.{exc.kind}", pointer=f"{file}#",
                                    message=exc.message))
        except PolicyError as exc:
            problems.extend(Problem(code=p.code, pointer=f"{file}#{p.pointer}",
                                    message=p.message, hint=p.hint) for p in exc.problems)
    if problems:
        raise PoliciesError(where, problems)
    return found


@dataclass(frozen=True)
class Chosen:
    """The policy a request is served under. `name` is what the record and metrics call it:
    a policy name, `inline`, or `model:NAME`."""

    policy: Policy
    name: str
    source: str  # named | inline | model

    @property
    def record_name(self) -> str | None:
        return None if self.source == "inline" else self.name


class PolicyNotFound(Exception):
    def __init__(self, code: str, message: str, param: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


class Chooser:
    """Resolves a request's policy against the named policies and the catalog in force."""

    def __init__(self, named: Mapping[str, Policy],
                 admit_policy: Callable[[PolicyInput], Policy] = admit) -> None:
        """`admit_policy`: the router's memo (`Router.policies.admit`), so an inline policy
        sent again is not admitted again."""
        self.named = dict(named)
        self._admit = admit_policy
        self._models: OrderedDict[tuple[str, str], Policy] = OrderedDict()
        self._index_of: _ModelIndex | None = None

    def choose(self, body: Mapping[str, Any], header: str | None, catalog: Catalog) -> Chosen:
        """Raises `PolicyNotFound` (unknown name or model) or `PolicyError` (a bad policy)."""
        if "policy" in body:
            given = body["policy"]
            if isinstance(given, str):
                return self._named(given, "/policy")
            return Chosen(self._admit(given), "inline", "inline")
        if header is not None:
            text = header.strip()
            if text.startswith(("[", "{")):
                return Chosen(self._admit(text), "inline", "inline")
            return self._named(text.removeprefix(POLICY_PREFIX), f"header {HEADER}")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise PolicyNotFound("model_required", "no policy given: set `model` to "
                                 "`policy:NAME` or a model name, or send a `policy`", "model")
        if model.startswith(POLICY_PREFIX):
            return self._named(model[len(POLICY_PREFIX):], "model")
        return Chosen(self._model_policy(model, catalog), f"model:{model}", "model")

    def _named(self, name: str, param: str) -> Chosen:
        policy = self.named.get(name)
        if policy is None:
            hint = did_you_mean(name, self.named) if len(name) <= 64 else None
            known = ", ".join(sorted(self.named)[:20]) or "none are configured"
            raise PolicyNotFound("policy_not_found",
                                 f"no policy named `{name[:64]}`"
                                 + (f"; {hint}" if hint else f" (named policies: {known})"),
                                 param)
        return Chosen(policy, name, "named")

    def _model_policy(self, model: str, catalog: Catalog) -> Policy:
        key = (catalog.version, model)
        found = self._models.get(key)
        if found is not None:
            self._models.move_to_end(key)
            return found
        index = self._index_of
        if index is None or index.version != catalog.version:
            index = self._index_of = _ModelIndex.of(catalog)
        if model in index.models:
            clause: list[Any] = ["==", "model", model]
        elif model in index.ids:
            clause = ["==", "id", model]
        else:
            hint = index.suggest.hint(model) if len(model) <= 200 else None
            raise PolicyNotFound("model_not_found",
                                 f"the catalog has no model or offering `{model[:200]}`"
                                 + (f"; {hint}" if hint else ""), "model")
        policy = admit(model_policy(clause))
        self._models[key] = policy
        while len(self._models) > MODEL_POLICIES:
            self._models.popitem(last=False)
        return policy

    def names(self) -> Iterable[str]:
        return sorted(self.named)


@dataclass(frozen=True)
class _ModelIndex:
    version: str
    models: frozenset[str]
    ids: frozenset[str]
    suggest: Suggester

    @staticmethod
    def of(catalog: Catalog) -> _ModelIndex:
        models = frozenset(o.model for o in catalog.offerings)
        ids = frozenset(o.id for o in catalog.offerings)
        return _ModelIndex(catalog.version, models, ids, Suggester([*sorted(models), *sorted(ids)]))


def model_policy(clause: list[Any]) -> list[Any]:
    """The policy serving a plain model name: its offerings, cheapest estimate first."""
    return ["policy", ["ev_zero"], ["filter", clause], ["rank", ["asc", "est_cost"]],
            ["select", ["first"], ["cascade", MODEL_CASCADE]], ["mutate"], ["fallback"]]
