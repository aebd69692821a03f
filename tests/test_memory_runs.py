"""Memory across runs: what a member learned in run 1 shapes what it does in run 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from accord.agent.launch import build_agent
from accord.config import Config
from accord.llm.scripted import Reply, RuleModel, ScriptedModel, call, reply
from accord.store import Store
from accord.team import Team
from accord.types import MemoryStatus, NewTask


def team(make_store: Callable[..., Store], root: Path) -> Team:
    store = make_store()
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    return Team.open(store, "main", Config(), root)


def run(services: Team, root: Path, model: ScriptedModel) -> None:
    build_agent(services, "alice", Config(), root, model=model, idle_wait=0.01).run(once=True)


def writer() -> RuleModel:
    """Run 2's model: it writes the config the way the recalled decision says."""

    def write(content: str) -> Reply:
        return Reply("", (call("write_file", {"path": "settings.cfg", "content": content}),))

    return RuleModel(
        [
            ("indented with tabs", write("[main]\n\tkey = 1\n"), True),
            ("indented with 4 spaces", write("[main]\n    key = 1\n"), True),
            ("Your task #", write("[main]\nkey = 1\n"), True),
            (
                "created settings.cfg",
                Reply("", (call("task_complete", {"task_id": 2, "result": "written"}),)),
                True,
            ),
        ],
        Reply("Done."),
    )


def test_a_decision_from_run_1_shapes_run_2(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    services = team(make_store, tmp_path)
    services.board.add(NewTask("decide how config files are indented"))
    first = ScriptedModel(
        [
            reply(
                "",
                call(
                    "remember", {"type": "decision", "text": "Config files are indented with tabs"}
                ),
            ),
            reply("", call("task_complete", {"task_id": 1, "result": "decided: tabs"})),
            reply("", call("write_continuity", {"text": "I decided config indentation: tabs."})),
            reply("Done."),
        ]
    )
    run(services, tmp_path, first)
    first.assert_complete()

    services.board.add(NewTask("write the config file settings.cfg"))
    second = writer()
    run(services, tmp_path, second)
    opening = second.requests[0].messages[0].text
    assert "Your continuity note" in opening and "I decided config indentation: tabs." in opening
    assert (tmp_path / "settings.cfg").read_text() == "[main]\n\tkey = 1\n"


def test_a_superseded_decision_does_not(make_store: Callable[..., Store], tmp_path: Path) -> None:
    services = team(make_store, tmp_path)
    services.board.add(NewTask("decide how config files are indented"))
    first = ScriptedModel(
        [
            reply(
                "",
                call(
                    "remember", {"type": "decision", "text": "Config files are indented with tabs"}
                ),
            ),
            reply(
                "",
                call(
                    "remember",
                    {
                        "type": "decision",
                        "supersedes": 1,
                        "text": "Config files are indented with 4 spaces",
                    },
                ),
            ),
            reply("", call("task_complete", {"task_id": 1, "result": "decided: 4 spaces"})),
            reply("Done."),
        ]
    )
    run(services, tmp_path, first)
    first.assert_complete()
    old = services.store.get_memory("main", 1)
    assert old.status == MemoryStatus.SUPERSEDED and old.superseded_by == 2

    services.board.add(NewTask("write the config file settings.cfg"))
    second = writer()
    run(services, tmp_path, second)
    opening = second.requests[0].messages[0].text
    assert "indented with tabs" not in opening and "indented with 4 spaces" in opening
    assert (tmp_path / "settings.cfg").read_text() == "[main]\n    key = 1\n"
    # A session that wrote no note of its own still leaves one for the next.
    note = services.store.continuity("main", "alice")[0]
    assert note.text.startswith("I was working on task #2") and "completed" in note.text


def test_a_narrower_decision_cannot_replace_a_wider_one(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    import pytest

    from accord.errors import UserError
    from accord.memory import Memory
    from accord.types import MemoryType, NewMemory

    services = team(make_store, tmp_path)
    memory = Memory(services.store, "main")
    wide, _ = memory.remember(NewMemory(MemoryType.DECISION, "Ship on Fridays", scope="project"))
    before = services.store.read_events("main")
    with pytest.raises(UserError, match="cannot replace it for everyone"):
        memory.remember(
            NewMemory(
                MemoryType.DECISION, "Never ship on Fridays", scope="team", supersedes=wide.id
            )
        )
    assert services.store.read_events("main") == before
    assert memory.get(wide.id).status == MemoryStatus.ACTIVE
    replaced, _ = memory.remember(
        NewMemory(MemoryType.DECISION, "Never ship on Fridays", scope="project", supersedes=wide.id)
    )
    assert memory.get(wide.id).superseded_by == replaced.id


def test_memory_settings_override_one_field_at_a_time() -> None:
    from accord.config import parse_config

    config = parse_config("[memory.observation]\nfloor = 0.1\n").memory
    assert config.observation.floor == 0.1 and config.observation.half_life_days == 30.0


def test_import_refuses_bad_counts_tags_and_statuses(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    import json

    import pytest

    from accord.errors import UserError
    from accord.memory import Memory

    services = team(make_store, tmp_path)
    memory = Memory(services.store, "main")
    good = {"v": 1, "id": 1, "type": "insight", "text": "ok", "created_at": 1.0}
    bad = [
        {**good, "id": 2, "count": 0},
        {**good, "id": 3, "tags": "abc"},
        {**good, "id": 4, "tags": ["Not A Name"]},
        {**good, "id": 5, "status": "superseded"},
        {**good, "id": 6, "type": "decision", "status": "superseded"},
    ]
    lines = [json.dumps(good)] + [json.dumps(b) for b in bad]
    with pytest.raises(UserError, match="5 bad line"):
        memory.import_lines(lines)
    assert services.store.list_memories("main") == []
    imported, problems = memory.import_lines(lines, skip_bad=True)
    assert imported == 1 and [p.split(":")[0] for p in problems] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
