"""The optional extras that cloud adapters need, and whether this installation has them.

| extra   | installs         | needed by                                     |
|---------|------------------|-----------------------------------------------|
| `aws`   | `botocore`       | `bedrock` (SigV4 signing, credential chain)   |
| `gcp`   | `google-auth`    | `vertex_ai` (application default credentials) |
| `azure` | `azure-identity` | `azure`, `azure_ai` with Entra ID (keys need nothing) |

Whether an extra is installed is a static fact of the installation: it is checked once, by
looking for the module (never importing it).
"""

from __future__ import annotations

import functools
import importlib.util

EXTRA_MODULES = {"aws": "botocore", "gcp": "google.auth", "azure": "azure.identity"}


@functools.cache
def installed(extra: str) -> bool:
    """Whether `extra`'s module can be imported here."""
    module = EXTRA_MODULES[extra]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing (`google`, `azure`)
        return False


def missing_reason(provider: str, extra: str) -> str:
    """The reason an offering cannot be called without `extra`."""
    return (f"`{provider}` needs the `{extra}` extra: pip install 'unhardcoded[{extra}]' "
            f"(installs {EXTRA_MODULES[extra].replace('.', '-')})")
