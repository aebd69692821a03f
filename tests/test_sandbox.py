"""The sandbox around members' commands, through the real bash tool, real bwrap and real git.

A member's bash command cannot act as another member (the ``accord`` CLI refuses to
reach the store, with or without ``ACCORD_SANDBOX``), read another process's
environment, open the store with sqlite3, write ``accord.toml`` or ``.claude/``,
move the person's branches, or reach the network when it is off; its worktree is
writable and the rest read-only, ``/tmp`` is its own, and it holds no secret. Hooks
are walled in too. Without bubblewrap a teammate's command is refused, or run after
one warning when ``[sandbox] required = false``; the person's hooks still run.

Skipped only where the kernel refuses namespaces; under ACCORD_REQUIRE_SANDBOX=1
(CI) that is a failure instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from accord import sandbox
from accord.agent.definition import parse_definition
from accord.agent.launch import build_agent
from accord.agent.tools.base import ToolContext
from accord.agent.tools.shell import BashArgs, bash
from accord.config import Config, SandboxConfig, locate
from accord.errors import ConfigError, UserError
from accord.llm.scripted import ScriptedModel
from accord.sandbox import Sandbox
from accord.store import open_store
from accord.team import Team
from accord.testing.cli import js, ok
from accord.types import HookEvent
from conftest import Cli, configure, dump, store_path

REQUIRED = os.environ.get("ACCORD_REQUIRE_SANDBOX") == "1"
SECRET = "sk-ant-planted-0123456789"


@pytest.fixture
def walls(monkeypatch: pytest.MonkeyPatch) -> None:
    """bwrap works here, or the test is skipped (failed under ACCORD_REQUIRE_SANDBOX=1);
    the `accord` command is on PATH, as in a member's shell (the venv read-only inside)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    state = sandbox.available()
    if not state.ok:
        if REQUIRED:
            pytest.fail(f"ACCORD_REQUIRE_SANDBOX=1 but {state.why}")
        pytest.skip(state.why)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def tokens(cli: Cli, project: Path) -> dict[str, str]:
    """A git project with team main (alice, bob), hooks-free settings and a Claude Code
    settings file; alice's worktree at .accord/worktrees/main/alice. Returns tokens."""
    ok(cli("init", "--team", "main"))
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text("{}\n")
    (project / ".gitignore").write_text(".accord/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "start")
    git(project, "worktree", "add", "-q", "-b", "accord/main/alice", str(worktree(project)))
    return {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice", "bob")}


def worktree(project: Path) -> Path:
    return project / ".accord" / "worktrees" / "main" / "alice"


@contextmanager
def member(project: Path, workspace: Path, *, network: bool = False) -> Iterator[ToolContext]:
    """alice's tool context, as her process builds it: her sandbox and her identity."""
    found = locate(project)
    store = open_store(found.store_location)
    services = Team.open(store, "main", found.config, found.root)
    wall = Sandbox.for_project(
        found.root, workspace, services.location, found.config.sandbox, network=network
    )
    env = {"ACCORD_MEMBER": "alice", "ACCORD_TEAM": "main", "ACCORD_TOKEN": SECRET}
    try:
        yield ToolContext(workspace, "alice", services, env, bash_timeout=30, sandbox=wall)
    finally:
        store.close()


def run(ctx: ToolContext, command: str) -> tuple[int, str]:
    """The bash tool's exit code and output for ``command``."""
    status, _, text = bash(ctx, BashArgs(command=command)).partition("\n")
    assert status.startswith("[exit code "), status
    return int(status.removeprefix("[exit code ").rstrip("]")), text


def test_impersonation_attempts_all_fail_and_leave_the_store_unchanged(
    cli: Cli, project: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch, walls: None
) -> None:
    ok(cli("task", "add", "bob's work"))
    claim = js(cli("task", "claim", "--as", "bob", "--json"))
    bob_token = str(claim["fencing_token"])
    before = dump(store_path(project))
    # A real process holding a secret in its environment, as a member process would.
    holder = subprocess.Popen(
        ["sleep", "60"], env={"ACCORD_TOKEN": tokens["bob"], "PATH": os.environ["PATH"]}
    )
    store = store_path(project)
    try:
        with member(project, worktree(project)) as ctx:
            for unset in ("", " -u ACCORD_SANDBOX"):
                code, out = run(
                    ctx,
                    f"env -u ACCORD_MEMBER -u ACCORD_TOKEN{unset} accord task complete 1 "
                    f"--as bob --token {bob_token} --result mine",
                )
                assert code == 2, out
                assert out.startswith("error: ") and "the store is out of reach" in out
                assert "act through your team tools" in out
            code, out = run(ctx, f"tr '\\0' '\\n' < /proc/{holder.pid}/environ")
            assert code != 0 and tokens["bob"] not in out and "No such file" in out
            code, out = run(ctx, "cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
            assert tokens["bob"] not in out and SECRET not in out
            for path in (store, Path(f"{store}-wal")):
                code, out = run(
                    ctx,
                    f'python3 -c \'import sqlite3; c = sqlite3.connect("{path}"); '
                    f'c.execute("CREATE TABLE pwned (x)"); c.commit()\'',
                )
                assert code != 0 and "sqlite3.OperationalError" in out, out
            for folder in (project, worktree(project)):
                for name in ("accord.toml", ".claude/settings.json"):
                    code, out = run(ctx, f"echo '# pwned' >> {folder / name}")
                    assert code != 0 and "Read-only file system" in out, (folder, name, out)
                code, out = run(ctx, f"rm -rf {folder / '.claude'} {folder / 'accord.toml'}")
                assert code != 0
            # Even as root with the namespaces' tools, the walls stay up.
            code, out = run(ctx, f"mount -o remount,rw {project}; touch {project}/escaped")
            assert code != 0 and not (project / "escaped").exists()
            code, out = run(ctx, "rmdir /.accord-sandbox || rm -rf /.accord-sandbox")
            assert code != 0
    finally:
        holder.kill()
        holder.wait()
    assert dump(store) == before
    assert "pwned" not in (project / "accord.toml").read_text()
    assert (project / ".claude" / "settings.json").read_text() == "{}\n"
    task = js(cli("task", "show", "1", "--json"))  # the person's own CLI still works
    assert task["status"] != "completed" and task["owner"] == "bob"
    monkeypatch.setenv("ACCORD_SANDBOX", "1")  # and refuses by the variable alone too
    r = cli("task", "list")
    assert r.code == 2 and "the store is out of reach" in r.err


def test_the_worktree_is_writable_and_the_rest_read_only_with_no_secret(
    project: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch, walls: None
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ACCORD_STORE", str(store_path(project)))
    home = worktree(project)
    with member(project, home) as ctx:
        code, out = run(
            ctx,
            "echo hi > made.txt && echo private > /tmp/mine && cat /tmp/mine && "
            "git status --porcelain && env",
        )
        assert code == 0, out
        assert (home / "made.txt").read_text() == "hi\n" and not Path("/tmp/mine").exists()
        assert "private" in out and "?? made.txt" in out
        assert SECRET not in out and "ACCORD_TOKEN" not in out and "ACCORD_STORE" not in out
        assert "ACCORD_SANDBOX=1" in out and "ACCORD_MEMBER=alice" in out
        code, out = run(ctx, f"touch {project}/escaped")
        assert code != 0 and "Read-only file system" in out
        assert not (project / "escaped").exists()
        # The person's branches and the repository's refs are out of reach.
        code, out = run(ctx, "git add made.txt")
        assert code != 0, out
        code, out = run(ctx, "git branch -f main HEAD~0 2>&1; git update-ref refs/heads/x HEAD")
        assert code != 0
        # The store and the notes are not there to see: the store's files read as empty.
        code, out = run(ctx, f"cd {project / '.accord'} && ls -A && cat accord.db* | wc -c")
        *names, size = out.split()
        assert size == "0" and "config-checked" not in names and "worktrees" in names
    assert git(project, "branch", "--list", "x") == ""
    # A workspace without .claude/: what a command writes there does not outlive it.
    bare = project / "bare"
    bare.mkdir()
    with member(project, bare) as ctx:
        assert run(ctx, "echo '{}' > .claude/settings.json && ls .claude") == (
            0,
            "settings.json\n",
        )
    assert list((bare / ".claude").iterdir()) == []


def test_the_network_is_off_unless_allowed(
    project: Path, tokens: dict[str, str], walls: None
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        reach = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo reached"
        with member(project, worktree(project)) as ctx:
            code, out = run(ctx, reach)
            assert code != 0 and "reached" not in out and "Connection refused" in out
        with member(project, worktree(project), network=True) as ctx:
            code, out = run(ctx, reach)
            assert code == 0 and "reached" in out


def test_hooks_run_sandboxed_in_their_folder(
    project: Path, tokens: dict[str, str], walls: None
) -> None:
    configure(
        project,
        f"""
        [hooks]
        TaskCompleted = "touch here; touch {project}/escaped; accord task list"
        """,
    )
    scratch = project / "scratch"
    scratch.mkdir()
    found = locate(project)
    with open_store(found.store_location) as store:
        team = Team.open(store, "main", found.config, found.root)
        outcome = team.hooks.run(HookEvent.TASK_COMPLETED, {"task_id": "1"}, None, cwd=scratch)
    assert (scratch / "here").exists() and not (project / "escaped").exists()
    (hook,) = outcome.runs
    assert hook.exit_code == 2 and "Read-only file system" in hook.stderr
    assert "the store is out of reach" in hook.stderr


def events(cli: Cli, kind: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in js(cli("events", "--json")) if e["kind"] == kind]


def test_without_bubblewrap_teammates_are_refused_or_warned_and_the_person_runs(
    cli: Cli,
    project: Path,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Installed but refused, as where the kernel allows no user namespaces.
    refused = project / "refused-bwrap"
    refused.write_text("#!/bin/sh\necho 'bwrap: No permissions to create a namespace' >&2; exit 1")
    refused.chmod(0o755)
    monkeypatch.setenv("ACCORD_BWRAP", str(refused))
    state = sandbox.available()
    assert not state.ok and "refused here (bwrap: No permissions" in state.why
    monkeypatch.setenv("ACCORD_BWRAP", str(project / "no-bwrap-here"))
    assert sandbox.available().why == "bubblewrap (bwrap) is not installed"
    with member(project, project) as ctx:
        for _ in range(2):
            with pytest.raises(UserError, match="bubblewrap.*required = false"):
                bash(ctx, BashArgs(command="touch refused"))
        assert not (project / "refused").exists()
        assert ctx.sandbox is not None
        ctx.sandbox = Sandbox.for_project(
            project, project, ctx.sandbox.store, SandboxConfig(required=False)
        )
        assert run(ctx, "touch ran; echo ok") == (0, "ok\n")
        assert run(ctx, "echo again") == (0, "again\n")
    assert (project / "ran").exists()
    warned = capsys.readouterr().err
    assert warned.count("warning: ") == 2  # said once each, however many calls
    assert warned.count("teammates' commands run WITHOUT a sandbox") == 1
    # The person's hooks are never refused for it; a teammate's are, when required.
    configure(project, '[hooks]\nTaskCompleted = "touch hooked"\n')
    found = locate(project)
    assert found.config.sandbox.required is True
    with open_store(found.store_location) as store:
        team = Team.open(store, "main", found.config, found.root)
        assert not team.hooks.run(HookEvent.TASK_COMPLETED, {}, None).blocked
        assert (project / "hooked").exists()
        (project / "hooked").unlink()
        team.hooks.for_teammate = True
        outcome = team.hooks.run(HookEvent.TASK_COMPLETED, {}, "alice")
    assert outcome.blocked and "required = false" in outcome.feedback
    assert not (project / "hooked").exists()
    said = [(e["what"], e["member"], e["reason"]) for e in events(cli, "sandbox_unavailable")]
    assert [s[:2] for s in said] == [("bash", "alice"), ("bash", "alice"), ("hook", None)]
    assert "run only in its sandbox" in said[0][2] and "WITHOUT" in said[1][2]
    assert "the person's hooks run WITHOUT a sandbox" in said[2][2]


def test_a_sandbox_is_built_from_the_settings_and_the_definition(
    project: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_socket = project / "agent.sock"
    agent_socket.write_text("")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent_socket))
    config = Config.model_validate({"sandbox": {"hide": ["~/.ssh"], "writable": ["/var/tmp"]}})
    wall = Sandbox.for_project(project, worktree(project), "postgresql://h/db", config.sandbox)
    assert wall.hide == (Path(os.path.realpath(Path("~/.ssh").expanduser())),)
    options = wall.options(worktree(project))
    pairs = list(zip(options, options[1:], strict=False))
    assert ("--unshare-net", "--die-with-parent") in pairs and ("--cap-drop", "ALL") in pairs
    assert ("--bind", "/var/tmp") in pairs and ("/dev/null", str(agent_socket)) in pairs
    for folder in ("/run/postgresql", "/run/user"):  # a Unix socket ignores read-only
        if Path(folder).is_dir():
            assert ("--tmpfs", folder) in pairs
    # The worktree is bound writable after .accord is hidden: the later mount wins.
    hidden = pairs.index(("--tmpfs", str(project / ".accord")))
    assert pairs.index(("--bind", str(worktree(project)))) > hidden
    # A member's process builds its own, with its definition's `network: true`, and
    # marks its hooks as a teammate's.
    (project / ".accord" / "agents").mkdir()
    (project / ".accord" / "agents" / "web.md").write_text("---\nnetwork: true\n---\nHi.\n")
    found = locate(project)
    with open_store(found.store_location) as store:
        services = Team.open(store, "main", found.config, found.root)
        agent = build_agent(
            services,
            "alice",
            found.config,
            found.root,
            model=ScriptedModel(),
            definition_name="web",
            workspace=worktree(project),
        )
        assert services.hooks.for_teammate is True
    mine = agent.ctx.sandbox
    assert mine is not None and mine.network and mine.teammate and mine.required
    assert (mine.root, mine.workdir) == (project, worktree(project))
    assert "--unshare-net" not in mine.options(worktree(project))
    with pytest.raises(ConfigError, match="network"):
        parse_definition("---\nnetwork: maybe\n---\n", "x.md", "x")


def test_accords_own_python_under_tmp_stays_visible(
    walls: None, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A clone and its virtual environment under /tmp (as CI's may be): the private /tmp
    # must not hide the interpreter a command or hook runs accord with.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "marker").write_text("here\n")
    monkeypatch.setattr(sys, "prefix", str(venv))
    wall = Sandbox.for_project(project, project, str(store_path(project)))
    bwrap = sandbox.bwrap_path() or "bwrap"
    argv = [bwrap, *wall.options(project), "--", "/bin/cat", str(venv / "bin" / "marker")]
    seen = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert seen.returncode == 0 and seen.stdout == "here\n", seen.stderr
    # ...and nothing else of /tmp is.
    (tmp_path / "other").write_text("secret\n")
    argv[-1] = str(tmp_path / "other")
    assert subprocess.run(argv, capture_output=True, timeout=30).returncode != 0
