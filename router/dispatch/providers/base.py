"""The one small protocol every provider adapter implements, and the values it exchanges.

An adapter turns a `ProviderCall` (an OpenAI chat-completions body, already mutated for the hop,
with the provider's model name) into an OpenAI `chat.completion` object or a stream of
`chat.completion.chunk` objects, and raises `UpstreamFailure` for every failure. A stream is
also offered in batches (`stream_batches`): the chunks that arrived together, in one list, so
that what a provider sent in one packet goes up the dispatcher and out to the caller in one
step instead of one step per chunk. Adding a provider
is one module implementing `Provider` plus one line in `router.dispatch.providers.registry`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

if TYPE_CHECKING:
    from router.dispatch.providers.auth import Auth


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
    auth: Auth | None = None  # a signer or token source, for the clouds (`providers.auth`)
    region: str | None = None  # the cloud region called (Bedrock, Vertex AI)
    api_version: str | None = None  # Azure's `api-version`
    project: str | None = None  # Vertex AI's project

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    async def authenticated(self, method: str, url: str, headers: dict[str, str],
                            body: bytes) -> dict[str, str]:
        """`headers` with this endpoint's `auth` applied (unchanged without one)."""
        if self.auth is None:
            return headers
        return await self.auth.headers(method, url, headers, body)


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

    def stream_batches(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> AsyncIterator[Batch]:
        """`stream`'s chunks in batches: those that arrived together, in order, in one list
        (never empty). A failure is raised after the chunks before it were yielded."""
        ...

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        """The model ids this key may use, from the provider's model-listing endpoint."""
        ...


Batch = list[dict[str, Any]]


async def one_by_one(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Batch]:
    """Each chunk a batch of its own: `stream_batches` for an adapter that does not batch."""
    try:
        async for chunk in chunks:
            yield [chunk]
    finally:
        await close_iterator(chunks)


async def unbatched(batches: AsyncIterator[Batch]) -> AsyncIterator[dict[str, Any]]:
    """The chunks of `batches` one by one: `stream` for an adapter that batches."""
    try:
        async for batch in batches:
            for chunk in batch:
                yield chunk
    finally:
        await close_iterator(batches)


async def close_iterator(it: AsyncIterator[Any]) -> None:
    """Close an async iterator that can be closed (a generator: its `finally` runs now, which
    gives the provider's connection back at once, not when it is collected)."""
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()
