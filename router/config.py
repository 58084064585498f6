"""`RouterConfig`: everything that shapes how a router behaves, in one frozen value.

Its settings (breaker, dispatch, connection pool, proxies, where derivations run) are hashed;
the hash goes into every decision record as `config_hash`, so two records that differ in
behaviour say so. The injected seams — environment, clock, trace ids, sleep, jitter, timer —
are part of the value but not of the hash: the environment holds keys, which never enter a
record, and the seams are for tests and replays (the record carries the time it used).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from router.dispatch.dispatcher import DispatchSettings
from router.dispatch.pool import DEFAULT_SHARDS
from router.live.health import BreakerSettings
from router.records.location import Records, RecordsSetting

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_trace_id() -> str:
    """32 random hex digits (128 bits from the OS, as `uuid4` but without its object)."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class RouterConfig:
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    max_connections: int = 1000
    pool_shards: int = DEFAULT_SHARDS
    trust_env: bool = False  # True: honour HTTP(S)_PROXY / NO_PROXY from the process env
    derive_in_processes: bool = True  # False: derive on one thread of this process
    derive_timeout_s: float = 60.0  # per derivation in a worker process; then stopped
    # Where decisions are recorded (docs/records.md): a SQLite file, None for no recording,
    # or the environment's choice (`UNHARDCODED_RECORDS`, else the user's data directory).
    # Not hashed: where records go does not change a decision.
    records: RecordsSetting = field(default=Records.FROM_ENVIRONMENT, compare=False)
    store_content: bool = field(default=False, compare=False)  # also store message content
    # True: a decision that cannot be recorded is not served (`RecordsError` records.not_stored;
    # for complete/stream, after the call). False (default): a failing store is logged, counted.
    records_required: bool = field(default=False, compare=False)
    # Injected seams (not hashed). `environ`: keys and `<PROVIDER>_BASE_URL`; None reads a
    # snapshot of `os.environ` when the router is made.
    environ: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    clock: Clock = field(default=utc_now, compare=False, repr=False)
    trace_ids: Callable[[], str] = field(default=new_trace_id, compare=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False,
                                                      repr=False)
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    timer: Callable[[], float] = field(default=time.perf_counter, compare=False, repr=False)

    def settings(self) -> dict[str, Any]:
        """The hashed part, as JSON data."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.compare}

    @cached_property
    def hash(self) -> str:
        text = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
