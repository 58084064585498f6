"""Which adapter calls which provider, where, and with which key.

Keys and base URLs come from an environment mapping (the process environment by default):
`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, … and `<PROVIDER>_BASE_URL` (e.g. `OPENAI_BASE_URL`,
`ANTHROPIC_BASE_URL`, `VLLM_BASE_URL`) to point a provider somewhere else. An offering's own
`base_url` (a private deployment from an overlay) wins over both.

Trust model: catalogs and overlays are data that people share and import, so no catalog field
decides where a key goes. A key goes only to the URL the *environment* pairs with it:

- a provider's key variables (`OPENAI_API_KEY`, …) to that provider's endpoint:
  `<PROVIDER>_BASE_URL` when set, else the adapter's default;
- any other `X_API_KEY` (named by an offering's `api_key_env`) to `X_BASE_URL`, and nowhere
  else (there is no default).

An offering whose `base_url` is not the endpoint its key is paired with is called without a
key when its provider needs none (vLLM, Ollama, …) and is `no_key` otherwise, with a reason
that says how to name a key for it.

The clouds (Bedrock, Azure OpenAI and AI Foundry, Vertex AI) are resolved per region by
`router.dispatch.providers.clouds`, with their own credentials; `static_unreachable` says which
providers this installation cannot call at all (no adapter, or its extra not installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from router.catalog.offerings import base_url_problem, normalise_base_url
from router.dispatch.providers.anthropic import AnthropicMessages, MantleAnthropic
from router.dispatch.providers.azure import AzureAIModels, AzureOpenAI
from router.dispatch.providers.base import Endpoint, Provider, Secret
from router.dispatch.providers.bedrock import BedrockConverse
from router.dispatch.providers.clouds import (
    CLOUD_EXTRAS,
    CLOUD_PROVIDERS,
    CloudUnreachable,
    OwnResource,
    resolve_cloud,
)
from router.dispatch.providers.extras import installed, missing_reason
from router.dispatch.providers.openai_compat import OpenAICompatible
from router.dispatch.providers.urls import same_endpoint
from router.dispatch.providers.vertex import VertexAnthropic, VertexOpenAI, VertexPublisher


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    wire: str  # "openai" | "anthropic"
    base_url: str | None  # None: must be configured (`<PROVIDER>_BASE_URL` or the offering's)
    key_vars: tuple[str, ...]
    key_required: bool = True
    base_hint: str | None = None  # what `<PROVIDER>_BASE_URL` looks like, when it has no default


def _spec(name: str, wire: str, base_url: str | None, *key_vars: str,
          key_required: bool = True, hint: str | None = None) -> ProviderSpec:
    return ProviderSpec(name, wire, base_url, key_vars, key_required, hint)


SPECS: dict[str, ProviderSpec] = {s.name: s for s in (
    _spec("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    _spec("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    _spec("gemini", "openai", "https://generativelanguage.googleapis.com/v1beta/openai",
          "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    _spec("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    _spec("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    _spec("xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _spec("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    _spec("together_ai", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
          "TOGETHERAI_API_KEY"),
    _spec("openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    _spec("fireworks_ai", "openai", "https://api.fireworks.ai/inference/v1",
          "FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
    _spec("cerebras", "openai", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    _spec("deepinfra", "openai", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
    _spec("perplexity", "openai", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY",
          "PERPLEXITY_API_KEY"),
    _spec("vllm", "openai", None, "VLLM_API_KEY", key_required=False),
    _spec("hosted_vllm", "openai", None, "HOSTED_VLLM_API_KEY", key_required=False),
    _spec("ollama", "openai", None, "OLLAMA_API_KEY", key_required=False),
    _spec("lm_studio", "openai", None, "LM_STUDIO_API_KEY", key_required=False),
    # The OpenAI-compatible long tail: default base URLs and key variables from models.dev's
    # provider files and LiteLLM 1.110.2 (docs/dispatch.md, "The OpenAI-compatible long tail").
    _spec("abliteration", "openai", "https://api.abliteration.ai/v1",
          "ABLITERATION_API_KEY", "ABLIT_KEY"),
    _spec("ai21", "openai", "https://api.ai21.com/studio/v1", "AI21_API_KEY"),
    _spec("aiand", "openai", "https://api.aiand.com/v1", "AIAND_API_KEY"),
    _spec("aihubmix", "openai", "https://aihubmix.com/v1", "AIHUBMIX_API_KEY"),
    _spec("amazon_nova", "openai", "https://api.nova.amazon.com/v1",
          "AMAZON_NOVA_API_KEY", "NOVA_API_KEY"),
    _spec("baseten", "openai", "https://inference.baseten.co/v1", "BASETEN_API_KEY"),
    _spec("bigmodel", "openai", "https://open.bigmodel.cn/api/paas/v4", "BIGMODEL_API_KEY"),
    _spec("clf_ai_gateway", "openai", "https://api.clfaigateway.dev/v1", "CLF_AI_GATEWAY_API_KEY"),
    _spec("cloudflare", "openai", None, "CLOUDFLARE_API_KEY",
          hint="https://api.cloudflare.com/client/v4/accounts/<account id>/ai/v1"),
    _spec("codestral", "openai", "https://codestral.mistral.ai/v1", "CODESTRAL_API_KEY"),
    _spec("cognition", "openai", "https://api.cognition.ai/v1", "COGNITION_API_KEY"),
    _spec("cohere", "openai", "https://api.cohere.ai/compatibility/v1",
          "COHERE_API_KEY", "CO_API_KEY"),
    _spec("coralbricks", "openai", "https://inference.coralbricks.ai/v1", "CORALBRICKS_API_KEY"),
    _spec("crusoe", "openai", "https://api.inference.crusoecloud.com/v1", "CRUSOE_API_KEY"),
    _spec("darkbloom", "openai", "https://api.darkbloom.dev/v1", "DARKBLOOM_API_KEY"),
    _spec("dashscope", "openai", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
          "DASHSCOPE_API_KEY"),
    _spec("databricks", "openai", None, "DATABRICKS_API_KEY", "DATABRICKS_TOKEN",
          hint="https://<workspace>.cloud.databricks.com/serving-endpoints"),
    _spec("empiriolabs", "openai", "https://api.empiriolabs.ai/v1", "EMPIRIOLABS_API_KEY"),
    _spec("featherless_ai", "openai", "https://api.featherless.ai/v1",
          "FEATHERLESS_AI_API_KEY", "FEATHERLESS_API_KEY"),
    _spec("friendliai", "openai", "https://api.friendli.ai/serverless/v1",
          "FRIENDLIAI_API_KEY", "FRIENDLI_TOKEN"),
    _spec("gmi", "openai", "https://api.gmi-serving.com/v1", "GMI_API_KEY", "GMICLOUD_API_KEY"),
    _spec("gradient_ai", "openai", "https://inference.do-ai.run/v1", "GRADIENT_AI_API_KEY"),
    _spec("heroku", "openai", "https://us.inference.heroku.com/v1",
          "HEROKU_API_KEY", "INFERENCE_KEY"),
    _spec("hostinger_router", "openai", "https://router.hostinger.com/v1",
          "HOSTINGER_ROUTER_API_KEY"),
    _spec("hyperbolic", "openai", "https://api.hyperbolic.xyz/v1", "HYPERBOLIC_API_KEY"),
    _spec("inception", "openai", "https://api.inceptionlabs.ai/v1", "INCEPTION_API_KEY"),
    _spec("inferenceapis", "openai", "https://api.inferenceapis.com/v1", "INFERENCEAPIS_API_KEY"),
    _spec("kyma", "openai", "https://kymaapi.com/v1", "KYMA_API_KEY"),
    _spec("lambda_ai", "openai", "https://api.lambda.ai/v1", "LAMBDA_API_KEY"),
    _spec("lemonade", "openai", None, "LEMONADE_API_KEY", key_required=False),
    _spec("libertai", "openai", "https://api.libertai.io/v1", "LIBERTAI_API_KEY"),
    _spec("llamagate", "openai", "https://api.llamagate.dev/v1", "LLAMAGATE_API_KEY"),
    _spec("meta", "openai", "https://api.meta.ai/v1", "META_API_KEY"),
    _spec("meta_llama", "openai", "https://api.llama.com/compat/v1", "LLAMA_API_KEY"),
    _spec("minimax", "openai", "https://api.minimax.io/v1", "MINIMAX_API_KEY"),
    _spec("moonshot", "openai", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
    _spec("morph", "openai", "https://api.morphllm.com/v1", "MORPH_API_KEY"),
    _spec("nebius", "openai", "https://api.tokenfactory.nebius.com/v1", "NEBIUS_API_KEY"),
    _spec("novita", "openai", "https://api.novita.ai/openai", "NOVITA_API_KEY"),
    _spec("nscale", "openai", "https://inference.api.nscale.com/v1", "NSCALE_API_KEY"),
    _spec("opencode_go", "openai", "https://opencode.ai/zen/go/v1",
          "OPENCODE_GO_API_KEY", "OPENCODE_API_KEY"),
    _spec("openinfer", "openai", "https://api.openinfer.ai/v1", "OPENINFER_API_KEY"),
    _spec("ovhcloud", "openai", "https://oai.endpoints.kepler.ai.cloud.ovh.net/v1",
          "OVHCLOUD_API_KEY"),
    _spec("pinstripes", "openai", "https://pinstripes.io/v1", "PINSTRIPES_API_KEY"),
    _spec("prism", "openai", "https://api.prisminference.com/v1", "PRISM_API_KEY"),
    _spec("publicai", "openai", "https://api.publicai.co/v1", "PUBLICAI_API_KEY"),
    _spec("qwen_ai_platform", "openai", "https://dashscope.aliyuncs.com/compatible-mode/v1",
          "QWEN_AI_PLATFORM_API_KEY"),
    _spec("qwencloud", "openai", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
          "QWENCLOUD_API_KEY"),
    _spec("refuseless", "openai", "https://api.refuseless.com/v1", "REFUSELESS_API_KEY"),
    _spec("sail", "openai", "https://api.sailresearch.com/v1", "SAIL_API_KEY"),
    _spec("sambanova", "openai", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
    _spec("sarvam", "openai", "https://api.sarvam.ai/v1", "SARVAM_API_KEY"),
    _spec("scaleway", "openai", "https://api.scaleway.ai/v1", "SCW_SECRET_KEY", "SCALEWAY_API_KEY"),
    _spec("scx-ai", "openai", "https://api.scx.ai/v1", "SCX_API_KEY"),
    _spec("snowflake", "openai", None, "SNOWFLAKE_JWT", "SNOWFLAKE_CORTEX_PAT",
          hint="https://<account>.snowflakecomputing.com/api/v2/cortex/v1"),
    _spec("streamlake", "openai", "https://vanchin.streamlake.ai/api/gateway/v1/endpoints",
          "STREAMLAKE_API_KEY"),
    _spec("tencent", "openai", "https://tokenhub-intl.tencentcloudmaas.com/v1", "TENCENT_API_KEY"),
    _spec("tensormesh", "openai", "https://serverless.tensormesh.ai/v1",
          "TENSORMESH_INFERENCE_API_KEY"),
    _spec("v0", "openai", "https://api.v0.dev/v1", "V0_API_KEY"),
    _spec("vercel_ai_gateway", "openai", "https://ai-gateway.vercel.sh/v1",
          "VERCEL_AI_GATEWAY_API_KEY", "AI_GATEWAY_API_KEY"),
    _spec("volcengine", "openai", "https://ark.cn-beijing.volces.com/api/v3",
          "VOLCENGINE_API_KEY", "ARK_API_KEY"),
    _spec("wally", "openai", "https://inference.runanywhere.ai/v1", "WALLY_API_KEY"),
    _spec("wandb", "openai", "https://api.inference.wandb.ai/v1", "WANDB_API_KEY"),
    _spec("xiaomi_mimo", "openai", "https://api.xiaomimimo.com/v1",
          "XIAOMI_MIMO_API_KEY", "XIAOMI_API_KEY"),
    _spec("zai", "openai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY", "ZHIPU_API_KEY"),
    _spec("zerogpu", "openai", "https://api.zerogpu.ai/v1", "ZEROGPU_API_KEY"),
)}

ADAPTERS: dict[str, Provider] = {a.wire: a for a in (
    OpenAICompatible(), AnthropicMessages(), BedrockConverse(), AzureOpenAI(), AzureAIModels(),
    VertexOpenAI(), VertexAnthropic(), VertexPublisher(), MantleAnthropic(),
)}


def static_unreachable(provider: str) -> Unreachable | None:
    """Why no offering of `provider` can be called by this installation, whatever the
    environment: no adapter, or its adapter's extra is not installed. None when it can be."""
    if provider in CLOUD_PROVIDERS:
        extra = CLOUD_EXTRAS.get(provider)
        if extra is not None and not installed(extra):
            return Unreachable("unsupported", missing_reason(provider, extra))
        return None
    if provider not in SPECS:
        return Unreachable("unsupported", f"no adapter for provider `{provider}` in this router")
    return None

