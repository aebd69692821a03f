"""Gaps a person meets in a real run: a model that is down for a while, ``model:
inherit`` in a definition, and what ``accord work`` starts outliving it.

A member stopped by a transient model error is restarted under the crash rules
(backoff, ``max_restarts``) and given up like a crash; ``inherit`` is the lead's
model; ``accord work`` commands are tethered, so ``kill -9`` of the pool leaves
nothing running.
"""

from __future__ import annotations

from accord.agent.definition import AgentDefinition, parse_definition
from accord.agent.model_choice import model_name_for
from accord.config import Config

# inherit --------------------------------------------------------------------------


def test_inherit_in_a_definition_is_the_leads_model_before_any_default() -> None:
    inherit = parse_definition("---\nname: m\nmodel: inherit\n---\n", "m.md")
    assert inherit.model is None and inherit.inherits_model
    plain = AgentDefinition(name="x")
    config = Config.model_validate({"agent": {"model": "openai:from-toml"}})
    lead = "openai:the-lead"
    default = "openai:teammate-default"
    # No model in the definition: --teammate-model, then accord.toml, then the lead's.
    assert model_name_for(plain, None, None, config, teammate_default=default, lead_model=lead) == (
        default
    )
    assert model_name_for(plain, None, None, config, lead_model=lead) == "openai:from-toml"
    # inherit: straight to the lead's, past --teammate-model and accord.toml.
    assert model_name_for(
        inherit, None, None, config, teammate_default=default, lead_model=lead
    ) == (lead)
    # The spawn call (or the member's own model) still comes first.
    assert model_name_for(
        inherit, "openai:spawned", None, config, teammate_default=default, lead_model=lead
    ) == ("openai:spawned")
    # With no lead (accord work, or a member run by hand) inherit falls to the defaults.
    assert model_name_for(inherit, None, None, config, teammate_default=default) == default
    assert model_name_for(inherit, None, None, config) == "openai:from-toml"
