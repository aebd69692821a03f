"""The agent loop with the scripted model: tasks, mail, tools, limits, budgets, compaction."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from accord.agent.definition import DEFAULT, AgentDefinition
from accord.config import parse_config
from accord.llm.base import ModelError, Usage
from accord.llm.scripted import Reply, ScriptedModel, call, reply
from accord.store import Store
from accord.team import Team
from accord.types import MessageKind, NewTask, TaskStatus, TranscriptKind
from conftest import make_agent


def test_teammate_works_three_dependent_tasks_in_a_git_repo(team: Team, repo: Path) -> None:
    board = team.board
    board.add(NewTask("write hello.py", "a function hello() returning 'hi'"))
    board.add(NewTask("write its test", blocked_by=(1,)))
    board.add(NewTask("run the tests and commit", blocked_by=(2,)))
    model = ScriptedModel(
        [
            reply(
                "",
                call(
                    "write_file", {"path": "hello.py", "content": "def hello():\n    return 'hi'\n"}
                ),
            ),
            reply("", call("task_complete", {"task_id": 1, "result": "hello.py written"})),
            reply("Task 1 done."),
            reply(
                "",
                call(
                    "write_file",
                    {
                        "path": "test_hello.py",
                        "content": "from hello import hello\n\n"
                        "def test_hello():\n    assert hello() == 'hi'\n",
                    },
                ),
            ),
            reply("", call("task_complete", {"task_id": 2, "result": "test_hello.py written"})),
            reply("Task 2 done."),
            reply(
                "",
                call(
                    "bash",
                    {
                        "command": "python3 -c 'import hello; assert hello.hello() == \"hi\"' && "
                        "git add -A && git -c user.name=a -c user.email=a@b "
                        "commit -qm hello && echo ok"
                    },
                ),
            ),
            reply("", call("task_complete", {"task_id": 3, "result": "tests pass, committed"})),
            reply("All done."),
        ]
    )
    outcome = make_agent(team, model, repo).run(once=True)
    assert outcome.reason == "idle"
    model.assert_complete()
    assert [t.status for t in board.list()] == [TaskStatus.COMPLETED] * 3
    assert (repo / "hello.py").exists() and (repo / "test_hello.py").exists()
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True)
    assert "hello" in log.stdout
    # Each task had its own fresh context: the second task's first request holds only its task.
    second = model.requests[3]
    assert "# Your task #2" in second.messages[0].text
    assert "hello.py written" in second.messages[0].text  # its blocker's result
    assert all("Your task #1" not in m.text for m in second.messages)
    # One usage row per model call.
    total = team.store.usage_totals("main", member="alice")[0]
    assert total.calls == len(model.requests) == 9
    sessions = {e.session for e in team.store.read_transcript("main", "alice")}
    assert sessions == {1, 2, 3}


def test_mail_reaches_the_model_and_is_acked_only_once_saved(team: Team, repo: Path) -> None:
    team.mailbox.send("lead", "alice", "please say hi", summary="hi request")
    model = ScriptedModel(
        [reply("", call("send_message", {"to": "lead", "message": "hi"})), reply("sent")]
    )
    make_agent(team, model, repo).run(once=True)
    first = model.requests[0]
    assert 'from="lead"' in first.messages[-1].text and "please say hi" in first.messages[-1].text
    (msg,) = team.mailbox.history(member="alice", limit=1000)[:1]
    assert msg.acked_at is not None
    saved = [e for e in team.store.read_transcript("main", "alice") if e.kind == "message"]
    assert any("please say hi" in e.body.get("text", "") for e in saved)
    replies = [m for m in team.mailbox.history(member="lead") if m.sender == "alice"]
    assert replies and replies[0].body == "hi"


def test_malformed_and_forbidden_tool_calls_go_back_to_the_model(team: Team, repo: Path) -> None:
    team.board.add(NewTask("something"))
    definition = AgentDefinition(name="reader", prompt="read only", tools=("read_file",))
    model = ScriptedModel(
        [
            reply("", call("write_file", raw="{not json")),
            reply("", call("bash", {"command": "echo hi"})),
            reply("", call("read_file", {"path": "nope.txt", "bogus": 1})),
            reply("", call("task_complete", {"task_id": 1, "result": "gave up politely"})),
            reply("done"),
        ]
    )
    make_agent(team, model, repo, definition=definition).run(once=True)
    results = [r for req in model.requests for m in req.messages for r in m.tool_results]
    by_name = {r.name: r for r in results}
    assert by_name["write_file"].is_error and "not available" in by_name["write_file"].content
    assert by_name["bash"].is_error and "not available" in by_name["bash"].content
    assert by_name["read_file"].is_error and "bogus" in by_name["read_file"].content
    assert team.board.get(1).status == TaskStatus.COMPLETED


def test_max_turns_stops_a_looping_member_and_releases_its_task(team: Team, repo: Path) -> None:
    team.board.add(NewTask("endless"))
    definition = AgentDefinition(name="looper", prompt="x", max_turns=3)
    model = ScriptedModel([reply("", call("list_files", {})) for _ in range(3)])
    outcome = make_agent(team, model, repo, definition=definition).run(once=True)
    assert outcome.reason == "max_turns"
    task = team.board.get(1)
    assert task.status == TaskStatus.PENDING and task.attempts == 1
    told = [m for m in team.mailbox.history(member="lead") if m.sender == "alice"]
    assert told and "max_turns" in told[0].body
    assert team.store.get_member("main", "alice").status == "stopped"


def test_budget_stops_before_the_call_and_tells_the_lead(team: Team, repo: Path) -> None:
    team.board.add(NewTask("costly"))
    # The first call's input (about a thousand tokens) fits; what it spent does not.
    config = parse_config("[budgets]\nmember = { tokens = 100000 }\n")
    model = ScriptedModel(
        [reply("", call("list_files", {}), usage=Usage(input_tokens=99_990, output_tokens=20))]
    )
    outcome = make_agent(team, model, repo, config=config).run(once=True)
    assert outcome.reason == "budget"
    assert len(model.requests) == 1  # the second call never happened
    told = [m for m in team.mailbox.history(member="lead") if m.sender == "alice"]
    assert told and "budget" in told[0].body
    # Partial work is kept: the transcript and the claim are still there.
    assert team.board.get(1).status == TaskStatus.IN_PROGRESS
    assert team.store.read_transcript("main", "alice")


def test_shutdown_request_is_answered(team: Team, repo: Path) -> None:
    (req,) = team.mailbox.send("lead", "alice", "time to stop", kind=MessageKind.SHUTDOWN_REQUEST)
    outcome = make_agent(team, ScriptedModel([]), repo).run(once=True)
    assert outcome.reason == "shutdown"
    (answer,) = [m for m in team.mailbox.history(member="lead") if m.sender == "alice"]
    assert answer.kind == MessageKind.SHUTDOWN_RESPONSE and answer.request_id == req.request_id
    assert team.store.get_message("main", req.id).acked_at is not None


def test_refusable_shutdown_is_refused_mid_task(team: Team, repo: Path) -> None:
    team.board.add(NewTask("busy"))
    claim = team.board.claim("alice")
    assert claim is not None
    team.mailbox.send(
        "lead", "alice", "stop if you can (allow_refusal)", kind=MessageKind.SHUTDOWN_REQUEST
    )
    model = ScriptedModel(
        [reply("", call("task_complete", {"task_id": 1, "result": "finished"})), reply("ok")]
    )
    outcome = make_agent(team, model, repo).run(once=True)
    assert outcome.reason == "idle"
    (answer,) = [m for m in team.mailbox.history(member="lead") if m.sender == "alice"]
    assert answer.body.startswith("refused")
    assert team.board.get(1).status == TaskStatus.COMPLETED


def test_completion_refused_by_hook_feedback_reaches_the_model(
    make_store: Callable[..., Store], repo: Path
) -> None:
    (repo / "gate.sh").write_text(
        "#!/bin/sh\n[ -f fixed.txt ] && exit 0\necho 'tests fail: create fixed.txt' >&2\nexit 2\n"
    )
    (repo / "gate.sh").chmod(0o755)
    config = parse_config('[hooks]\nTaskCompleted = "./gate.sh"\n')
    store = make_store()
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    services = Team.open(store, "main", config, repo)
    services.board.add(NewTask("make it pass"))
    model = ScriptedModel(
        [
            reply("", call("task_complete", {"task_id": 1, "result": "done?"})),
            reply("", call("write_file", {"path": "fixed.txt", "content": "yes"})),
            reply("", call("task_complete", {"task_id": 1, "result": "done, gate passes"})),
            reply("finished"),
        ]
    )
    make_agent(services, model, repo, config=config).run(once=True)
    refused = model.requests[1].messages[-1].tool_results[0]
    assert refused.is_error and "create fixed.txt" in refused.content
    assert services.board.get(1).status == TaskStatus.COMPLETED


def test_compaction_keeps_tool_calls_with_results(team: Team, repo: Path) -> None:
    team.board.add(NewTask("long work"))
    steps = [reply("", call("bash", {"command": f"echo step {i} " + "x" * 400})) for i in range(12)]
    steps += [reply("", call("task_complete", {"task_id": 1, "result": "ok"})), reply("done")]
    model = ScriptedModel(steps, context_window=4000)
    make_agent(team, model, repo).run(once=True)
    model.assert_complete()
    compactions = [
        e
        for e in team.store.read_transcript("main", "alice")
        if e.kind == TranscriptKind.COMPACTION
    ]
    assert compactions
    for request in model.requests:
        calls = {c.id for m in request.messages for c in m.tool_calls}
        results = {r.call_id for m in request.messages for r in m.tool_results}
        assert results <= calls, "a tool result lost its call"
        assert request.messages[0].text.startswith("# Your task #1")
    assert any("folded" in m.text for m in model.requests[-1].messages)
    assert team.board.get(1).status == TaskStatus.COMPLETED


def test_model_error_releases_the_task(team: Team, repo: Path) -> None:
    team.board.add(NewTask("fragile"))
    model = ScriptedModel([ModelError("anthropic:x: 500 after 5 attempts")])
    outcome = make_agent(team, model, repo).run(once=True)
    assert outcome.reason == "model_error"
    assert team.board.get(1).status == TaskStatus.PENDING


def test_unpriced_usage_is_null_not_zero(team: Team, repo: Path) -> None:
    team.board.add(NewTask("t"))
    model = ScriptedModel(
        [reply("", call("task_complete", {"task_id": 1, "result": "r"})), reply("ok")]
    )
    make_agent(team, model, repo).run(once=True)
    total = team.store.usage_totals("main")[0]
    assert total.calls == 2 and total.unpriced_calls == 2 and total.cost_usd == 0.0


def test_restart_continues_the_transcript(team: Team, repo: Path) -> None:
    team.board.add(NewTask("two halves"))
    first = ScriptedModel(
        [reply("", call("write_file", {"path": "a.txt", "content": "1"})), KeyboardInterrupt()]
    )
    make_agent(team, first, repo).run(once=True)
    # The process "died" after one tool call; a new process carries on.
    second = ScriptedModel(
        [reply("", call("task_complete", {"task_id": 1, "result": "r"})), reply("ok")]
    )
    make_agent(team, second, repo).run(once=True)
    resumed = second.requests[0]
    assert resumed.messages[0].text.startswith("# Your task #1")
    assert any(r.name == "write_file" for m in resumed.messages for r in m.tool_results)
    assert team.board.get(1).status == TaskStatus.COMPLETED


def test_default_definition_has_every_tool(team: Team, repo: Path) -> None:
    agent = make_agent(team, ScriptedModel([]), repo)
    assert agent.definition == DEFAULT
    assert {"read_file", "bash", "task_complete", "send_message"} <= set(agent.toolbox.names())


def test_idle_hook_exit_2_keeps_the_member_working(
    make_store: Callable[..., Store], repo: Path
) -> None:
    (repo / "idle.sh").write_text(
        "#!/bin/sh\n[ -f notes.md ] && exit 0\necho 'write notes.md before you rest' >&2\nexit 2\n"
    )
    (repo / "idle.sh").chmod(0o755)
    config = parse_config('[hooks]\nTeammateIdle = "./idle.sh"\n')
    store = make_store()
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    services = Team.open(store, "main", config, repo)
    model = ScriptedModel(
        [reply("", call("write_file", {"path": "notes.md", "content": "done"})), reply("rested")]
    )
    outcome = make_agent(services, model, repo, config=config).run(once=True)
    assert outcome.reason == "idle"
    model.assert_complete()
    assert "write notes.md before you rest" in model.requests[0].messages[0].text
    runs = [e for e in store.read_events("main") if e.kind == "hook_run"]
    assert [e.payload["exit_code"] for e in runs] == [2, 0]
    assert store.get_member("main", "alice").status == "stopped"


def test_heartbeats_keep_the_lease_through_a_slow_model_call(
    make_store: Callable[..., Store], repo: Path
) -> None:
    config = parse_config("[board]\nlease_seconds = 0.6\n[agent]\nheartbeat_seconds = 0.1\n")
    store = make_store()
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    store.add_member("main", "bob", token_hash="x")
    services = Team.open(store, "main", config, repo)
    services.board.add(NewTask("slow thinking"))
    other = make_store()  # another connection, as another process would have

    def slow(request: object) -> Reply:
        # While the model "thinks" for 3 leases, nobody else can take the task.
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:
            assert other.claim_task("main", "bob", lease_seconds=5) is None
            time.sleep(0.1)
        return reply("", call("task_complete", {"task_id": 1, "result": "thought it through"}))

    model = ScriptedModel([slow, reply("done")])
    make_agent(services, model, repo, config=config).run(once=True)
    task = store.get_task("main", 1)
    assert task.status == TaskStatus.COMPLETED and task.owner == "alice" and task.attempts == 1


def test_esc_stops_after_the_current_tool_call_and_the_persons_next_word_steers(
    team: Team, repo: Path
) -> None:
    """The person's interrupt (Esc in the app) arrives while a command runs: that command
    finishes, the reply's next call is answered as not run, no model call follows until
    the person speaks, and what the person says next is what the model reads."""
    import threading

    from accord.agent.loop import INTERRUPTED, NOT_RUN
    from accord.testing.wait import until
    from accord.types import PERSON

    command = "touch started && while [ ! -e go ]; do sleep 0.01; done && echo one"
    model = ScriptedModel(
        [
            reply(
                "",
                call("bash", {"command": command}),
                call("write_file", {"path": "b.txt", "content": "b\n"}),
            ),
            reply("", call("write_file", {"path": "c.txt", "content": "c\n"})),
            reply("Wrote c.txt as you asked."),
        ]
    )
    team.mailbox.send("lead", "alice", "write a.txt and b.txt")

    def press_esc() -> None:
        until(lambda: (repo / "started").exists(), timeout=30)
        team.mailbox.send(PERSON, "alice", "The person pressed Esc.", kind=MessageKind.INTERRUPT)
        (repo / "go").touch()

    esc = threading.Thread(target=press_esc)
    esc.start()
    outcome = make_agent(team, model, repo).run(once=True)
    esc.join()
    assert outcome.detail == "interrupted: waiting for the person's next message"
    assert not (repo / "b.txt").exists()
    saved = [e.body for e in team.log.read_transcript("alice") if e.kind == "message"]
    results = [r for body in saved for r in body.get("tool_results", ())]
    assert [r["content"] for r in results][1] == NOT_RUN
    assert results[0]["content"].startswith("[exit code 0]")
    assert any(INTERRUPTED in body.get("text", "") for body in saved)
    assert len(model.requests) == 1  # no model call while held

    team.mailbox.send(PERSON, "alice", "forget b.txt; write c.txt")
    make_agent(team, model, repo).run(once=True)
    steered = model.requests[1].messages[-1].text
    assert "forget b.txt; write c.txt" in steered and 'role="user"' in steered
    assert (repo / "c.txt").exists()


def test_tools_with_nothing_to_act_on_are_left_out_of_the_request(team: Team, repo: Path) -> None:
    team.board.add(NewTask("look around"))
    model = ScriptedModel([reply("", call("list_files", {})), reply("", call("list_files", {}))])
    agent = make_agent(team, model, repo)
    agent.definition = AgentDefinition(name="t", prompt="x", max_turns=2)
    agent.run(once=True)
    offered = {t.name for t in model.requests[0].tools}
    steps = {"position_submit", "positions_read", "exchange_reply", "agree", "synthesis_submit"}
    assert not offered & steps and not offered & {"use_skill", "revise_skill"}
    assert {"write_skill", "channel_post", "task_complete"} <= offered
    # a deliberation opens and a skill is written: their tools are offered again
    team.deliberations.ask("which db?", "lead", members=["alice", "lead"])
    team.skills.write("run-tests", "How to run the tests", "Run make test.", "lead")
    team.board.add(NewTask("again"))
    model = ScriptedModel([reply("", call("list_files", {})), reply("", call("list_files", {}))])
    agent = make_agent(team, model, repo)
    agent.definition = AgentDefinition(name="t", prompt="x", max_turns=2)
    agent.run(once=True)
    offered = {t.name for t in model.requests[0].tools}
    assert steps <= offered and {"use_skill", "revise_skill"} <= offered