def env_prefix(provider: str) -> str:
    return provider.upper().replace("-", "_").replace(".", "_")


def base_url_variable(provider: str) -> str:
    return env_prefix(provider) + "_BASE_URL"


@dataclass(frozen=True)
class Unreachable:
    """Why an offering cannot be called: a live status and one human line."""

    status: str  # "no_key" | "unsupported"
    reason: str


@dataclass(frozen=True)
class KeyDestination:
    """Where the environment lets one key variable's value go."""

    variable: str  # the `..._BASE_URL` variable that names it
    url: str | None  # None: not configured (no variable set, no default)
    default: bool = False  # `url` is the adapter's default (the variable is not set)


def key_destination(key_variable: str, environ: Mapping[str, str]) -> KeyDestination:
    """The one URL `key_variable`'s value may be sent to: a provider's own key variable goes to
    that provider's endpoint (`<PROVIDER>_BASE_URL`, else its default), any other `X_API_KEY`
    to `X_BASE_URL`."""
    for spec in SPECS.values():
        if key_variable in spec.key_vars:
            variable = base_url_variable(spec.name)
            configured = environ.get(variable)
            if configured:
                return KeyDestination(variable, configured)
            return KeyDestination(variable, spec.base_url, default=spec.base_url is not None)
    variable = key_variable.removesuffix("_API_KEY") + "_BASE_URL"
    return KeyDestination(variable, environ.get(variable) or None)


