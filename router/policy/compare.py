"""The six comparison operators of the policy language (spec §4), in one table each: what they
compute, their negation, their mirror image, and their non-strict form."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
# not (a OP b)  ≡  a NEGATE[OP] b
NEGATE: dict[str, str] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
# a OP b  ≡  b FLIP[OP] a
FLIP: dict[str, str] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# the same bound, inclusive
INCLUSIVE: dict[str, str] = {"<": "<=", ">": ">=", "<=": "<=", ">=": ">=", "==": "==", "!=": "!="}
