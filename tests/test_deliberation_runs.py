"""Deliberations in real team runs: `accord run` with a supervisor, a lead and teammates
as processes playing rule scripts (scripted:FILE), so runs are offline and their outcome
deterministic however the processes interleave.

A two-member deliberation goes from independent positions through one exchange round to
a synthesis that becomes a decision memory, which a member of the next run recalls; a
participant killed with SIGKILL in each phase is restarted (or its synthesis passes on
after its lease) and no position is lost or counted twice; the person takes part in a
running team's deliberation from the command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from accord.store import open_store
from accord.testing.cli import accord, calls, rules, start
from accord.testing.wait import until
from accord.types import DeliberationPhase, TranscriptKind
from conftest import db

QUESTION = "Which cache store should we use?"
ID = {"deliberation_id": 1}


def spawn(name: str, model: str) -> tuple[str, dict[str, Any]]:
    return (
        "spawn_teammate",
        {"name": name, "instructions": "Take part when asked.", "model": model},
    )


def lead_script(
    root: Path,
    ask: dict[str, Any],
    *,
    then: str = "answer to deliberation 1",
    spawned: tuple[str, ...] = ("alice", "bob"),
) -> str:
    """The lead: spawn the members (each with its own script), ask, finish on the answer."""
    return rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    *(spawn(n, f"scripted:{root / f'{n}.json'}") for n in spawned),
                    ("deliberate", {"question": QUESTION, **ask}),
                ),
            },
            {"if": then, "then": calls(("finish", {"summary": "we decided"}))},
        ],
        "Waiting.",
    )


def member_script(
    root: Path,
    name: str,
    position: str,
    reply_text: str | None = None,
    answer: dict[str, str] | None = None,
    marks: dict[str, str] | None = None,
) -> None:
    """A participant: its position on the question, a reply once positions are revealed,
    the synthesis when it is its turn. ``marks``: a file touched (by bash, then the
    member sleeps until killed) at that phase instead of acting, keyed by the phase's
    trigger text."""
    marks = marks or {}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("Write your own position", calls(("position_submit", {**ID, "position": position})))
    ]
    if reply_text is not None:
        steps.append(("revealed", calls(("exchange_reply", {**ID, "reply": reply_text}))))
    if answer is not None:
        steps.append(
            (f"{name} writes the one answer", calls(("synthesis_submit", {**ID, **answer})))
        )
    found = []
    for trigger, act in steps:
        if trigger in marks:
            sleep = f"touch {marks[trigger]}; exec sleep 4243.5"
            act = calls(("bash", {"command": sleep}))
        found.append({"if": trigger, "once": True, "then": act})
    rules(root / f"{name}.json", found, "Nothing to add.")


def run(root: Path, goal: str, lead: str) -> subprocess.CompletedProcess[str]:
    done = accord(root, "run", goal, "--model", lead, "--display", "plain", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def positions(root: Path) -> list[tuple[str, int, str]]:
    with open_store(db(root)) as s:
        return [(p.member, p.round, p.body) for p in s.deliberation_positions("main", 1)]


def events(root: Path, kind: str) -> list[dict[str, Any]]:
    with open_store(db(root)) as s:
        return [dict(e.payload) for e in s.read_events("main") if e.kind == kind]


def test_two_members_deliberate_and_the_next_run_recalls_the_decision(root: Path) -> None:
    lead = lead_script(
        root, {"members": ["alice", "bob"], "synthesizer": "alice", "tags": ["cache"]}
    )
    member_script(
        root,
        "alice",
        "SQLite: it is already there",
        "SQLite still: postgres is one more server to run",
        {"answer": "SQLite for the cache", "agreement": "both", "dissent": "bob: postgres"},
    )
    member_script(root, "bob", "PostgreSQL: shared by hosts", "SQLite is fine by me")
    done = run(root, "pick a cache", lead)
    assert "finished: we decided" in done.stdout
    assert positions(root) == [
        ("alice", 0, "SQLite: it is already there"),
        ("bob", 0, "PostgreSQL: shared by hosts"),
        ("alice", 1, "SQLite still: postgres is one more server to run"),
        ("bob", 1, "SQLite is fine by me"),
    ]
    with open_store(db(root)) as s:
        d = s.deliberation("main", 1)
        assert d.phase == DeliberationPhase.DONE and d.lease_holder == "alice"
        assert d.memory_id is not None
        decision = s.get_memory("main", d.memory_id)
        assert decision.type.value == "decision" and "SQLite for the cache" in decision.text
    # Run 2: a new run; carol, new to the team, gets a cache task and recalls the answer.
    lead2 = rules(
        root / "lead.json",
        [
            {
                "if": "# Goal\nconfigure it",
                "once": True,
                "then": calls(
                    spawn("carol", f"scripted:{root / 'carol.json'}"),
                    ("task_create", {"title": "configure the cache store", "assignee": "carol"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "configured"}))},
        ],
        "Waiting.",
    )
    rules(
        root / "carol.json",
        [
            {
                "if": "SQLite for the cache",
                "once": True,
                "then": calls(("task_complete", {"task_id": 1, "result": "sqlite, as decided"})),
            },
        ],
        "I do not know which store.",
    )
    assert "finished: configured" in run(root, "configure it", lead2).stdout
    with open_store(db(root)) as s:
        opening = [
            json.dumps(e.body)
            for e in s.read_transcript("main", "carol")
            if e.kind == TranscriptKind.MESSAGE
        ]
        assert any("SQLite for the cache" in t and "configure the cache" in t for t in opening)
        assert s.get_task("main", 1).result == "sqlite, as decided"


def kill(root: Path, member: str, mark: str) -> None:
    """SIGKILL ``member`` once it touched ``mark`` (it then sleeps in a tool call)."""
    until(lambda: (root / mark).exists(), timeout=30)
    with open_store(db(root)) as s:
        pid = s.get_member("main", member).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def test_a_participant_killed_in_each_phase_loses_and_doubles_nothing(root: Path) -> None:
    """bob is killed right after submitting his position, alice right after her reply
    and then while writing the synthesis. Each restarted one retries what it did (the
    same text: no change); alice's synthesis lapses after its lease and bob writes it."""
    lead = lead_script(
        root,
        {"members": ["alice", "bob"], "synthesizer": "alice", "phase_seconds": 6},
    )
    sleep = "exec sleep 4243.5"
    alice_reply = ("exchange_reply", {**ID, "reply": "SQLite still"})
    rules(
        root / "alice.json",
        [
            {
                "if": "Write your own position",
                "once": True,
                "then": calls(("position_submit", {**ID, "position": "SQLite"})),
            },
            {
                "if": "revealed",
                "once": True,
                "then": calls(alice_reply, ("bash", {"command": f"touch e; {sleep}"})),
            },
            {
                "if": "alice writes the one answer",
                "once": True,
                "then": calls(("bash", {"command": f"touch s; {sleep}"})),
            },
            {"if": "interrupted", "once": True, "then": calls(alice_reply)},  # a retry
        ],
        "Nothing to add.",
    )
    bob_position = ("position_submit", {**ID, "position": "PostgreSQL"})
    bob_reply = ("exchange_reply", {**ID, "reply": "fine"})
    rules(
        root / "bob.json",
        [
            {
                "if": "Write your own position",
                "once": True,
                "then": calls(bob_position, ("bash", {"command": f"touch p; {sleep}"})),
            },
            # Restarted: it retries its position, and replies to the positions revealed
            # while it was down (the same reply twice, should that mail come again, is
            # no change either).
            {"if": "interrupted", "once": True, "then": calls(bob_position, bob_reply)},
            {"if": "revealed", "once": True, "then": calls(bob_reply)},
            {
                "if": "bob writes the one answer",
                "once": True,
                "then": calls(("synthesis_submit", {**ID, "answer": "SQLite, by bob"})),
            },
        ],
        "Nothing to add.",
    )
    sup = start(root, "run", "pick a cache", "--model", lead, "--display", "plain")
    try:
        kill(root, "bob", "p")  # positions
        kill(root, "alice", "e")  # exchange
        kill(root, "alice", "s")  # synthesis
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
    assert sup.returncode == 0 and "finished: we decided" in out, out
    assert "restarted bob" in out and "restarted alice" in out, out
    assert positions(root) == [
        ("alice", 0, "SQLite"),
        ("bob", 0, "PostgreSQL"),
        ("alice", 1, "SQLite still"),
        ("bob", 1, "fine"),
    ]
    submitted = [(e["member"], e["round"]) for e in events(root, "position_submitted")]
    assert sorted(submitted) == [("alice", 0), ("alice", 1), ("bob", 0), ("bob", 1)]
    (lapsed,) = events(root, "synthesis_lapsed")
    assert (lapsed["member"], lapsed["next"]) == ("alice", "bob")
    (finished,) = events(root, "deliberation_finished")
    assert finished["member"] == "bob"
    with open_store(db(root)) as s:
        d = s.deliberation("main", 1)
        assert d.answer == "SQLite, by bob" and d.memory_id is not None
        assert not any(p.absent for p in d.participants)
        assert s.get_memory("main", d.memory_id).text.startswith(QUESTION)