def resolve(provider: str, environ: Mapping[str, str], offering_base_url: str | None = None,
            api_key_env: str | None = None, *, region: str = "global", api_model: str = "",
            check_credentials: bool = True) -> Endpoint | Unreachable:
    """The endpoint to call a provider at and the key to send there, or why it cannot be
    called. `offering_base_url`, `api_key_env`, `region` and `api_model` are the offering's
    own fields (the clouds' endpoints depend on the region, and some on the model)."""
    if provider in CLOUD_PROVIDERS:
        own = None
        if api_key_env is not None:
            if provider not in ("azure", "azure_ai"):
                return Unreachable("unsupported", f"`{provider}` offerings take their "
                                                  "credentials from the cloud's own settings, "
                                                  "not api_key_env")
            destination = key_destination(api_key_env, environ)
            own = OwnResource(api_key_env, destination.variable, destination.url)
        try:
            return resolve_cloud(provider, region, api_model, environ, offering_base_url,
                                 check_credentials, own)
        except CloudUnreachable as exc:
            return Unreachable(exc.status, exc.reason)
    spec = SPECS.get(provider)
    if spec is None:
        return Unreachable("unsupported", f"no adapter for provider `{provider}` in this router")
    if api_key_env is not None:
        return _own_key(spec, environ, offering_base_url, api_key_env)
    variable = base_url_variable(provider)
    destination = key_destination(spec.key_vars[0], environ)
    if offering_base_url is None or same_endpoint(offering_base_url, destination.url):
        key = next((environ[v] for v in spec.key_vars if environ.get(v)), None)
        if key is None and spec.key_required:
            return Unreachable("no_key", "no key: set " + " or ".join(spec.key_vars))
        base = offering_base_url or destination.url
        if not base:  # a local runtime or an account's own endpoint: configured, or not called
            if spec.base_hint is not None:
                return Unreachable("no_key", f"not configured: set {variable} "
                                             f"(`{spec.base_hint}`)")
            return Unreachable("no_key", f"not configured: set {variable} "
                                         f"(`{provider}` runs where you run it; it needs no key)")
        return _endpoint(spec, base, key, "its base_url" if offering_base_url else variable)
    problem = base_url_problem(offering_base_url)
    if problem is not None:
        return Unreachable("unsupported", f"its base_url is refused: {problem}")
    if spec.key_required:
        return Unreachable("no_key", (
            f"no key for its base_url `{offering_base_url[:200]}`: "
            f"{' or '.join(spec.key_vars)} is only sent to {_described(destination)}; name "
            f"this deployment's own key variable in the offering's `api_key_env`"))
    return _endpoint(spec, offering_base_url, None, "its base_url")


