"""Worktrees and the merge gate, with the real git: each member on its own branch, a
completion merged into ``accord/<team>`` under a lock and checked on the merged tree,
conflicts refused with their hunks, ``sync``, clean-up, ``accord merge``, and the
faults (kill -9 mid-merge, a worktree deleted by hand, no repository, a dirty tree).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from accord.agent.tools import all_tools
from accord.agent.tools.base import HeldClaim, Toolbox, ToolContext
from accord.config import Config
from accord.errors import HookBlocked, NothingToDo
from accord.git import MergeBusy, MergeRefused, NotARepository, git, rev
from accord.llm.base import ToolCall
from accord.store import open_store
from accord.team import Team
from accord.testing.cli import accord, calls, rules
from accord.testing.wait import until
from accord.types import MemberRole, NewTask, TaskStatus
from conftest import Cli


def sh(cwd: Path, *args: str) -> str:
    return git(cwd, *args).out


def make_repo(tmp_path: Path, files: int = 1) -> Path:
    """A git project with one commit on main: notes.txt (and more files if asked),
    accord.toml and an ignored .accord/."""
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    sh(root, "init", "-q", "-b", "main")
    (root / "notes.txt").write_text("one\ntwo\nthree\n")
    for i in range(1, files):
        (root / f"f{i}.txt").write_text(f"{i}\n")
    (root / "accord.toml").write_text("")
    (root / ".accord").mkdir()
    (root / ".accord" / ".gitignore").write_text("*\n")
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "start")
    return root


def bind(root: Path, toml: str = "", *, members: tuple[str, ...] = ("alice", "bob")) -> Team:
    (root / "accord.toml").write_text(toml)
    store = open_store(str(root / ".accord" / "accord.db"), create=True)
    config = Config.model_validate(_toml(toml))
    team = Team.create(store, "main", config, root)
    team.roster.add("lead", role=MemberRole.LEAD)
    for m in members:
        team.roster.add(m)
    return team


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def task_for(team: Team, member: str, title: str) -> tuple[int, int]:
    task = team.board.add(NewTask(title=title, assignee=member))
    claim = team.board.claim(member, task.id)
    assert claim is not None
    return task.id, claim.fencing_token


@pytest.fixture
def repo(project: Path) -> Path:
    """The git project, as the working folder of the in-process ``cli``."""
    return make_repo(project.parent)


def test_the_gate_merges_refuses_a_conflict_and_sync_resolves_it(repo: Path) -> None:
    team = bind(repo)
    person = rev(repo, "main")
    wt = team.worktrees
    a, b = wt.workspace("alice"), wt.workspace("bob")
    assert a == repo / ".accord/worktrees/main/alice" and (a / "notes.txt").exists()
    assert sh(a, "symbolic-ref", "--short", "HEAD") == "accord/main@alice"
    (a / "notes.txt").write_text("one\nTWO by alice\nthree\n")
    (b / "notes.txt").write_text("one\ntwo by bob\nthree\n")
    ta, tb = task_for(team, "alice", "alice's line"), task_for(team, "bob", "bob's line")

    team.complete(ta[0], "alice", ta[1], "done")
    assert team.board.get(ta[0]).status == TaskStatus.COMPLETED
    assert sh(repo, "show", "accord/main:notes.txt") == "one\nTWO by alice\nthree"
    log = sh(repo, "log", "--format=%s", "accord/main")
    assert "accord: merge task #1 (alice's line) by alice" in log
    assert "task #1: alice's line" in log

    before = rev(repo, "accord/main")
    with pytest.raises(MergeRefused) as refused:
        team.complete(tb[0], "bob", tb[1], "done")
    assert refused.value.files == ("notes.txt",)
    assert "<<<<<<<" in refused.value.detail and "two by bob" in refused.value.detail
    assert "TWO by alice" in refused.value.detail
    assert rev(repo, "accord/main") == before  # nothing half-merged
    task = team.board.get(tb[0])
    assert task.status == TaskStatus.IN_PROGRESS and task.owner == "bob"

    # The member is told the branch moved, syncs, and finds the markers in its file.
    seen, note = wt.moved("bob", None)
    assert note is not None and "sync" in note and "alice" in note
    assert wt.moved("bob", seen) == (seen, None)  # once per move
    synced = wt.sync("bob")
    assert synced.conflicts == ("notes.txt",)
    assert "<<<<<<<" in (b / "notes.txt").read_text()
    with pytest.raises(MergeRefused, match="conflict markers"):
        team.complete(tb[0], "bob", tb[1], "done")  # markers left: refused, nothing moved
    assert rev(repo, "accord/main") == before
    (b / "notes.txt").write_text("one\nTWO by alice\ntwo by bob\nthree\n")
    team.complete(tb[0], "bob", tb[1], "resolved")
    assert team.board.get(tb[0]).status == TaskStatus.COMPLETED
    assert sh(repo, "show", "accord/main:notes.txt") == "one\nTWO by alice\ntwo by bob\nthree"
    assert not (Path(sh(b, "rev-parse", "--absolute-git-dir")) / "MERGE_HEAD").exists()
    # The member goes on from the integrated state; the person's branch never moved.
    assert rev(repo, "accord/main@bob") == rev(repo, "accord/main")
    assert sh(b, "status", "--porcelain") == ""
    assert rev(repo, "main") == person and sh(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert sh(repo, "status", "--porcelain") == ""
    kinds = [e.kind for e in team.log.read_events()]
    assert kinds.count("task_merged") == 2 and "merge_refused" in kinds
    assert "member_synced" in kinds and kinds.count("worktree_made") == 2


def test_a_hook_runs_on_the_merged_tree_and_can_refuse(repo: Path) -> None:
    # What the hook saw goes to its stderr (the hook_run event keeps it): a sandboxed
    # hook may write only its own folder.
    hook = "cat notes.txt >&2; grep -q bob notes.txt || { echo no bob >&2; exit 2; }"
    team = bind(repo, f"[hooks]\nTaskCompleted = [{json.dumps(hook)}]\n")
    a = team.worktrees.workspace("alice")
    (a / "notes.txt").write_text("alice\n")
    tid, token = task_for(team, "alice", "write")
    before = rev(repo, "accord/main")
    with pytest.raises(HookBlocked) as blocked:
        team.complete(tid, "alice", token, "done")
    # It saw the merged tree, not the project folder.
    assert blocked.value.feedback.startswith("alice\n") and "no bob" in blocked.value.feedback
    assert rev(repo, "accord/main") == before and (repo / "notes.txt").read_text() != "alice\n"
    assert team.board.get(tid).status == TaskStatus.IN_PROGRESS
    (a / "notes.txt").write_text("alice and bob\n")
    team.complete(tid, "alice", token, "done")
    assert hook_saw(team)[-1] == "alice and bob\n"
    assert sh(repo, "show", "accord/main:notes.txt") == "alice and bob"


def hook_saw(team: Team) -> list[str]:
    """What each TaskCompleted hook run wrote to its stderr, in order."""
    runs = [e for e in team.log.read_events() if e.kind == "hook_run"]
    return [str(e.payload["stderr"]) for e in runs if e.payload["event"] == "TaskCompleted"]


def test_the_tools_complete_through_the_gate_and_sync(repo: Path) -> None:
    team = bind(repo)
    box = Toolbox(all_tools())
    ctxs = {}
    for m in ("alice", "bob"):
        ctxs[m] = ToolContext(workspace=team.worktrees.workspace(m), member=m, team=team)
        tid, token = task_for(team, m, f"{m}'s edit")
        ctxs[m].claims[tid] = HeldClaim(tid, token)
        (ctxs[m].workspace / "notes.txt").write_text(f"{m} was here\n")

    def call(m: str, name: str, **args: object) -> tuple[str, bool]:
        r = box.execute(ctxs[m], ToolCall("c", name, dict(args), ""))
        return r.content, r.is_error

    assert call("alice", "task_complete", task_id=1, result="ok") == (
        "task #1 is completed",
        False,
    )
    text, error = call("bob", "task_complete", task_id=2, result="ok")
    assert error and "conflicts with the team's branch accord/main in notes.txt" in text
    assert "bob was here" in text and "Call sync" in text
    # the refusal is a setback whose lesson the loop asks for (accord.agent.learning)
    [setback] = ctxs["bob"].setbacks
    assert (setback.task_id, setback.attempt, setback.cause.value) == (2, 1, "merge_refused")
    assert "notes.txt" in setback.evidence
    text, error = call("bob", "sync")
    assert not error and "conflicts in:\n- notes.txt" in text
    (ctxs["bob"].workspace / "notes.txt").write_text("alice was here\nbob was here\n")
    assert call("bob", "task_complete", task_id=2, result="ok") == ("task #2 is completed", False)
    assert sh(repo, "show", "accord/main:notes.txt") == "alice was here\nbob was here"


KILLED = """
import sys
from pathlib import Path
sys.path.insert(0, {src!r})
from accord.config import Config
from accord.store import open_store
from accord.team import Team
import tomllib
root = Path({root!r})
config = Config.model_validate(tomllib.loads((root / "accord.toml").read_text()))
team = Team(open_store(str(root / ".accord" / "accord.db")), "main", config, root)
team.complete({task}, "alice", {token}, "done")
"""


def test_kill_9_in_the_middle_of_a_merge_leaves_the_branch_whole_and_the_lock_free(
    repo: Path,
) -> None:
    # The hook marks its own folder (the gate's scratch tree, all a sandboxed hook may write).
    team = bind(repo, '[hooks]\nTaskCompleted = ["touch hook-started; sleep 60"]\n')
    mark = team.worktrees.scratch / "hook-started"
    a = team.worktrees.workspace("alice")
    (a / "new.txt").write_text("new\n")
    tid, token = task_for(team, "alice", "slow check")
    before = rev(repo, "accord/main")
    src = str(Path(__file__).resolve().parent.parent / "src")
    script = KILLED.format(src=src, root=str(repo), task=tid, token=token)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        until(mark.exists, timeout=30)
        os.killpg(proc.pid, signal.SIGKILL)  # the member and its hook, mid-merge
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert rev(repo, "accord/main") == before  # the old tip: never half-updated
    fd = os.open(team.worktrees.common_dir / "accord-main.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: the kernel let it go
    finally:
        os.close(fd)
    assert team.board.get(tid).status == TaskStatus.IN_PROGRESS
    # The member tries again (its hook now quick) and the gate goes through.
    (repo / "accord.toml").write_text("")
    again = Team(team.store, "main", Config(), repo)
    again.complete(tid, "alice", token, "done")
    assert sh(repo, "show", "accord/main:new.txt") == "new"


def test_a_worktree_deleted_by_hand_is_made_again_with_its_commits(repo: Path) -> None:
    team = bind(repo)
    a = team.worktrees.workspace("alice")
    (a / "kept.txt").write_text("kept\n")
    tip = team.worktrees.commit_pending("alice", "work in progress")
    again = team.worktrees.workspace("alice")  # a restart: the same folder, re-attached
    assert again == a
    import shutil

    shutil.rmtree(a)
    made = team.worktrees.workspace("alice")
    assert made == a and (a / "kept.txt").read_text() == "kept\n"
    assert rev(repo, "accord/main@alice") == tip
    hows = [e.payload["how"] for e in team.log.read_events() if e.kind == "worktree_made"]
    assert hows == ["created", "recreated"]


def test_worktree_mode_outside_git_is_one_error_line(project: Path, cli: Cli) -> None:
    folder = project
    (folder / ".accord").mkdir()
    team = bind(folder, '[team]\nisolation = "worktree"\n')
    with pytest.raises(NotARepository, match='isolation = "shared"'):
        team.worktrees.workspace("alice")
    done = cli("run", "do it", "--model", "scripted:/nowhere.json")
    assert done.code == 2, done.err
    assert done.err.startswith("error: ") and len(done.err.strip().splitlines()) == 1
    assert 'isolation = "shared"' in done.err
    assert team.runs.get() is None  # nothing was written
    # Unset, a folder that is not a repository is shared: the project folder.
    shared = Team(team.store, "main", Config(), folder)
    assert not shared.worktrees.active and shared.worktrees.workspace("alice") == folder


def test_a_dirty_tree_at_start_is_said_and_left_out(repo: Path) -> None:
    team = bind(repo)
    (repo / "notes.txt").write_text("uncommitted\n")
    note = team.worktrees.start()
    assert note is not None and "1 uncommitted change(s)" in note
    assert sh(repo, "show", "accord/main:notes.txt") == "one\ntwo\nthree"
    assert (repo / "notes.txt").read_text() == "uncommitted\n"  # the person's, untouched
    started = [e for e in team.log.read_events() if e.kind == "integration_started"]
    assert started[0].payload["dirty"] == 1 and started[0].payload["base"] == "main"
    assert team.worktrees.start() is None  # made once


def test_clean_up_refuses_unmerged_work_without_force(repo: Path, cli: Cli) -> None:
    team = bind(repo)
    a = team.worktrees.workspace("alice")
    (a / "wip.txt").write_text("wip\n")
    removed = cli("member", "remove", "alice")
    assert removed.code == 2 and removed.err.startswith("error: alice's worktree")
    assert "--force" in removed.err and len(removed.err.strip().splitlines()) == 1
    assert "alice" in [m.name for m in team.roster.list()] and a.exists()
    team.worktrees.commit_pending("alice", "wip")  # committed, still not merged
    deleted = cli("team", "delete", "main")
    assert deleted.code == 2 and "not in accord/main" in deleted.err
    forced = cli("member", "remove", "alice", "--force")
    assert forced.code == 0 and "worktree and branch were removed" in forced.out
    assert not a.exists() and rev(repo, "accord/main@alice") is None
    team.worktrees.workspace("bob")
    assert cli("team", "delete", "main").code == 0  # bob's was clean
    assert rev(repo, "accord/main@bob") is None and rev(repo, "accord/main") is not None


def test_accord_merge_only_on_the_base_branch_with_a_clean_tree(repo: Path, cli: Cli) -> None:
    team = bind(repo)
    a = team.worktrees.workspace("alice")
    (a / "feature.txt").write_text("feature\n")
    tid, token = task_for(team, "alice", "feature")
    team.complete(tid, "alice", token, "done")
    sh(repo, "switch", "-q", "-c", "elsewhere")
    away = cli("merge")
    assert away.code == 2
    assert "Run: git switch main && git merge --no-ff accord/main" in away.err
    assert not (repo / "feature.txt").exists()
    sh(repo, "switch", "-q", "main")
    (repo / "notes.txt").write_text("dirty\n")
    dirty = cli("merge")
    assert dirty.code == 2 and "uncommitted changes" in dirty.err
    sh(repo, "checkout", "-q", "--", "notes.txt")
    done = cli("merge")
    assert done.code == 0, done.err
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert sh(repo, "log", "-1", "--format=%P", "main").count(" ") == 1  # --no-ff
    assert cli("merge").code == 3  # nothing left to merge
    with pytest.raises(NothingToDo):
        team.worktrees.merge_into_base()


def test_the_person_completing_for_a_member_goes_through_the_gate(repo: Path, cli: Cli) -> None:
    team = bind(repo)
    a = team.worktrees.workspace("alice")
    (a / "by-hand.txt").write_text("x\n")
    tid, token = task_for(team, "alice", "by hand")
    done = cli("task", "complete", str(tid), "--as", "alice", "--token", str(token))
    assert done.code == 0, done.err
    assert sh(repo, "show", "accord/main:by-hand.txt") == "x"


def test_the_gate_never_trusts_the_worktrees_head(repo: Path) -> None:
    team = bind(repo)
    a = team.worktrees.workspace("alice")
    sh(a, "checkout", "-q", "--detach", "main")  # pointed elsewhere, by hand
    (a / "mine.txt").write_text("mine\n")
    tid, token = task_for(team, "alice", "mine")
    team.complete(tid, "alice", token, "done")
    assert sh(repo, "show", "accord/main:mine.txt") == "mine"
    assert sh(a, "symbolic-ref", "--short", "HEAD") == "accord/main@alice"
    assert rev(repo, "main") != rev(repo, "accord/main")  # the person's branch stayed


def test_isolation_shared_keeps_the_project_folder(repo: Path) -> None:
    team = bind(repo, '[team]\nisolation = "shared"\n')
    assert team.worktrees.workspace("alice") == repo


def _mate(path: Path, task: int, mine: str) -> str:
    """A teammate that edits the second line of notes.txt, completes, and on a conflict
    syncs, resolves to both lines with bash and completes again."""
    both = "printf 'one\\nTWO by alice\\ntwo by bob\\nthree\\nfour\\n' > notes.txt"
    done = ("task_complete", {"task_id": task, "result": "edited"})
    return rules(
        path,
        [
            {
                "if": f"Your task #{task}",
                "once": True,
                "then": calls(("write_file", {"path": "notes.txt", "content": mine})),
            },
            {"if": "notes.txt (4 lines", "then": calls(done)},
            {"if": "conflicts with the team's branch", "then": calls(("sync", {}))},
            {"if": "conflicts in:", "then": calls(("bash", {"command": both}))},
            {"if": "[exit code 0]", "then": calls((done[0], {**done[1], "result": "resolved"}))},
        ],
    )


def test_two_teammates_one_conflict_resolved_both_merged_and_checked(tmp_path: Path) -> None:
    """The issue's end-to-end run, with real processes: alice and bob edit the same line
    in their worktrees; one completes, the other is refused with the conflict, syncs,
    resolves and completes; both tasks are on accord/main, and the TaskCompleted hook
    ran on the merged tree each time."""
    root = make_repo(tmp_path)
    (root / "notes.txt").write_text("one\ntwo\nthree\nfour\n")
    hook = "{ pwd; cat notes.txt; } >&2"  # kept in the hook_run event
    (root / "accord.toml").write_text(
        f"[run]\ngrace = 5\n\n[hooks]\nTaskCompleted = [{json.dumps(hook)}]\n"
    )
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "settings")
    person = rev(root, "main")
    alice = _mate(tmp_path / "alice.json", 1, "one\nTWO by alice\nthree\nfour\n")
    bob = _mate(tmp_path / "bob.json", 2, "one\ntwo by bob\nthree\nfour\n")
    lead = rules(
        tmp_path / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "go", "model": alice}),
                    ("spawn_teammate", {"name": "bob", "instructions": "go", "model": bob}),
                ),
            },
            {
                # Both idle, so both worktrees are made from the same commit: the tasks
                # go on the board only now, or a late starter would begin from the
                # other's merged work and there would be no conflict.
                "if": "idle, $0.00)\n- bob (teammate, idle",
                "once": True,
                "then": calls(
                    ("task_create", {"title": "alice's line", "assignee": "alice"}),
                    ("task_create", {"title": "bob's line", "assignee": "bob"}),
                ),
            },
            # The second to complete is the one refused: it resolves, and that ends it.
            {"if": ": resolved", "then": calls(("finish", {"summary": "both merged"}))},
        ],
        "Waiting.",
    )
    done = accord(root, "run", "edit notes", "--model", lead, "--display", "plain", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "merge it with `accord merge --team main`" in done.stdout
    merged_text = "one\nTWO by alice\ntwo by bob\nthree\nfour"
    assert sh(root, "show", "accord/main:notes.txt") == merged_text
    with open_store(str(root / ".accord" / "accord.db")) as s:
        assert [t.status for t in s.list_tasks("main")] == [TaskStatus.COMPLETED] * 2
        events = s.read_events("main")
        loser = next(e.payload["member"] for e in events if e.kind == "merge_refused")
        heard = [str(t.body) for t in s.read_transcript("main", loser)]
    # The refused member was told, with a tool result, that the team's branch moved.
    assert any("moved under you" in h and "call sync" in h.lower() for h in heard)
    refused = [e.payload for e in events if e.kind == "merge_refused"]
    assert [(r["why"], r["files"]) for r in refused] == [("conflict", ["notes.txt"])]
    merged = [e.payload for e in events if e.kind == "task_merged"]
    assert sorted(m["id"] for m in merged) == [1, 2] and all(m["merged"] for m in merged)
    checks = [
        str(e.payload["stderr"])
        for e in events
        if e.kind == "hook_run" and e.payload["event"] == "TaskCompleted"
    ]
    assert len(checks) == 2 and all(".accord/worktrees/main/.gate" in c for c in checks)
    assert "TWO by alice\ntwo by bob" in checks[-1]  # the hook saw the merged tree
    # The person's checkout and branch were never touched.
    assert rev(root, "main") == person and sh(root, "status", "--porcelain") == ""
    assert (root / "notes.txt").read_text() == "one\ntwo\nthree\nfour\n"


def test_git_runs_without_an_identity_and_ignores_a_stray_git_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI has no git identity, and a hook or a shell may export GIT_DIR.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    root = make_repo(tmp_path)
    assert sh(root, "log", "-1", "--format=%an <%ae>") == "accord <accord@localhost>"
    assert not (tmp_path / "elsewhere").exists()


def test_a_held_merge_lock_times_out_with_a_clear_error(repo: Path) -> None:
    team = bind(repo)
    team.worktrees.start()
    with team.worktrees.locked(), pytest.raises(MergeBusy, match="held its merge lock"):
        with team.worktrees.locked(wait=0.1):
            pass
    with team.worktrees.locked(wait=0.1):  # free again once its holder let go
        pass


def test_hooks_a_member_runs_run_in_its_worktree_not_the_persons_checkout(repo: Path) -> None:
    from accord.agent.launch import build_agent
    from accord.llm.scripted import ScriptedModel
    from accord.types import HookEvent

    team = bind(repo, '[hooks]\nTaskCreated = "pwd >&2; exit 2"\n')
    mine = team.worktrees.workspace("alice")
    build_agent(team, "alice", team.config, repo, model=ScriptedModel([]), workspace=mine)
    outcome = team.hooks.run(HookEvent.TASK_CREATED, {"task_id": "1"}, "alice")
    assert outcome.blocked and outcome.feedback.strip().endswith(str(mine)), outcome.feedback
    # The merge gate still names its own folder, and the person's commands the root.
    assert team.hooks.cwd == repo
