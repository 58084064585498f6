"""How a request to a cloud provider is authenticated when a static key header is not enough:
AWS SigV4 signatures (Bedrock) and short-lived bearer tokens (Vertex AI, Azure Entra ID).

An `Auth` adds headers to one request, given its method, URL and body. Nothing here prints a
secret: the objects' `repr` names the method only, and a failure to obtain credentials raises
`UpstreamFailure` with the credential source's exception *type*, never its message (which may
quote a token or a file's content).

The cloud SDK pieces (`botocore`, `google-auth`, `azure-identity`) are imported only inside the
functions that need them, so an installation without an extra never imports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from router.dispatch.failures import UpstreamFailure

TOKEN_REFRESH_MARGIN_S = 300.0  # a bearer token is renewed this long before it expires


def _no_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


def quiet_signer_log() -> None:
    """botocore's signer logs the canonical request (signed headers, the session token among
    them), the string to sign and the signature at DEBUG: drop its DEBUG records, so that
    turning on debug logging never writes a credential or a signature."""
    logger = logging.getLogger("botocore.auth")
    if _no_debug not in logger.filters:
        logger.addFilter(_no_debug)


class Auth(Protocol):
    """Adds the authentication headers of one request."""

    async def headers(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> dict[str, str]:
        """`headers` plus what authenticates this request."""
        ...


def _credentials_failure(provider: str, what: str, exc: BaseException | None) -> UpstreamFailure:
    cause = f" ({type(exc).__name__})" if exc is not None else ""
    return UpstreamFailure("error", f"{provider}: no {what}{cause}")


class SigV4:
    """AWS Signature Version 4 through botocore's signer. `credentials` is a botocore
    credential provider result (refreshable credentials refresh themselves); `resolve` is
    called once, on first use, when the credentials come from botocore's chain."""

    def __init__(self, provider: str, service: str, region: str,
                 resolve: Callable[[], Any], blocking: bool = True) -> None:
        self.provider = provider
        self.service = service
        self.region = region
        self._resolve = resolve
        self._blocking = blocking  # whether resolving may read files or the network
        self._credentials: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SigV4({self.service}, {self.region})"

    def _frozen(self) -> Any:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._resolve()
            creds = self._credentials
        if creds is None:
            return None
        return creds.get_frozen_credentials()  # refreshable credentials refresh here

    def sign(self, method: str, url: str, headers: Mapping[str, str],
             body: bytes) -> dict[str, str]:
        """The signed headers (blocking only when credentials must be resolved or
        refreshed)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        quiet_signer_log()
        failure: UpstreamFailure | None = None
        creds: Any = None
        try:
            creds = self._frozen()
        except Exception as exc:  # botocore's chain raises many kinds; the type is enough
            failure = _credentials_failure(self.provider, "AWS credentials", exc)
        if failure is not None:
            raise failure
        if creds is None:
            raise _credentials_failure(self.provider, "AWS credentials", None)
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(creds, self.service, self.region).add_auth(request)
        return dict(request.headers.items())

    async def headers(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> dict[str, str]:
        if self._credentials is None and self._blocking:
            return await asyncio.to_thread(self.sign, method, url, headers, body)
        return self.sign(method, url, headers, body)


class BearerTokens:
    """A bearer token from `fetch` (returns the token and its expiry as a UNIX time, or None
    when unknown), cached until `TOKEN_REFRESH_MARGIN_S` before it expires. `fetch` blocks (it
    may call a token endpoint), so it runs in a thread; one refresh at a time."""

    def __init__(self, provider: str, what: str,
                 fetch: Callable[[], tuple[str, float | None]],
                 clock: Callable[[], float] = time.time, header: str = "authorization") -> None:
        self.provider = provider
        self.what = what
        self._fetch = fetch
        self._clock = clock
        self._header = header
        self._token: tuple[str, float | None] | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BearerTokens({self.what})"

    def _fresh(self) -> str | None:
        token = self._token
        if token is None:
            return None
        value, expiry = token
        if expiry is not None and self._clock() > expiry - TOKEN_REFRESH_MARGIN_S:
            return None
        return value

    async def token(self) -> str:
        value = self._fresh()
        if value is not None:
            return value
        async with self._lock:
            value = self._fresh()
            if value is not None:
                return value
            failure: UpstreamFailure | None = None
            try:
                self._token = await asyncio.to_thread(self._fetch)
            except Exception as exc:  # the SDKs raise many kinds; the type is enough
                failure = _credentials_failure(self.provider, self.what, exc)
            if failure is not None:
                raise failure
            assert self._token is not None
            return self._token[0]

    async def headers(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> dict[str, str]:
        return {**headers, self._header: "Bearer " + await self.token()}


def expiry_of(when: dt.datetime | None) -> float | None:
    """A token expiry as UNIX time; the SDKs give naive datetimes in UTC."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
