"""Where the clouds' offerings are called, with which credentials: AWS Bedrock, Azure OpenAI,
Azure AI Foundry and Google Vertex AI (docs/dispatch.md, "Clouds").

An offering's macro region (`eu`, `us`, `apac`, …) decides the cloud region it is called in,
so an offering the policy admitted as `eu` is never sent outside the EU:

- **Bedrock**: `BEDROCK_<REGION>_REGION` (e.g. `BEDROCK_EU_REGION=eu-west-1`), else a default
  per macro region (`BEDROCK_REGIONS`); a region with neither is not called. `global` offerings
  use `BEDROCK_GLOBAL_REGION`, `AWS_REGION` or `AWS_DEFAULT_REGION`, else us-east-1. The
  endpoint is `bedrock-runtime.<region>.amazonaws.com` unless `BEDROCK_<REGION>_BASE_URL` or
  `BEDROCK_BASE_URL` is set. Requests are signed (SigV4)
  with static keys or the standard AWS credential chain (consulted only when the process uses
  AWS, `aws_configured`); no secret leaves the process.
- **Bedrock Mantle** (`bedrock_mantle`): Bedrock's OpenAI-compatible endpoint
  `bedrock-mantle.<region>.api.aws` with a Bedrock API key (`BEDROCK_MANTLE_API_KEY`) as the
  bearer token; the region as for Bedrock (`BEDROCK_MANTLE_REGION` for `global`).
- **Azure OpenAI** (`azure`) and **Azure AI Foundry** (`azure_ai`): one resource per macro
  region, `AZURE_<REGION>_BASE_URL` with its key `AZURE_<REGION>_API_KEY` (`AZURE_BASE_URL` and
  `AZURE_API_KEY` for `global`; `AZURE_AI_…` likewise). An EU offering never falls back to the
  global resource. An overlay may give an Azure offering its own resource by naming its key
  variable (`api_key_env = "CONTOSO_API_KEY"`: called at `CONTOSO_BASE_URL`), as for any
  provider. Without a key, Entra ID tokens (`azure-identity`) are used when `AZURE_CLIENT_ID`,
  `AZURE_TENANT_ID` or `AZURE_USE_ENTRA_ID` is set.
- **Vertex AI**: project from `VERTEX_PROJECT` (or `VERTEXAI_PROJECT`, `GOOGLE_CLOUD_PROJECT`,
  else the credentials' own), location from `VERTEX_<REGION>_LOCATION`, else a default per
  macro region (`VERTEX_LOCATIONS`; `VERTEX_LOCATION` for `global` only, else the global
  endpoint), and a region with neither is not called; credentials from
  `google-auth` (application default credentials, or `GOOGLE_APPLICATION_CREDENTIALS`), looked
  up only when something says the process uses Google Cloud (`google_configured`).

`<NAME>_API_BASE` (LiteLLM's spelling) is read wherever `<NAME>_BASE_URL` is.
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.catalog.offerings import base_url_problem, normalise_base_url
from router.dispatch.providers.auth import BearerTokens, SigV4, expiry_of
from router.dispatch.providers.base import Endpoint, Secret
from router.dispatch.providers.extras import installed, missing_reason
from router.dispatch.providers.urls import same_endpoint

CLOUD_PROVIDERS = ("bedrock", "bedrock_mantle", "azure", "azure_ai", "vertex_ai")
CLOUD_EXTRAS = {"bedrock": "aws", "vertex_ai": "gcp"}  # azure's extra is needed for Entra only

BEDROCK_REGIONS = {
    "us": "us-east-1", "eu": "eu-central-1", "apac": "ap-northeast-1", "au": "ap-southeast-2",
    "jp": "ap-northeast-1", "ca": "ca-central-1", "sa": "sa-east-1", "in": "ap-south-1",
    "us-gov": "us-gov-west-1",
}
VERTEX_LOCATIONS = {"global": "global", "us": "us-central1", "eu": "europe-west4",
                    "apac": "asia-southeast1"}
AZURE_API_VERSION = "2025-04-01-preview"
AZURE_AI_API_VERSION = "2024-05-01-preview"
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


class CloudUnreachable(Exception):
    """Why a cloud offering cannot be called here (`status` is `no_key` or `unsupported`)."""

    def __init__(self, status: str, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def region_prefix(region: str) -> str:
    """`eu` → `EU`, `us-gov` → `US_GOV`: a macro region in a variable name."""
    return region.upper().replace("-", "_").replace(".", "_")


def _setting(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _base(environ: Mapping[str, str], prefix: str) -> tuple[str, str | None]:
    """The base-URL variable for `prefix` (`AZURE_EU`) and its value (`_BASE_URL`, else
    `_API_BASE`)."""
    variable = prefix + "_BASE_URL"
    return variable, _setting(environ, variable, prefix + "_API_BASE")


def _checked_url(url: str, variable: str) -> str:
    problem = base_url_problem(url)
    if problem is not None:
        raise CloudUnreachable("unsupported", f"{variable} is not a usable base URL: {problem}")
    return normalise_base_url(url)


def _own_url_refused(provider: str, own: str | None, resolved: str, variable: str) -> None:
    """An offering's own `base_url` must name the endpoint the environment configured: a
    catalog never decides where credentials go."""
    if own is None:
        return
    if not same_endpoint(own, resolved):
        raise CloudUnreachable("no_key", (
            f"its base_url `{own[:200]}` is not the `{provider}` endpoint configured for its "
            f"region ({variable}); credentials are only sent there"))


# ---------------------------------------------------------------------------------------------
# AWS Bedrock


def bedrock_region(region: str, environ: Mapping[str, str]) -> str:
    """The AWS region a catalog region's offerings are called in. A catalog region with no
    default and no setting is refused rather than sent somewhere else."""
    if region == "global":
        return _setting(environ, "BEDROCK_GLOBAL_REGION", "AWS_REGION",
                        "AWS_DEFAULT_REGION") or "us-east-1"
    variable = f"BEDROCK_{region_prefix(region)}_REGION"
    found = _setting(environ, variable) or BEDROCK_REGIONS.get(region)
    if found is None:
        raise CloudUnreachable("unsupported", f"no AWS region is known for catalog region "
                                              f"`{region}`: set {variable}")
    return found


_CHAIN_LOCK = threading.Lock()
_CHAIN: list[Any] = []  # botocore's chain, resolved once per process for os.environ


def _aws_chain() -> Any:
    """botocore's credential chain, resolved once; None when it finds nothing or its
    configuration is broken (an unknown `AWS_PROFILE`, an unreadable config file)."""
    with _CHAIN_LOCK:
        if not _CHAIN:
            import botocore.session
            try:
                found = botocore.session.get_session().get_credentials()
            except Exception:  # botocore raises many kinds; without credentials it is no_key
                found = None
            _CHAIN.append(found)
        return _CHAIN[0]


def aws_configured(environ: Mapping[str, str]) -> bool:
    """Whether anything says this process uses AWS: an `AWS_…` variable or a shared config or
    credentials file. Without one the chain is not consulted, since its last step asks the EC2
    instance metadata service and waits a second for it on every machine that is not on EC2
    (on EC2 with only an instance role, set `AWS_REGION`)."""
    if any(name.startswith("AWS_") for name in environ):
        return True
    home = Path(environ.get("HOME") or Path.home())
    return (home / ".aws" / "config").exists() or (home / ".aws" / "credentials").exists()


def aws_credentials(environ: Mapping[str, str]) -> Any:
    """Static keys from `environ`, else (for the process environment only, when it uses AWS at
    all) botocore's standard chain: profiles and shared config, SSO, web identity, container
    and instance roles. None when there are none."""
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        from botocore.credentials import Credentials
        return Credentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None)
    if environ is not os.environ:
        return None
    if _CHAIN:  # resolved once; not looked for again on every call
        return _CHAIN[0]
    return _aws_chain() if aws_configured(environ) else None


def bedrock(region: str, environ: Mapping[str, str], own_base_url: str | None,
            check_credentials: bool) -> Endpoint:
    aws_region = bedrock_region(region, environ)
    variable, url = _base(environ, f"BEDROCK_{region_prefix(region)}")
    if url is None:
        variable, url = _base(environ, "BEDROCK")
    base = _checked_url(url, variable) if url else \
        f"https://bedrock-runtime.{aws_region}.amazonaws.com"
    _own_url_refused("bedrock", own_base_url, base, variable)
    if check_credentials and aws_credentials(environ) is None:
        raise CloudUnreachable("no_key", "no AWS credentials: set AWS_ACCESS_KEY_ID and "
                                         "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    ready = bool((environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"))
                 or _CHAIN)  # no file or network to read: sign on the event loop
    signer = SigV4("bedrock", "bedrock", aws_region, lambda: aws_credentials(environ),
                   blocking=not ready)
    return Endpoint("bedrock", "bedrock", base, None, auth=signer, region=aws_region)


def bedrock_mantle(region: str, api_model: str, environ: Mapping[str, str],
                   own_base_url: str | None) -> Endpoint:
    """Bedrock's OpenAI-compatible endpoint (`bedrock-mantle.<region>.api.aws`): Claude through
    its Anthropic Messages surface (`/anthropic/v1/messages`), the rest through
    `/v1/chat/completions`, both with a Bedrock API key as the bearer token."""
    if region == "global":
        aws_region = _setting(environ, "BEDROCK_MANTLE_REGION", "AWS_REGION",
                              "AWS_DEFAULT_REGION") or "us-east-1"
    else:
        variable = f"BEDROCK_MANTLE_{region_prefix(region)}_REGION"
        found = _setting(environ, variable) or BEDROCK_REGIONS.get(region)
        if found is None:
            raise CloudUnreachable("unsupported", f"no AWS region is known for catalog region "
                                                  f"`{region}`: set {variable}")
        aws_region = found
    prefix = "BEDROCK_MANTLE" if region == "global" else f"BEDROCK_MANTLE_{region_prefix(region)}"
    variable, url = _base(environ, prefix)
    base = _checked_url(url, variable) if url else f"https://bedrock-mantle.{aws_region}.api.aws"
    _own_url_refused("bedrock_mantle", own_base_url, base, variable)
    key = environ.get("BEDROCK_MANTLE_API_KEY")
    if not key:
        raise CloudUnreachable("no_key", "no key: set BEDROCK_MANTLE_API_KEY (an Amazon Bedrock "
                                         "API key)")
    claude = api_model.startswith("anthropic.")
    return Endpoint("bedrock_mantle", "mantle_anthropic" if claude else "openai",
                    base.rstrip("/") + ("/anthropic" if claude else "/v1"), Secret(key),
                    region=aws_region)


# ---------------------------------------------------------------------------------------------
# Azure OpenAI and Azure AI Foundry


def _entra_requested(environ: Mapping[str, str]) -> bool:
    return bool(_setting(environ, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_USE_ENTRA_ID"))


@functools.cache
def _entra_tokens(provider: str) -> BearerTokens:
    """One token source per provider and process (tokens are cached inside it)."""
    def fetch() -> tuple[str, float | None]:
        from azure.identity import DefaultAzureCredential
        token = DefaultAzureCredential().get_token(AZURE_SCOPE)
        return token.token, float(token.expires_on)
    return BearerTokens(provider, "Entra ID token", fetch)


@dataclass(frozen=True)
class OwnResource:
    """An Azure offering (from an overlay) that names its key variable: the resource URL the
    environment pairs with that variable (`X_API_KEY` → `X_BASE_URL`)."""

    key_variable: str
    variable: str
    url: str | None


def azure(provider: str, region: str, api_model: str, environ: Mapping[str, str],
          own_base_url: str | None, own: OwnResource | None = None) -> Endpoint:
    name = "AZURE" if provider == "azure" else "AZURE_AI"
    prefix = name if region == "global" else f"{name}_{region_prefix(region)}"
    variable, url = _base(environ, prefix)
    key_variable = prefix + "_API_KEY"
    if own is not None:
        variable, url, key_variable = own.variable, own.url, own.key_variable
    if url is None:
        raise CloudUnreachable("no_key", (
            f"not configured: set {variable} to your {region} resource's endpoint and "
            f"{key_variable} (each Azure region is its own resource)"))
    base = _checked_url(url, variable)
    _own_url_refused(provider, own_base_url, base, variable)
    key = environ.get(key_variable)
    auth = None
    if not key:
        if not _entra_requested(environ):
            raise CloudUnreachable("no_key", f"no key: set {key_variable} (or AZURE_CLIENT_ID "
                                             f"for Entra ID)")
        if not installed("azure"):
            raise CloudUnreachable("unsupported", missing_reason(provider, "azure") +
                                   " for Entra ID; or set " + key_variable)
        auth = _entra_tokens(provider)
    default_version = AZURE_API_VERSION if provider == "azure" else AZURE_AI_API_VERSION
    version = _setting(environ, name + "_API_VERSION") or default_version
    wire = "azure"
    if provider == "azure_ai":
        wire = "anthropic" if api_model.startswith("claude") else "azure_ai"
        if wire == "anthropic":
            base = base.rstrip("/") + "/anthropic"
    return Endpoint(provider, wire, base, Secret(key) if key else None, auth=auth,
                    api_version=version)


# ---------------------------------------------------------------------------------------------
# Google Vertex AI


def vertex_location(region: str, environ: Mapping[str, str]) -> str:
    """The Vertex AI location a catalog region's offerings are called in; the general
    `VERTEX_LOCATION` applies to `global` offerings only, so it never moves a regional one."""
    variable = f"VERTEX_{region_prefix(region)}_LOCATION"
    if region == "global":
        return (_setting(environ, variable, "VERTEX_LOCATION", "VERTEXAI_LOCATION")
                or "global")
    found = _setting(environ, variable) or VERTEX_LOCATIONS.get(region)
    if found is None:
        raise CloudUnreachable("unsupported", f"no Vertex AI location is known for catalog "
                                              f"region `{region}`: set {variable}")
    return found


@dataclass(frozen=True)
class GoogleSource:
    """Google credentials (a token source over them) and the project they belong to."""

    tokens: BearerTokens
    project: str | None


def google_source(environ: Mapping[str, str]) -> GoogleSource | None:
    """The credentials Vertex AI calls are made with: a service-account file named by
    `GOOGLE_APPLICATION_CREDENTIALS` in `environ`, else (for the process environment only)
    application default credentials; None when there are none. Looked up once per source and
    process."""
    return _google_source(environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
                          environ is os.environ)


GCE_PRODUCT_NAME = Path("/sys/class/dmi/id/product_name")


def google_configured(environ: Mapping[str, str]) -> bool:
    """Whether anything says this process uses Google Cloud: a project variable, gcloud's
    application default credentials file, or a Google Compute Engine machine. Without one,
    application default credentials are not looked up (their last step pings the GCE metadata
    server, which can take seconds elsewhere)."""
    if _setting(environ, "GOOGLE_CLOUD_PROJECT", "VERTEX_PROJECT", "VERTEXAI_PROJECT",
                "CLOUDSDK_CONFIG"):
        return True
    home = Path(environ.get("HOME") or Path.home())
    if (home / ".config" / "gcloud" / "application_default_credentials.json").exists():
        return True
    try:
        return "Google" in GCE_PRODUCT_NAME.read_text("utf-8", errors="replace")[:200]
    except OSError:
        return False


@functools.cache
def _google_source(path: str | None, process_environment: bool) -> GoogleSource | None:
    creds: Any = None
    project: str | None = None
    try:
        if path:
            from google.oauth2 import service_account
            creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=[GOOGLE_SCOPE])
            project = creds.project_id
        elif process_environment and google_configured(os.environ):
            import google.auth
            creds, project = google.auth.default(scopes=[GOOGLE_SCOPE])
    except Exception:  # no ADC, an unreadable file: there are no credentials
        return None
    if creds is None:
        return None

    def fetch() -> tuple[str, float | None]:
        from google.auth.transport.requests import Request
        creds.refresh(Request())
        return str(creds.token), expiry_of(creds.expiry)
    return GoogleSource(BearerTokens("vertex_ai", "Google access token", fetch), project)


def vertex_wire(api_model: str) -> str:
    """Claude → Anthropic Messages through `rawPredict`; Mistral and AI21 → their publisher's
    `rawPredict` (OpenAI-shaped bodies); Gemini and the open models → the OpenAI-compatible
    endpoint."""
    if api_model.startswith("claude"):
        return "vertex_anthropic"
    if api_model.startswith(("mistral", "codestral", "jamba")):
        return "vertex_publisher"
    return "vertex_openai"


def vertex(region: str, api_model: str, environ: Mapping[str, str],
           own_base_url: str | None) -> Endpoint:
    location = vertex_location(region, environ)
    variable, url = _base(environ, "VERTEX")
    if url:
        base = _checked_url(url, variable)
    elif location == "global":
        base = "https://aiplatform.googleapis.com"
    else:
        base = f"https://{location}-aiplatform.googleapis.com"
    _own_url_refused("vertex_ai", own_base_url, base, variable)
    source = google_source(environ)
    if source is None:
        raise CloudUnreachable("no_key", "no Google credentials: set "
                                         "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth "
                                         "application-default login`")
    project = _setting(environ, "VERTEX_PROJECT", "VERTEXAI_PROJECT",
                       "GOOGLE_CLOUD_PROJECT") or source.project
    if project is None:
        raise CloudUnreachable("no_key", "no project: set VERTEX_PROJECT")
    return Endpoint("vertex_ai", vertex_wire(api_model), base, None, auth=source.tokens,
                    region=location, project=project)


def vertex_path(endpoint: Endpoint, tail: str) -> str:
    """`{base}/v1/projects/{project}/locations/{location}/{tail}`."""
    project = urllib.parse.quote(endpoint.project or "", safe="")
    location = urllib.parse.quote(endpoint.region or "global", safe="")
    return endpoint.url(f"/v1/projects/{project}/locations/{location}/{tail}")


def resolve_cloud(provider: str, region: str, api_model: str, environ: Mapping[str, str],
                  own_base_url: str | None, check_credentials: bool = True,
                  own: OwnResource | None = None) -> Endpoint:
    """The endpoint of a cloud offering; raises `CloudUnreachable`. `own` (Azure only) is the
    resource an offering's `api_key_env` names."""
    extra = CLOUD_EXTRAS.get(provider)
    if extra is not None and not installed(extra):
        raise CloudUnreachable("unsupported", missing_reason(provider, extra))
    if provider == "bedrock":
        return bedrock(region, environ, own_base_url, check_credentials)
    if provider == "bedrock_mantle":
        return bedrock_mantle(region, api_model, environ, own_base_url)
    if provider in ("azure", "azure_ai"):
        return azure(provider, region, api_model, environ, own_base_url, own)
    return vertex(region, api_model, environ, own_base_url)
