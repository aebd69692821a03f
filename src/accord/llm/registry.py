"""From a model's name to a ready adapter: ``open_model("anthropic:claude-sonnet-4-5")``.

Names are ``PROVIDER:MODEL[@BASE_URL]``. Providers: ``anthropic``, ``openai``
(which with a base URL also reaches local OpenAI-compatible servers) and
``scripted`` (``scripted:PATH`` plays a JSON script, for tests and demos).
Keys are checked here, when the adapter is built, so a missing one fails
before any work starts. A key comes from ``accord.credentials``: what the
supervisor handed a member through a pipe, else the environment.
"""

from __future__ import annotations

from collections.abc import Callable

from accord import credentials
from accord.errors import UserError
from accord.llm.base import Model, ModelName

PROVIDERS = ("anthropic", "openai", "scripted")


def open_model(
    name: str,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
    base_urls: dict[str, str] | None = None,
) -> Model:
    """The adapter for ``name``.

    ``base_urls`` (from accord.toml) maps a provider (``openai``) or a model
    (``openai:qwen3``) to a base URL; a URL in the name itself wins over both.
    Raises ``UserError`` for an unknown provider and ``MissingKey`` for a key
    that is not set.
    """
    parsed = ModelName.parse(name)
    builder = _BUILDERS.get(parsed.provider)
    if builder is None:
        raise UserError(
            f"model {name!r}: unknown provider {parsed.provider!r}; "
            f"known providers: {', '.join(PROVIDERS)}"
        )
    urls = base_urls or {}
    base_url = (
        parsed.base_url
        or urls.get(f"{parsed.provider}:{parsed.model}")
        or urls.get(parsed.provider)
    )
    return builder(parsed, base_url, timeout, max_retries)


def _anthropic(
    name: ModelName, base_url: str | None, timeout: float | None, max_retries: int | None
) -> Model:
    from accord.llm.anthropic import KEY_VARIABLE, AnthropicModel

    return AnthropicModel(
        name.model,
        api_key=credentials.get(KEY_VARIABLE),
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
    )


def _openai(
    name: ModelName, base_url: str | None, timeout: float | None, max_retries: int | None
) -> Model:
    from accord.llm.openai import KEY_VARIABLE, OpenAIModel

    return OpenAIModel(
        name.model,
        api_key=credentials.get(KEY_VARIABLE),
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
    )


def _scripted(
    name: ModelName, base_url: str | None, timeout: float | None, max_retries: int | None
) -> Model:
    from accord.llm.scripted import ScriptedModel

    return ScriptedModel.from_file(name.model, name=str(name))


# Imported on first use: an agent on one provider never loads the other SDK.
_BUILDERS: dict[str, Callable[[ModelName, str | None, float | None, int | None], Model]] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "scripted": _scripted,
}
