"""Which model a member runs: the order of the places a model can be named, and a check
that it can be used (its name parses, its provider is known, its key is set)."""

from __future__ import annotations

from accord.agent.definition import MODEL_ALIASES, AgentDefinition
from accord.config import Config
from accord.errors import UserError
from accord.llm.registry import open_model


def model_alias(name: str | None) -> str | None:
    """``sonnet``, ``opus`` and ``haiku`` stand for Anthropic models, as in definitions."""
    return MODEL_ALIASES.get(name, name) if name else name


def model_name_for(
    definition: AgentDefinition,
    member_model: str | None,
    override: str | None,
    config: Config,
    *,
    teammate_default: str | None = None,
    lead_model: str | None = None,
) -> str:
    """A member's model, first found of: the override (``accord agent --model``), the
    member's own (its spawn call, ``member add --model``, accord.toml), its definition's
    (``model: inherit`` there is the lead's, ahead of any default), the run's
    ``--teammate-model``, ``[agent] model`` of accord.toml, the lead's."""
    inherited = lead_model if definition.inherits_model else None
    name = (
        override
        or member_model
        or definition.model
        or inherited
        or teammate_default
        or config.agent.model
        or lead_model
    )
    if not name:
        raise UserError(
            "no model configured: pass --model PROVIDER:MODEL, set the member's --model, name "
            "one in its agent definition, or set [agent] model in accord.toml"
        )
    return model_alias(name) or name


def check_model(name: str, config: Config) -> None:
    """Open ``name`` and close it: a bad name or a missing key fails here, as UserError."""
    open_model(
        name,
        timeout=config.agent.model_timeout,
        max_retries=config.agent.max_retries,
        base_urls=dict(config.agent.base_urls),
    ).close()
