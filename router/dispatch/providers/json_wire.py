"""What the JSON-over-HTTP adapters share: a call is a URL (`url`), headers (`headers`, by
default the endpoint's key headers) and a JSON body (`prepared`); `request` puts them together
and applies the endpoint's `auth` (a signature covers the exact bytes sent)."""

from __future__ import annotations

from typing import Any

from router.dispatch.providers.base import Endpoint, ProviderCall
from router.dispatch.providers.http import dumps


class JsonWire:
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