def _own_key(spec: ProviderSpec, environ: Mapping[str, str], offering_base_url: str | None,
             api_key_env: str) -> Endpoint | Unreachable:
    """An offering that names its key variable: called at the URL the environment pairs with
    that variable (its own `base_url` must be that URL), with that key."""
    destination = key_destination(api_key_env, environ)
    if destination.url is None:
        return Unreachable("no_key", f"not configured: set {destination.variable} to the URL "
                                     f"that `{api_key_env}` may be sent to")
    if offering_base_url is not None and not same_endpoint(offering_base_url, destination.url):
        return Unreachable("no_key", (
            f"no key for its base_url `{offering_base_url[:200]}`: `{api_key_env}` is only sent "
            f"to {_described(destination)}"))
    key = environ.get(api_key_env)
    if not key:
        return Unreachable("no_key", f"no key: set {api_key_env}")
    return _endpoint(spec, offering_base_url or destination.url,
                     key, "its base_url" if offering_base_url else destination.variable)


def _described(destination: KeyDestination) -> str:
    """Where a key may go, for a reason: a URL from the environment is named by its variable,
    never quoted (it may name internal hosts); a built-in default is public."""
    if destination.url is None:
        return f"{destination.variable} (not set)"
    if destination.default:
        return f"`{destination.url}` (or {destination.variable} when set)"
    return destination.variable


def _endpoint(spec: ProviderSpec, base: str, key: str | None, where: str
              ) -> Endpoint | Unreachable:
    problem = base_url_problem(base)
    if problem is not None:
        return Unreachable("unsupported", f"{where} is not a usable base URL: {problem}")
    return Endpoint(spec.name, spec.wire, normalise_base_url(base), Secret(key) if key else None)


def adapter(wire: str) -> Provider:
    return ADAPTERS[wire]
