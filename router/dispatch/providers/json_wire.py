"""What the JSON-over-HTTP adapters share: a call is a URL (`url`), headers (`headers`, by
default the endpoint's key headers) and a JSON body (`prepared`); `request` puts them together
and applies the endpoint's `auth` (a signature covers the exact bytes sent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.dispatch.providers.base import Batch, Endpoint, ProviderCall, one_by_one
from router.dispatch.providers.http import dumps


class JsonWire:
    def stream(self, client: httpx.AsyncClient, call: ProviderCall,
               now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    def stream_batches(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> AsyncIterator[Batch]:
        """`stream`, each chunk a batch of its own (an adapter that batches overrides this)."""
        return one_by_one(self.stream(client, call, now))

    def url(self, call: ProviderCall, stream: bool) -> str:
        raise NotImplementedError

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        raise NotImplementedError

    def headers(self, endpoint: Endpoint, stream: bool) -> dict[str, str]:
        return self.key_headers(endpoint)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    async def request(self, call: ProviderCall, stream: bool
                      ) -> tuple[str, bytes, dict[str, str]]:
        """The URL, the body's bytes and the headers (authenticated) of one call."""
        ep = call.endpoint
        url = self.url(call, stream)
        content = dumps(self.prepared(call, stream))
        return url, content, await ep.authenticated("POST", url, self.headers(ep, stream),
                                                    content)
