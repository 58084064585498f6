"""Admitted policies memoised by their exact text, so that a service sending the same inline
policy with every request admits it once. A refused policy is never memoised."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from router.policy.admit import admit, admit_text
from router.policy.terms import Policy

PolicyInput = Policy | str | bytes | list[Any]


class AdmittedPolicies:
    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._found: OrderedDict[tuple[str, str | bytes], Policy] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, policy: PolicyInput) -> Policy:
        """Admit a policy (a `Policy` passes through); raises `PolicyError` when refused."""
        if isinstance(policy, Policy):
            return policy
        key = ("text", policy) if isinstance(policy, str | bytes) else _text_key(policy)
        if key is not None:
            with self._lock:
                found = self._found.get(key)
                if found is not None:
                    self._found.move_to_end(key)
                    return found
        admitted = admit_text(policy) if isinstance(policy, str | bytes) else admit(policy)
        if key is not None:
            with self._lock:
                self._found[key] = admitted
                while len(self._found) > self.capacity:
                    self._found.popitem(last=False)
        return admitted


def _text_key(term: object) -> tuple[str, str] | None:
    """An exact JSON text of a parsed policy, or None when it is not plain JSON data."""
    try:
        return ("term", json.dumps(term, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None
