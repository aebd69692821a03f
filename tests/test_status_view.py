"""`accord status` for people: rich on a terminal, plain text to a pipe, the same content.

Agents and hooks read `accord status` through a pipe, so there it loads neither rich
nor pydantic, and prints every line whole (rich folds text at 80 columns for a pipe).
Whatever the view cuts short says where it is whole.
"""

from __future__ import annotations

import io
import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.cli import _live
from accord.cli._live import plain, status_data, view
from accord.runtime.lifecycle import record_end
from accord.store import Store, open_store
from accord.team import Team
from accord.testing.cli import accord_out as accord
from accord.types import MemberStatus, RunSettings, RunStatus, TranscriptEntry, TranscriptKind
from conftest import heavy, loaded

WHY = (
    "cannot read the model script /nonexistent/bob.json (No such file or directory); "
    "fix the model in .accord/agents/coder.md or give --model, then `accord resume`"
)


def ended_run(root: Path, reason: str, goal: str = "build the parser") -> None:
    """Team t whose run stopped: bob could not start, for ``reason``."""
    for args in (("init", "--team", "t"), ("member", "add", "lead"), ("member", "add", "bob")):
        accord(root, *args)
    with open_store(str(root / ".accord" / "accord.db")) as s:
        s.start_run("t", goal, "lead", RunSettings())
        s.update_member("t", "bob", status=MemberStatus.FAILED)
        s.append_event("t", "member_failed", {"name": "bob", "reason": reason})
        s.update_run("t", status=RunStatus.STOPPED)
        record_end(Team(s, "t"), "config", f"bob cannot start: {reason}")


def data_of(root: Path) -> dict[str, Any]:
    with open_store(str(root / ".accord" / "accord.db")) as s:
        return status_data(Team(s, "t"))


def rich_text(data: dict[str, Any]) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=400, soft_wrap=False, markup=False, emoji=False).print(view(data))
    return out.getvalue()


