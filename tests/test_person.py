"""The person at the terminal: the built-in sender ``person``, never a teammate.

The command line is run as real processes (as a person runs it); the store rules
are checked on every backend, so an MCP or TUI front door gets them too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from accord.agent.context import mail_text
from accord.agent.tools import all_tools
from accord.agent.tools.base import Toolbox, ToolContext
from accord.config import Config
from accord.errors import IdentityError, InvalidName, UnknownMember
from accord.llm.base import ToolCall
from accord.store import Store, open_store
from accord.team import Team, digest
from accord.team.roster import may_act_as
from accord.testing.cli import accord
from accord.types import PERSON, OutgoingMessage
from conftest import dump, store_path


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def team_dir(project: Path) -> tuple[Path, str]:
    """A project with team t and member alice; alice's token."""
    assert accord("init", "--team", "t", cwd=project).returncode == 0
    added = accord("member", "add", "alice", "--json", cwd=project)
    assert added.returncode == 0, added.stderr
    return project, json.loads(added.stdout)["token"]


def test_person_sends_without_from_and_reads_own_inbox(team_dir: tuple[Path, str]) -> None:
    project, token = team_dir
    sent = accord("msg", "send", "--to", "alice", "please review the schema", cwd=project)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == "sent 1 to alice\n"
    got = json.loads(accord("msg", "inbox", "--as", "alice", "--json", cwd=project).stdout)
    assert [(m["sender"], m["body"]) for m in got] == [(PERSON, "please review the schema")]

    # alice, as an agent (her name and token in the environment), answers the person.
    agent = {**os.environ, "ACCORD_MEMBER": "alice", "ACCORD_TOKEN": token}
    reply = accord("msg", "send", "--to", "person", "done, two notes", cwd=project, env=agent)
    assert reply.returncode == 0, reply.stderr

    inbox = accord("msg", "inbox", cwd=project)
    assert inbox.returncode == 0, inbox.stderr
    assert "alice -> you" in inbox.stdout and "done, two notes" in inbox.stdout
    assert "accord msg ack 2" in inbox.stdout  # no --as needed for one's own mail
    assert accord("msg", "ack", "2", cwd=project).returncode == 0
    assert accord("msg", "inbox", cwd=project).stdout == "no new messages for you\n"


def test_an_agent_cannot_act_as_the_person(team_dir: tuple[Path, str]) -> None:
    project, token = team_dir
    accord("msg", "send", "--to", "alice", "hello", cwd=project)
    agent = {**os.environ, "ACCORD_MEMBER": "alice", "ACCORD_TOKEN": token}
    before = dump(store_path(project))
    refused(accord("msg", "inbox", "--as", "person", cwd=project, env=agent), "only the person")
    refused(
        accord("msg", "send", "--from", "person", "--to", "alice", "x", cwd=project, env=agent),
        "only the person",
    )
    assert dump(store_path(project)) == before


def test_the_person_is_never_a_teammate(team_dir: tuple[Path, str]) -> None:
    project, _ = team_dir
    assert accord("task", "add", "write the parser", cwd=project).returncode == 0
    before = dump(store_path(project))
    refused(accord("task", "claim", "--as", "person", cwd=project), "not a member", "never claims")
    refused(accord("member", "add", "person", cwd=project), "reserved")
    assert dump(store_path(project)) == before
    members = json.loads(accord("member", "list", "--json", cwd=project).stdout)
    assert [m["name"] for m in members] == ["alice"]


def test_store_gives_the_person_a_mailbox_and_no_membership(location: str) -> None:
    with open_store(location, create=True) as store:
        store.create_team("t")
        store.add_member("t", "alice", token_hash="x")
        with pytest.raises(InvalidName, match="reserved"):
            store.add_member("t", PERSON, token_hash="x")
        with pytest.raises(UnknownMember, match="never claims"):
            store.claim_task("t", PERSON, lease_seconds=60)
        (to_alice,) = store.send_message("t", OutgoingMessage(PERSON, "alice", "hi"))
        assert to_alice.sender == PERSON
        (to_person,) = store.send_message("t", OutgoingMessage("alice", PERSON, "hello"))
        # A broadcast reaches members only: the person is not on the team.
        store.add_member("t", "bob", token_hash="x")
        assert [
            m.recipient for m in store.send_message("t", OutgoingMessage("alice", "*", "all"))
        ] == ["bob"]
        got = store.receive_messages("t", PERSON, visibility_timeout=60)
        assert [m.id for m in got] == [to_person.id]
        assert store.ack_messages("t", PERSON, [to_person.id]) == [to_person.id]
        assert store.receive_messages("t", PERSON, visibility_timeout=60) == []
        assert [m.name for m in store.list_members("t")] == ["alice", "bob"]
        roster = digest.build(store, "t", 0, "alice").text.split("# Team")[1]
        assert "person" not in roster and "- bob" in roster


def test_members_reply_to_the_person_with_their_tool(store: Store, tmp_path: Path) -> None:
    team = Team.open(store, "main", Config(), tmp_path)
    alice = ToolContext(workspace=tmp_path, member="alice", team=team)
    result = Toolbox(all_tools()).execute(
        alice, ToolCall("c1", "send_message", {"to": "person", "message": "all done"})
    )
    assert not result.is_error, result.content
    assert [(m.sender, m.body) for m in team.mailbox.inbox(PERSON)] == [("alice", "all done")]


def test_a_member_sees_mail_from_the_person_marked_apart(store: Store) -> None:
    (from_person,) = store.send_message("main", OutgoingMessage(PERSON, "alice", "ship it"))
    (from_bob,) = store.send_message("main", OutgoingMessage("bob", "alice", "ship it"))
    assert 'from="person" role="user"' in mail_text(from_person)
    assert 'from="bob"' in mail_text(from_bob) and "role=" not in mail_text(from_bob)


def test_only_a_caller_that_is_no_agent_acts_as_the_person(store: Store) -> None:
    may_act_as(store, "main", PERSON, None, None)
    with pytest.raises(IdentityError, match="only the person"):
        may_act_as(store, "main", PERSON, "alice", "acc_token")
