"""What `unhardcoded serve` was asked for, as one frozen value that travels to worker processes
as JSON (in the environment: uvicorn starts each worker from an import string)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass
from typing import Any

from router.request.features import MAX_REQUEST_BYTES

ENVIRONMENT = "UNHARDCODED_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    policies: str | None = None  # directory of NAME.json policy files
    catalog: str | None = None  # None: the embedded catalog
    overlays: tuple[str, ...] = ()
    records: str | None = None  # a SQLite path or PostgreSQL DSN; None: the environment's
    record: bool = True  # False: no recording (`--no-record`)
    store_content: bool = False
    keys: str | None = None  # caller keys file; None: no authentication (loopback only)
    workers: int = 1
    max_body_bytes: int = MAX_REQUEST_BYTES
    body_timeout_s: float = 30.0  # a request body must arrive within this
    graceful_s: float = 30.0  # on SIGTERM, in-flight requests get this long to finish
    watch_s: float | None = None  # poll the policies, catalog and overlay files
    max_concurrency: int | None = None  # past this many open connections: 503
    log_level: str = "info"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @staticmethod
    def from_json(text: str) -> ServiceSettings:
        values: dict[str, Any] = json.loads(text)
        values["overlays"] = tuple(values.get("overlays", ()))
        return ServiceSettings(**values)

    @staticmethod
    def from_environment() -> ServiceSettings:
        text = os.environ.get(ENVIRONMENT)
        return ServiceSettings.from_json(text) if text else ServiceSettings()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
