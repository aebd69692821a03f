"""Bad numbers are bad input: past 64 bits, inf, nan, negative or zero where a count or
a lease is meant. Each is one ``error:`` line, exit 2, and the store as it was; the
store refuses them too, so every front door is covered. A config file nested too
deep to read is one ``error:`` line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accord.errors import UserError
from accord.store import open_store
from accord.testing.cli import accord
from accord.types import NewTask, OutgoingMessage, PlannedTask
from conftest import dump, store_path

BIG = str(2**64)  # one past what a 64-bit column holds, and then some


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Team t, members alice and bob, a task alice holds (token 1), a message to bob."""
    root = tmp_path_factory.mktemp("numbers")
    for args in (
        ("init", "--team", "t"),
        ("member", "add", "alice"),
        ("member", "add", "bob"),
        ("task", "add", "one"),
        ("task", "add", "two"),
        ("task", "claim", "--as", "alice", "--id", "1"),
        ("msg", "send", "--from", "alice", "--to", "bob", "hello"),
    ):
        done = accord(*args, cwd=root)
        assert done.returncode == 0, (args, done.stderr)
    return root


CASES = [
    ("task", "claim", "--as", "bob", "--lease", "inf"),
    ("task", "claim", "--as", "bob", "--lease", "nan"),
    ("task", "claim", "--as", "bob", "--lease", "-30"),
    ("task", "claim", "--as", "bob", "--lease", "1e999"),
    ("task", "claim", "--as", "bob", "--id", BIG),
    ("task", "heartbeat", "1", "--as", "alice", "--token", "1", "--lease", "inf"),
    ("task", "heartbeat", "1", "--as", "alice", "--token", BIG),
    ("task", "complete", BIG, "--as", "alice", "--token", "1"),
    ("task", "show", BIG),
    ("task", "show", f"#{BIG}"),
    ("task", "add", "x", "--priority", BIG),
    ("task", "add", "x", "--priority", f"-{BIG}"),
    ("task", "add", "x", "--blocked-by", BIG),
    ("task", "add", "x", "--max-attempts", BIG),
    ("task", "update", "2", "--priority", BIG),
    ("task", "cancel", BIG),
    ("msg", "ack", BIG, "--as", "bob"),
    ("msg", "send", "--from", "bob", "--to", "alice", "x", "--reply-to", BIG),
    ("msg", "inbox", "--as", "bob", "--limit", BIG),
    ("msg", "list", "--limit", "0"),
    ("events", "--since", BIG),
    ("events", "--since", "-1"),
    ("events", "--limit", "-5"),
    ("wait", "--as", "bob", "--timeout", "inf"),
    ("run", "a goal", "--budget", "nan"),
    ("run", "a goal", "--budget", "inf"),
    ("run", "a goal", "--budget", "-1"),
    ("run", "a goal", "--max-teammates", BIG),
    ("run", "a goal", "--slots", "0"),
    ("memory", "show", BIG),
    ("memory", "search", "q", "--k", BIG),
    ("member", "heartbeat", "--as", "bob", "--pid", BIG),
    ("member", "transcript", "bob", "--last", "nan"),
    ("work", "--command", "true", "--workers", BIG),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_a_bad_number_is_one_error_line_and_changes_nothing(
    seeded: Path, args: tuple[str, ...]
) -> None:
    before = dump(store_path(seeded))
    done = accord(*args, cwd=seeded)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "internal error" not in lines[0]
    assert dump(store_path(seeded)) == before


def test_a_lease_of_inf_never_commits_a_claim_that_never_ends(seeded: Path) -> None:
    done = accord("task", "claim", "--as", "bob", "--lease", "inf", cwd=seeded)
    assert "finite" in done.stderr
    tasks = json.loads(accord("task", "list", "--json", cwd=seeded).stdout)
    assert [t["status"] for t in tasks] == ["in_progress", "pending"]
    # Every event payload the log holds is still JSON (no Infinity, no NaN).
    for e in json.loads(accord("events", "--json", cwd=seeded).stdout):
        json.dumps(e, allow_nan=False)


def test_the_store_refuses_numbers_no_column_holds(location: str) -> None:
    with open_store(location, create=True) as store:
        store.create_team("t")
        store.add_member("t", "alice", token_hash="x")
        store.add_task("t", NewTask(title="one"), max_attempts=3)
        seq = store.read_events("t")[-1].seq
        bad = [
            lambda: store.claim_task("t", "alice", lease_seconds=float("inf")),
            lambda: store.claim_task("t", "alice", lease_seconds=float("nan")),
            lambda: store.claim_task("t", "alice", lease_seconds=-1.0),
            lambda: store.claim_task("t", "alice", lease_seconds=60, task_id=2**64),
            lambda: store.get_task("t", 2**63),
            lambda: store.add_task("t", NewTask(title="x", priority=2**64), max_attempts=3),
            lambda: store.add_task("t", NewTask(title="x", priority=-(2**63) - 1), max_attempts=3),
            lambda: store.send_message("t", OutgoingMessage("alice", "alice", "x", reply_to=2**64)),
            lambda: store.ack_messages("t", "alice", [1, 2**70]),
            lambda: store.add_tasks(
                "t", [PlannedTask(NewTask(title="x", blocked_by=(2**64,)))], max_attempts=3
            ),
        ]
        for call in bad:
            with pytest.raises(UserError):
                call()
        assert store.read_events("t")[-1].seq == seq
        assert store.get_task("t", 1).status == "pending"
        # The edges of the range are numbers like any other.
        with pytest.raises(UserError, match="no task"):
            store.get_task("t", 2**63 - 1)


def test_accord_toml_nested_too_deep_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".accord").mkdir()
    config = tmp_path / "accord.toml"
    config.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    for args in (("task", "list"), ("status",), ("run", "a goal")):
        done = accord(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert (
            done.stderr
            == f"error: {config} nests tables or arrays too deeply to read; flatten it\n"
        )


def test_a_plan_file_nested_too_deep_is_one_error_naming_it(seeded: Path) -> None:
    plan = seeded / "deep.toml"
    plan.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    before = dump(store_path(seeded))
    done = accord("plan", "load", str(plan), cwd=seeded)
    assert done.returncode == 2
    assert done.stderr == f"error: {plan} nests tables or arrays too deeply to read; flatten it\n"
    assert dump(store_path(seeded)) == before