def plain_text(data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    plain(data)
    return capsys.readouterr().out


def test_status_to_a_pipe_loads_no_rich_and_says_the_outcome_and_reason_whole(
    project: Path,
) -> None:
    ended_run(project, WHY)
    out = accord(project, "status")
    lines = out.splitlines()
    assert f"ended (config): bob cannot start: {WHY}" in lines
    assert f"bob cannot start: {WHY}" in lines  # the member's reason, on one line
    assert any(line.split()[:3] == ["bob", "teammate", "failed"] for line in lines)
    assert heavy(loaded("status", cwd=project)) == set()


def test_a_terminal_and_a_pipe_show_the_same_lines(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ended_run(project, WHY, goal="g" * 120)
    accord(project, "task", "add", "a title much longer than the thirty characters shown")
    accord(project, "msg", "send", "--to", "bob", "a body " * 20)
    accord(project, "msg", "send", "--to", "bob", "short", "--summary", "[red] :smile:")
    data = data_of(project)
    shown = plain_text(data, capsys)
    assert [line.rstrip() for line in rich_text(data).splitlines()] == [
        line.rstrip() for line in shown.splitlines()
    ]
    assert "[red] :smile:" in shown


def test_a_500_character_reason_is_cut_with_where_it_is_whole(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = " ".join(f"word{i:03}" for i in range(70))[:500]
    assert len(reason) == 500
    ended_run(project, reason)
    data = data_of(project)
    (bob,) = [m for m in data["members"] if m["name"] == "bob"]
    assert bob["reason"] == f"cannot start: {reason}"  # whole for programs
    for shown in (accord(project, "status"), plain_text(data, capsys), rich_text(data)):
        (line,) = [x for x in shown.splitlines() if x.startswith("bob cannot start")]
        assert line.rstrip().endswith("… (whole: `accord status --json`)"), line
        assert reason[:250] in line
    assert json.loads(accord(project, "status", "--json")) == json.loads(json.dumps(data))


def test_whatever_the_view_cuts_says_where_it_is_whole(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    goal = "make the parser fast " * 10
    ended_run(project, WHY, goal=goal)
    title = "a title much longer than the thirty characters shown"
    accord(project, "task", "add", title)
    accord(project, "msg", "send", "--to", "bob", "a body " * 20)
    with open_store(str(project / ".accord" / "accord.db")) as s:
        claim = s.claim_task("t", "bob", lease_seconds=60)
        assert claim is not None
    shown = plain_text(data_of(project), capsys).splitlines()
    (head,) = [x for x in shown if x.startswith("team t")]
    assert "goal: make the parser fast make" in head
    assert "… (whole: `accord status --json`)" in head
    (bob,) = [x for x in shown if x.startswith(" bob ")]
    assert "#1 a title much longer than the…" in bob
    under = shown.index("cut short (…): whole in `accord status --json`")  # under the table
    assert shown.index(bob) < under < shown.index(f"bob cannot start: {WHY}")
    assert shown[-1] == "cut short (…): whole in `accord msg list`"


def test_task_list_and_transcripts_say_where_a_cut_is_whole(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from accord.cli import main

    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main(list(args)) == 0
        return capsys.readouterr().out

    cli("init", "--team", "t")
    cli("member", "add", "bob")
    cli("task", "add", "short")
    assert "cut short" not in cli("task", "list")
    cli("task", "add", "x" * 60)
    listed = cli("task", "list").splitlines()
    assert any("x" * 47 + "…" in line for line in listed)
    assert listed[-1] == "cut short (…): whole in `accord task show ID`"

    with open_store(str(project / ".accord" / "accord.db")) as s:
        s.append_transcript(
            "t",
            [
                TranscriptEntry(
                    "bob", 2, TranscriptKind.MESSAGE, {"role": "user", "text": "\n" * 45 + "end"}
                ),
                TranscriptEntry(
                    "bob",
                    2,
                    TranscriptKind.MESSAGE,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "name": "bash", "arguments": {"c": "y" * 200}}],
                    },
                ),
                TranscriptEntry(
                    "bob",
                    2,
                    TranscriptKind.MESSAGE,
                    {
                        "role": "user",
                        "tool_results": [{"call_id": "c1", "name": "bash", "content": "z" * 200}],
                    },
                ),
            ],
        )
    whole = "(whole: `accord member transcript bob --session 2 --json`)"
    lines = cli("member", "transcript", "bob").splitlines()
    assert lines[-3].endswith(f"[5 more lines] {whole}")
    assert "calls bash(" in lines[-2] and lines[-2].endswith(f"… {whole})")
    assert "bash -> zzz" in lines[-1] and lines[-1].endswith(f"… {whole}")


def test_the_live_view_cut_to_the_terminal_says_where_it_is_whole(project: Path) -> None:
    from rich.console import Console

    from accord.cli._live import Fitted

    ended_run(project, WHY)
    data = data_of(project)
    data["members"] = [dict(data["members"][0], name=f"m{n}") for n in range(20)]

    def shown(height: int) -> list[str]:
        out = io.StringIO()
        console = Console(file=out, width=120, height=height, markup=False, emoji=False)
        console.print(Fitted(view(data, deque(["supervisor: started m0"])), "t"))
        return out.getvalue().splitlines()

    short = shown(12)
    assert len(short) == 12
    assert short[-1] == "… cut to fit the terminal: whole in `accord status --team t`"
    tall = shown(200)
    assert tall[-1] == "supervisor: started m0" and not any("cut to fit" in x for x in tall)
    assert short[:11] == tall[:11]


def test_a_crash_shows_its_last_line_and_where_the_traceback_is_whole(project: Path) -> None:
    ended_run(project, WHY)
    why = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n'
    with open_store(str(project / ".accord" / "accord.db")) as s:
        s.update_member("t", "lead", status=MemberStatus.CRASHED)
        s.append_event("t", "member_crashed", {"name": "lead", "why": why, "gave_up": True})
    (lead,) = [m for m in data_of(project)["members"] if m["name"] == "lead"]
    head, where = lead["reason"].split(" (whole: `")
    assert head == "crashed too often, not restarted: ValueError: boom"
    command = where.removesuffix("`)").split()
    assert command[:3] == ["accord", "events", "--json"]
    (event,) = json.loads(accord(project, *command[1:]))
    assert event["kind"] == "member_crashed" and event["payload"]["why"] == why
    assert f"lead {lead['reason']}" in accord(project, "status").splitlines()


KINDS = [
    "model_call",
    "task_claimed",
    "message_sent",
    "member_added",
    "member_failed",
    "member_crashed",
    "spawn_started",
    "member_restarted",
    "member_stopped",
    "run_started",
    "run_ended",
]
NAMES = ["a", "b", "lead"]
event = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from([None, *NAMES]),
    st.sampled_from(NAMES),
    st.sampled_from(["budget", "shutdown", "x\ny"]),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(event, max_size=40),
    st.lists(st.tuples(st.sampled_from(list(MemberStatus)), st.booleans()), min_size=3, max_size=3),
    st.integers(1, 8),
    st.integers(1, 60),
)
def test_status_from_the_newest_events_is_status_from_the_whole_log(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[str, str | None, str, str]],
    statuses: list[tuple[MemberStatus, bool]],
    tail: int,
    span: int,
) -> None:
    """`accord status` reads only the newest events: what it shows is what the whole log
    shows, but for a last action (or why a stopped member that never ran is stopped)
    older than the newest SPAN events, which shows as nothing."""
    monkeypatch.setattr(_live, "TAIL", tail)
    monkeypatch.setattr(_live, "SPAN", span)
    team = f"t{len(store.list_teams())}"
    store.create_team(team)
    for name, (status, ran) in zip(NAMES, statuses, strict=True):
        store.add_member(team, name, token_hash="x")
        store.update_member(team, name, status=status, heartbeat=ran)
    for kind, actor, name, word in events:
        payload = {"name": name, "reason": word, "why": word, "detail": word, "outcome": word}
        store.append_event(team, kind, payload, actor)
    members = store.list_members(team)
    log = store.read_events(team)
    whole = _live.Actions()
    whole.take(log)
    for over in (False, True):
        recent = _live.Actions()
        recent.catch_up(Team(store, team).log, members, over)
        assert recent.seq == whole.seq == len(log)
        exact = len(log) <= span
        for m in members:
            last = recent.last.get(m.name)
            assert last == whole.last.get(m.name) or (not exact and last is None)
            if m.status not in _live.NOT_RUNNING:
                continue
            why = recent.why.get(m.name)
            if m.status == MemberStatus.STOPPED and m.heartbeat_at is None and not exact:
                assert why in (whole.why.get(m.name), None)
            else:
                assert why == whole.why.get(m.name)
        if over:
            assert recent.ended == whole.ended