def test_the_person_takes_part_in_a_running_teams_deliberation(root: Path) -> None:
    """The person is asked with alice; the team waits on it (idle, yet not stalled) until
    it writes its position from the command line."""
    (root / "accord.toml").write_text(
        "[run]\nmax_restarts = 0\ngrace = 5\nsilent_after = 1.5\n"
        "\n[agent]\nheartbeat_seconds = 0.5\n"
    )
    lead = lead_script(
        root,
        {"members": ["person", "alice"], "synthesizer": "alice", "rounds": 0},
        spawned=("alice",),
    )
    member_script(root, "alice", "SQLite", answer={"answer": "SQLite", "dissent": "none"})
    sup = start(root, "run", "pick a cache", "--model", lead, "--display", "plain")
    try:
        until(lambda: any(p[0] == "alice" for p in positions_or_none(root)), timeout=30)
        refused = accord(root, "ask", "read", "1")
        assert refused.returncode == 2
        assert refused.stderr.startswith("error: person may not read the positions")
        # The whole team is idle, waiting on the person, for longer than silent_after.
        until(lambda: quiet_for(root) > 2.5, timeout=30)
        assert sup.poll() is None, "the supervisor stopped a run that waits on a deliberation"
        done = accord(root, "ask", "position", "1", "PostgreSQL: we have one")
        assert done.returncode == 0, done.stderr
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
    assert "finished: we decided" in out, out
    shown = accord(root, "ask", "show", "1")
    assert "person: PostgreSQL: we have one" in shown.stdout and "answer (alice)" in shown.stdout


def positions_or_none(root: Path) -> list[tuple[str, int, str]]:
    """The positions of deliberation 1, or none before it is opened."""
    if not Path(db(root)).exists():
        return []
    with open_store(db(root)) as s:
        if "main" not in [t.name for t in s.list_teams()] or not s.list_deliberations("main"):
            return []
    return positions(root)


def quiet_for(root: Path) -> float:
    """Seconds since the team's last event."""
    import time

    with open_store(db(root)) as s:
        return time.time() - s.read_events("main")[-1].at
