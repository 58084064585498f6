"""The one small protocol every provider adapter implements, and the values it exchanges.

An adapter turns a `ProviderCall` (an OpenAI chat-completions body, already mutated for the hop,
with the provider's model name) into an OpenAI `chat.completion` object or a stream of
`chat.completion.chunk` objects, and raises `UpstreamFailure` for every failure. Adding a provider
is one module implementing `Provider` plus one line in `router.dispatch.providers.registry`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


class Secret:
    """A provider key: never printed, never serialised."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Endpoint:
    """Where and with which key a provider is called."""

    provider: str
    wire: str
    base_url: str
    api_key: Secret | None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


@dataclass(frozen=True)
class ProviderCall:
    offering_id: str
    api_model: str
    body: dict[str, Any]  # OpenAI chat-completions body for this hop (model = api_model)
    endpoint: Endpoint
    timeout_s: float


class Provider(Protocol):
    """One wire format. Implementations raise `router.dispatch.failures.UpstreamFailure` on
    failure."""

    wire: str

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        """A non-streaming call; returns an OpenAI `chat.completion` object."""
        ...

    def stream(self, client: httpx.AsyncClient, call: ProviderCall,
               now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        """A streaming call; yields OpenAI `chat.completion.chunk` objects (usage chunk last)."""
        ...

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        """The model ids this key may use, from the provider's model-listing endpoint."""
        ...
