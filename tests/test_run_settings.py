"""A run's settings as a value (``RunSettings``): written as ``accord run`` has always
stored them, and read from any stored run, however old, without losing a key."""

from __future__ import annotations

from typing import Any

import pytest

from accord.types import RunOutcome, RunSettings, to_json

# What `accord run` stores (runtime/team_run.py), and what it adds when the run ends.
STORED = {"teammate_model": "openai:gpt-5-mini", "max_teammates": 3, "budget_usd": 2.5,
          "delegate": True}  # fmt: skip
ENDED = {**STORED, "ended": {"outcome": "budget", "reason": "the team budget is spent"}}


def test_what_accord_run_stores_reads_back_the_same() -> None:
    for stored in (STORED, ENDED):
        settings = RunSettings.from_json(stored)
        assert settings.to_json() == stored
        assert RunSettings.from_json(settings.to_json()) == settings
    settings = RunSettings.from_json(ENDED)
    assert settings == RunSettings(
        teammate_model="openai:gpt-5-mini",
        max_teammates=3,
        budget_usd=2.5,
        delegate=True,
        ended=RunOutcome("budget", "the team budget is spent"),
    )


def test_a_fresh_run_writes_every_setting_even_when_unset() -> None:
    assert RunSettings().to_json() == {
        "teammate_model": None,
        "max_teammates": None,
        "budget_usd": None,
        "delegate": False,
    }


@pytest.mark.parametrize(
    "stored",
    [None, {}, {"max_teammates": 2}, {"delegate": True}, {"budget_usd": 1}],
    ids=["nothing", "empty", "max-teammates", "delegate", "int-budget"],
)
def test_missing_keys_take_their_defaults(stored: dict[str, Any] | None) -> None:
    settings = RunSettings.from_json(stored)
    given = stored or {}
    assert settings.max_teammates == given.get("max_teammates")
    assert settings.budget_usd == given.get("budget_usd")
    assert settings.delegate is bool(given.get("delegate"))
    assert settings.teammate_model is None and settings.ended is None and settings.extra == {}
    if "budget_usd" in given:
        assert isinstance(settings.budget_usd, float)  # read as every reader used it


def test_keys_this_version_does_not_know_are_kept() -> None:
    newer = {**STORED, "note": "x", "routing": {"rules": [1, 2]}}
    settings = RunSettings.from_json(newer)
    assert settings.extra == {"note": "x", "routing": {"rules": [1, 2]}}
    assert settings.to_json() == newer
    assert RunSettings.from_json(settings.to_json()) == settings


def test_what_cannot_be_read_takes_its_default() -> None:
    odd = {"max_teammates": "many", "budget_usd": [1], "ended": "yes", "teammate_model": 7}
    settings = RunSettings.from_json(odd)
    assert settings.max_teammates is None and settings.budget_usd is None
    assert settings.ended is None  # as `accord status` read it: no outcome
    assert settings.teammate_model == "7"
    assert RunSettings.from_json({"ended": {"outcome": "finished"}}).ended == RunOutcome(
        "finished", ""
    )


def test_the_settings_are_a_frozen_value() -> None:
    settings = RunSettings(budget_usd=1.0)
    with pytest.raises(AttributeError):
        settings.budget_usd = 2.0  # type: ignore[misc]
    assert settings.to_json() is not settings.to_json()  # a fresh dict each time


def test_json_output_shows_the_settings_as_stored() -> None:
    assert to_json(RunSettings.from_json(ENDED)) == ENDED
