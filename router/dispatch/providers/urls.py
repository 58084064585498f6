"""Whether two base URLs name the same endpoint (the trust model's one comparison)."""

from __future__ import annotations

import urllib.parse


def same_endpoint(a: str, b: str | None) -> bool:
    """Whether two base URLs name the same endpoint: scheme, host, port and path, ignoring the
    case of scheme and host, a default port and a trailing `/`."""
    if b is None:
        return False
    key = _endpoint_key(a)
    return key is not None and key == _endpoint_key(b)


def _endpoint_key(url: str) -> tuple[str, str, int, str] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return None
    if port is None or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port, parts.path.rstrip("/")
