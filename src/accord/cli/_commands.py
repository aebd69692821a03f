"""One function per command: parse nothing, decide nothing, call a service, render."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from accord import credentials
from accord._where import Where, where
from accord.cli import _render as show
from accord.errors import InvalidState, NothingToDo, UserError
from accord.team import pick_team
from accord.text import strip_control as plain
from accord.types import (
    PERSON,
    MemberRole,
    MemberStatus,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    Message,
    MessageKind,
    NewMemory,
    NewTask,
    Task,
    TaskChanges,
    TaskStatus,
    UsageTotal,
    check_name,
    to_json,
)

if TYPE_CHECKING:
    # Imported where used: a read command must not pay for config's validator (pydantic),
    # the hooks or memory before it can start.
    from accord.config import Project
    from accord.memory import Memory
    from accord.store import Store
    from accord.team import TeamServices
    from accord.team.mailbox import Mailbox


class Context:
    """What a command needs, opened only when first asked for."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @cached_property
    def project(self) -> Project:
        from accord.config import locate

        return locate(Path.cwd(), getattr(self.args, "store", None))

    @cached_property
    def where(self) -> Where:
        """The store and default team, without validating all of accord.toml when it can."""
        found = where(Path.cwd(), getattr(self.args, "store", None))
        if found is not None:
            return found
        p = self.project
        return Where(
            p.root,
            p.store_location,
            p.config.store.synchronous,
            p.config.store.busy_timeout,
            p.config.team.default,
            p.config.mailbox.visibility_timeout,
        )

    @cached_property
    def store(self) -> Store:
        from accord.store import open_store

        w = self.where
        return open_store(w.store_location, synchronous=w.synchronous, busy_timeout=w.busy_timeout)

    @cached_property
    def team_name(self) -> str:
        return pick_team(
            self.store,
            getattr(self.args, "team", None),
            os.environ.get("ACCORD_TEAM"),
            self.where.default_team,
        )

    @cached_property
    def team(self) -> TeamServices:
        from accord.team import TeamServices

        return TeamServices.open(self.store, self.team_name, self.project.config, self.project.root)

    @cached_property
    def mailbox(self) -> Mailbox:
        from accord.team.mailbox import Mailbox

        return Mailbox(self.store, self.team_name, self.where)

    @cached_property
    def actor(self) -> str | None:
        """The verified member this process acts for, or None for a person."""
        from accord.team.roster import acting_member

        return acting_member(
            self.store,
            self.team_name,
            os.environ.get("ACCORD_MEMBER"),
            credentials.get("ACCORD_TOKEN"),
        )

    def acting_as(self, name: str) -> str:
        """Check this caller may act as ``name`` (its token, when it is an agent)."""
        from accord.team.roster import may_act_as

        may_act_as(
            self.store,
            self.team_name,
            name,
            os.environ.get("ACCORD_MEMBER"),
            credentials.get("ACCORD_TOKEN"),
        )
        return name

    @property
    def me(self) -> str:
        """Who "you" are when a command is not told: the agent running it, else the person."""
        return os.environ.get("ACCORD_MEMBER") or PERSON

    def done(self) -> None:
        """The command succeeded: if it validated accord.toml, note the text as checked,
        so later reads may skip the validator while the file stays as it is."""
        project = self.__dict__.get("project")
        if project is not None and project.config_path is not None:
            from accord._where import remember

            remember(project.root)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


Command = Callable[[Context], int]


def _json(ctx: Context) -> bool:
    return bool(getattr(ctx.args, "json", False))


# What a model or a teammate wrote is printed for people without the escape sequences
# and control characters that would rewrite their terminal; JSON keeps it exact.


def _plain_task(t: Task) -> Task:
    return dataclasses.replace(
        t,
        title=plain(t.title),
        description=plain(t.description),
        result=None if t.result is None else plain(t.result),
        reason=None if t.reason is None else plain(t.reason),
    )


def _plain_message(m: Message) -> Message:
    summary = None if m.summary is None else plain(m.summary)
    return dataclasses.replace(m, body=plain(m.body), summary=summary)


# init ---------------------------------------------------------------------


def init(ctx: Context) -> int:
    from accord.config import CONFIG_NAME, CONFIG_TEMPLATE, STATE_DIR, locate
    from accord.store import check_store_url, open_store, redact, store_exists

    here = Path.cwd()
    location = ctx.args.store or os.environ.get("ACCORD_STORE")
    # Refuse bad input before anything is written, so a failed init leaves no files behind.
    if ctx.args.team is not None:
        check_name(ctx.args.team, "team name")
    if location and "://" not in location and Path(location).expanduser().is_dir():
        raise UserError(f"{location} is a folder, not a store; pass the path of a file to create")
    made: list[str] = []
    config_path = here / CONFIG_NAME
    url = location if location and "://" in location else None
    if url:
        # A malformed URL, or a server that cannot be reached, leaves no files behind.
        check_store_url(url)
        fresh = not store_exists(url)
        open_store(url, create=True).close()  # a missing database, say, is refused here
    if not config_path.exists():
        text = CONFIG_TEMPLATE
        if ctx.args.store and "://" not in ctx.args.store:
            # Record the chosen store so later commands find it without --store.
            chosen = Path(ctx.args.store).expanduser().resolve()
            shown = os.path.relpath(chosen, here) if chosen.is_relative_to(here) else str(chosen)
            text = text.replace('# path = ".accord/accord.db"', f"path = {json.dumps(shown)}")
        elif ctx.args.store and url and redact(url) == url:
            # A URL without a password is as safe to commit as a path; one with a
            # password is not written down (the hint below says what to do instead).
            text = text.replace('# path = ".accord/accord.db"', f"path = {json.dumps(url)}")
        config_path.write_text(text, encoding="utf-8")
        made.append(CONFIG_NAME)
    project = locate(here, location, must_exist=False)
    state = here / STATE_DIR
    if not state.exists():
        state.mkdir()
        (state / ".gitignore").write_text("*\n", encoding="utf-8")
        made.append(f"{STATE_DIR}/")
    store_path = project.store_location
    cfg = project.config.store
    if not url:  # the store named by accord.toml, or the default file
        fresh = not store_exists(store_path)
    with open_store(
        store_path, create=True, synchronous=cfg.synchronous, busy_timeout=cfg.busy_timeout
    ) as store:
        if fresh:
            made.append(
                f"the store in {redact(store_path)}"
                if "://" in store_path
                else os.path.relpath(store_path, here)
            )
        if ctx.args.team:
            store.create_team(ctx.args.team)
            made.append(f"team {ctx.args.team}")
    if made:
        show.say(f"created {', '.join(made)} in {here}")
    else:
        show.say(f"already initialised: {redact(store_path)}")
    if url and redact(url) != url and ctx.args.store:
        show.say(
            "the store's URL holds a password, so accord.toml does not name it: set "
            "ACCORD_STORE for later commands, or keep the password in ~/.pgpass"
        )
    if not ctx.args.team:
        show.say("next: accord team create NAME")
    return 0


# teams --------------------------------------------------------------------


def team_create(ctx: Context) -> int:
    team = ctx.store.create_team(ctx.args.name, ctx.args.description)
    if _json(ctx):
        show.emit_json(team)
    else:
        show.say(f"created team {team.name}")
    return 0


def team_list(ctx: Context) -> int:
    teams = ctx.store.list_teams()
    if _json(ctx):
        show.emit_json(teams)
        return 0
    if not teams:
        show.say("no teams; create one with `accord team create NAME`")
        return 0
    rows = []
    for t in teams:
        members = ctx.store.list_members(t.name)
        tasks = ctx.store.list_tasks(t.name)
        done = sum(1 for k in tasks if k.status == TaskStatus.COMPLETED)
        rows.append((t.name, len(members), f"{done}/{len(tasks)}", show.when(t.created_at)))
    show.table(["team", "members", "tasks done", "created"], rows)
    return 0


def team_show(ctx: Context) -> int:
    if ctx.args.name is not None:
        ctx.args.team = ctx.args.name
    svc = ctx.team
    team = ctx.store.get_team(svc.team)
    members = svc.roster.store.list_members(svc.team)
    tasks = svc.board.list()
    counts = {s.value: sum(1 for t in tasks if t.status == s) for s in TaskStatus}
    counts["ready"] = sum(1 for t in tasks if t.ready)
    unacked = svc.mailbox.history(unacked=True, limit=100000)
    if _json(ctx):
        out = to_json(team)
        out.update(members=to_json(members), tasks=counts, unacked_messages=len(unacked))
        show.say(json.dumps(out, indent=2))
        return 0
    show.say(f"team {team.name}" + (f": {team.description}" if team.description else ""))
    show.say("tasks: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "tasks: none")
    show.say(f"unacknowledged messages: {len(unacked)}")
    show.members(members)
    return 0


def team_delete(ctx: Context) -> int:
    from accord.team.roster import LIVE_STATUSES, acting_member

    name = ctx.args.name
    # An agent (ACCORD_MEMBER set) may delete only its own team, and only with its token.
    acting_member(ctx.store, name, os.environ.get("ACCORD_MEMBER"), credentials.get("ACCORD_TOKEN"))
    from accord.runtime.lifecycle import sweep

    sweep(ctx.store, name)  # members a dead supervisor left `starting` are not live
    live = [m.name for m in ctx.store.list_members(name) if m.status in LIVE_STATUSES]
    if live and not ctx.args.force:
        raise InvalidState(
            f"team {name!r} has live members ({', '.join(live)}); stop them first, or pass --force"
        )
    ctx.store.delete_team(name)
    show.say(f"deleted team {name}")
    return 0


# members ------------------------------------------------------------------


def member_add(ctx: Context) -> int:
    from accord.agent.definition import find_definition

    if ctx.args.agent is not None:
        # Checked now, not when the member first starts: an unknown or broken
        # definition is refused before anything is added.
        warning = find_definition(ctx.project.root, ctx.args.agent).unsupported()
        if warning is not None:
            sys.stderr.write(f"warning: {warning}\n")
    added = ctx.team.roster.add(
        ctx.args.name,
        role=MemberRole(ctx.args.role),
        agent=ctx.args.agent,
        model=ctx.args.model,
        actor=ctx.actor,
    )
    if _json(ctx):
        out = to_json(added.member)
        out["token"] = added.token
        show.say(json.dumps(out, indent=2))
    else:
        show.say(f"added {added.member.name} to team {ctx.team.team}")
        show.say(f"token (shown once; agents carry it as ACCORD_TOKEN): {added.token}")
    return 0


def member_list(ctx: Context) -> int:
    members = ctx.store.list_members(ctx.team.team)
    if _json(ctx):
        show.emit_json(members)
    else:
        show.members(members)
    return 0


def member_show(ctx: Context) -> int:
    m = ctx.store.get_member(ctx.team.team, ctx.args.name)
    if _json(ctx):
        show.emit_json(m)
        return 0
    show.members([m])
    held = [t for t in ctx.team.board.list(TaskStatus.IN_PROGRESS) if t.owner == m.name]
    if held:
        show.say("holds: " + ", ".join(f"#{t.id} {plain(t.title)}" for t in held))
    return 0


def member_remove(ctx: Context) -> int:
    from accord.runtime.lifecycle import refuse_removing_a_running_member

    refuse_removing_a_running_member(ctx.store, ctx.team.team, ctx.args.name)
    released = ctx.team.roster.remove(ctx.args.name, force=ctx.args.force, actor=ctx.actor)
    note = f"; tasks back to pending: {', '.join(f'#{i}' for i in released)}" if released else ""
    show.say(f"removed {ctx.args.name}{note}")
    return 0


def member_token(ctx: Context) -> int:
    # An agent may rotate only its own token: printing another's would let it act as them.
    name = ctx.acting_as(ctx.args.name)
    issued = ctx.team.roster.rotate_token(name, actor=ctx.actor)
    if _json(ctx):
        show.say(json.dumps({"v": 1, "name": issued.member.name, "token": issued.token}))
    else:
        show.say(
            f"new token for {issued.member.name} (the old one no longer works): {issued.token}"
        )
    return 0


def member_heartbeat(ctx: Context) -> int:
    name = ctx.acting_as(ctx.args.as_)
    status = MemberStatus(ctx.args.status) if ctx.args.status else None
    ctx.team.roster.heartbeat(name, status=status, pid=ctx.args.pid, host=ctx.args.host)
    return 0


# tasks --------------------------------------------------------------------


def task_add(ctx: Context) -> int:
    a = ctx.args
    task = ctx.team.board.add(
        NewTask(
            title=a.title,
            description=a.description,
            blocked_by=tuple(a.blocked_by),
            assignee=a.assign,
            priority=a.priority,
            max_attempts=a.max_attempts,
        ),
        actor=ctx.actor,
    )
    if _json(ctx):
        show.emit_json(task)
    else:
        show.say(f"added #{task.id} {plain(task.title)} ({show.task_state(task)})")
    return 0


def task_list(ctx: Context) -> int:
    status = TaskStatus(ctx.args.status) if ctx.args.status else None
    tasks = ctx.store.list_tasks(ctx.team_name, status=status, ready=ctx.args.ready)
    if _json(ctx):
        show.emit_json(tasks)
    else:
        show.tasks([_plain_task(t) for t in tasks])
    return 0


def task_show(ctx: Context) -> int:
    task = ctx.team.board.get(ctx.args.id)
    if _json(ctx):
        show.emit_json(task)
    else:
        show.task_detail(_plain_task(task))
    return 0


def task_update(ctx: Context) -> int:
    a = ctx.args
    changes = TaskChanges(
        title=a.title,
        description=a.description,
        add_blockers=tuple(a.add_blocker),
        remove_blockers=tuple(a.remove_blocker),
        assignee=a.assign,
        unassign=a.unassign,
        priority=a.priority,
    )
    if changes == TaskChanges():
        raise UserError(
            "nothing to change; pass --title, --description, --add-blocker, "
            "--remove-blocker, --assign, --unassign or --priority"
        )
    task = ctx.team.board.update(a.id, changes, actor=ctx.actor)
    if _json(ctx):
        show.emit_json(task)
    else:
        show.say(f"updated #{task.id} {plain(task.title)} ({show.task_state(task)})")
    return 0


def task_claim(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    claim = ctx.team.board.claim(member, ctx.args.id, ctx.args.lease)
    if claim is None:
        raise NothingToDo(f"no ready task for {member} to claim")
    if _json(ctx):
        show.emit_json(claim)
    else:
        show.say(
            f"claimed #{claim.task.id} {plain(claim.task.title)} as {member}: token "
            f"{claim.fencing_token}, lease until {show.when(claim.lease_expires_at)}"
        )
    return 0


def task_heartbeat(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    claim = ctx.team.board.heartbeat(ctx.args.id, member, ctx.args.token, ctx.args.lease)
    if _json(ctx):
        show.emit_json(claim)
    else:
        show.say(f"lease on #{ctx.args.id} until {show.when(claim.lease_expires_at)}")
    return 0


def task_complete(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    task = ctx.team.board.complete(ctx.args.id, member, ctx.args.token, ctx.args.result)
    if _json(ctx):
        show.emit_json(task)
    else:
        show.say(f"completed #{task.id} {plain(task.title)}")
    return 0


def task_fail(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    task = ctx.team.board.fail(
        ctx.args.id, member, ctx.args.token, ctx.args.reason, retry=ctx.args.retry
    )
    if _json(ctx):
        show.emit_json(task)
    else:
        show.say(f"#{task.id} {plain(task.title)} is now {task.status.value}")
    return 0


def task_cancel(ctx: Context) -> int:
    task = ctx.team.board.cancel(ctx.args.id, ctx.args.reason, actor=ctx.actor)
    if _json(ctx):
        show.emit_json(task)
    else:
        show.say(f"cancelled #{task.id} {plain(task.title)}")
    return 0


# mail ---------------------------------------------------------------------


def msg_send(ctx: Context) -> int:
    a = ctx.args
    sender = ctx.acting_as(a.sender or ctx.me)
    sent = ctx.mailbox.send(
        sender,
        a.recipient,
        a.text,
        kind=MessageKind(a.kind),
        summary=a.summary,
        reply_to=a.reply_to,
        key=a.key,
    )
    if _json(ctx):
        show.emit_json(sent)
    else:
        ids = ", ".join(str(m.id) for m in sent)
        to = ", ".join(show.who(m.recipient) for m in sent)
        show.say(f"sent {ids} to {to}")
    return 0


def msg_inbox(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_ or ctx.me)
    got = ctx.mailbox.inbox(member, ctx.args.limit)
    if _json(ctx):
        show.emit_json(got)
    elif not got:
        show.say(f"no new messages for {show.who(member)}")
    else:
        show.messages([_plain_message(m) for m in got])
        who = "" if member == PERSON else f"--as {member} "
        show.say(f"acknowledge with: accord msg ack {who}" + " ".join(str(m.id) for m in got))
    return 0


def msg_ack(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_ or ctx.me)
    fresh = ctx.mailbox.ack(member, ctx.args.ids)
    if _json(ctx):
        show.say(json.dumps({"v": 1, "acked": fresh}))
    else:
        show.say(f"acknowledged {len(fresh)} message(s)")
    return 0


def msg_list(ctx: Context) -> int:
    items = ctx.mailbox.history(ctx.args.member, ctx.args.unacked, ctx.args.limit)
    if _json(ctx):
        show.emit_json(items)
    else:
        show.messages([_plain_message(m) for m in items])
    return 0


# events, wait -------------------------------------------------------------


def events(ctx: Context) -> int:
    from accord.team.wake import follow

    store, team = ctx.store, ctx.team_name

    def out(e: object) -> None:
        line = json.dumps(to_json(e)) if _json(ctx) else plain(show.event_line(e))  # type: ignore[arg-type]
        sys.stdout.write(line + "\n")

    if not ctx.args.follow:
        items = store.read_events(team, since=ctx.args.since, limit=ctx.args.limit)
        if _json(ctx):
            show.emit_json(items)
        else:
            for e in items:
                out(e)
        return 0
    for e in follow(store, team, ctx.args.since):
        out(e)
        sys.stdout.flush()
    return 0


def wait_cmd(ctx: Context) -> int:
    from accord.team.wake import wait

    member = ctx.acting_as(ctx.args.as_)
    started = time.monotonic()
    woke = wait(ctx.store, ctx.team_name, member, ctx.args.timeout)
    if _json(ctx):
        out = to_json(woke)
        out["seconds"] = round(time.monotonic() - started, 4)
        show.say(json.dumps(out))
    elif woke.reason != "timeout":
        show.say(f"{member} has {woke.mail} message(s) and {woke.ready_tasks} ready task(s)")
    if woke.reason == "timeout":
        raise NothingToDo(f"nothing for {member} within {ctx.args.timeout:g}s")
    return 0


# agent runtime ------------------------------------------------------------


def agent_cmd(ctx: Context) -> int:
    from accord.agent.launch import CONFIG_EXIT, build_agent, record_config_failure

    credentials.receive()  # a supervised member's token and keys, before anything else
    member = ctx.acting_as(ctx.args.member)
    project = ctx.project
    env = {
        "ACCORD_TEAM": ctx.team.team,
        "ACCORD_MEMBER": member,
        "ACCORD_STORE": project.store_location,
    }
    try:
        agent = build_agent(
            ctx.team,
            member,
            project.config,
            project.root,
            model=ctx.args.model,
            definition_name=ctx.args.agent,
            workspace=Path(ctx.args.workspace) if ctx.args.workspace else None,
            env=env,
        )
    except UserError as e:
        # Started by a supervisor: say why in the store, and that a restart cannot help.
        if credentials.handed_over():
            record_config_failure(ctx.team, member, str(e))
            sys.stderr.write(f"error: {e}\n")
            return CONFIG_EXIT
        raise
    agent.install_signal_handlers()
    # With --once, the task failures of this session decide the exit code.
    history = ctx.store.read_events(ctx.team.team) if ctx.args.once else []
    since = history[-1].seq if history else 0
    outcome = agent.run(once=ctx.args.once)
    show.say(
        f"{member} stopped: {outcome.reason}" + (f" ({outcome.detail})" if outcome.detail else "")
    )
    failed = {
        e.payload["id"]
        for e in (ctx.store.read_events(ctx.team.team, since=since) if ctx.args.once else [])
        if e.kind == "task_failed" and e.payload.get("owner") == member
    }
    if ctx.args.once and failed:
        ids = ", ".join(f"#{i}" for i in sorted(failed))
        sys.stderr.write(f"error: {member} failed task {ids}; see `accord task show`\n")
        return 1
    return 0 if outcome.reason in ("shutdown", "idle", "signal") else 1


def cost(ctx: Context) -> int:
    by = ctx.args.by
    rows = ctx.store.usage_totals(ctx.team.team, by=by)
    total = ctx.store.usage_totals(ctx.team.team)[0]
    if _json(ctx):
        listed: list[dict[str, object]] = []
        out: dict[str, object] = {"v": 1, "by": by, "rows": listed, "total": None}
        for r in [*rows, total]:
            item: dict[str, object] = {
                "key": r.key,
                "calls": r.calls,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cache_read_tokens": r.cache_read_tokens,
                "cache_write_tokens": r.cache_write_tokens,
                "cost_usd": round(r.cost_usd, 6),
                "unpriced_calls": r.unpriced_calls,
            }
            if r is total:
                out["total"] = item
            else:
                listed.append(item)
        show.say(json.dumps(out, indent=2))
        return 0
    if not total.calls:
        show.say("no model calls yet")
        return 0

    def line(label: str, r: UsageTotal) -> tuple[object, ...]:
        spent = f"${r.cost_usd:.4f}" + (
            f" (+{r.unpriced_calls} unpriced)" if r.unpriced_calls else ""
        )
        return (
            label,
            r.calls,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            spent,
        )

    table = [line((f"#{r.key}" if by == "task" and r.key else r.key) or "(none)", r) for r in rows]
    show.table(
        [by, "calls", "input", "output", "cache read", "cache write", "cost"],
        [*table, line("total", total)],
    )
    return 0


def member_transcript(ctx: Context) -> int:
    team = ctx.team.team
    ctx.store.get_member(team, ctx.args.name)
    entries = ctx.store.read_transcript(team, ctx.args.name, session=ctx.args.session)
    if ctx.args.last:
        entries = entries[-ctx.args.last :]
    if _json(ctx):
        show.emit_json(entries)
    elif not entries:
        show.say(f"{ctx.args.name} has no transcript yet")
    else:
        for e in entries:
            show.transcript_entry(e)
    return 0


# team runs ----------------------------------------------------------------


def _team_name_for_run(ctx: Context) -> str:
    explicit = ctx.args.team or os.environ.get("ACCORD_TEAM")
    if explicit:
        return str(explicit)
    default = ctx.project.config.team.default
    if default:
        return default
    teams = [t.name for t in ctx.store.list_teams()]
    return teams[0] if len(teams) == 1 else "main"


def _supervise(ctx: Context, team: str) -> int:
    """Run the team until it ends; exit 0 finished, 1 stopped without finishing, 130
    interrupted (the codes are in `accord run --help` and the README)."""
    from accord.runtime.lifecycle import exit_code, run_outcome
    from accord.runtime.supervisor import Supervisor

    display = ctx.args.display or ("live" if sys.stdout.isatty() else "plain")
    if display == "live":
        from accord.cli._live import supervise_live

        final = supervise_live(
            ctx.project, ctx.store, team, host=ctx.args.host, slots=ctx.args.slots
        )
    else:

        def say(line: str) -> None:
            show.say(line)
            sys.stdout.flush()

        supervisor = Supervisor(
            ctx.project,
            ctx.store,
            team,
            say=say,
            on_event=show.Story(ctx.store, team, say, raw=display == "events"),
            host=ctx.args.host,
            slots=ctx.args.slots,
        )
        final = supervisor.run()
    run = ctx.store.get_run(team)
    outcome = run_outcome(ctx.store, team)
    if final == "finished":
        show.say(f"finished: {run.summary if run else ''}")
        return 0
    why = f" ({outcome.outcome}: {outcome.reason})" if outcome is not None else ""
    show.say(f"team {team} stopped without finishing{why}")
    show.say(f"`accord resume --team {team}` brings it back; `accord status` shows it")
    return exit_code(outcome)


def run_cmd(ctx: Context) -> int:
    from accord.config import STATE_DIR, locate
    from accord.runtime.team_run import budget_warning, prepare_run
    from accord.store import open_store, redact, store_exists

    # A first run sets the store up where the project says (a fresh clone has the
    # committed accord.toml but not .accord/), or in this folder when there is none.
    project = locate(Path.cwd(), ctx.args.store, must_exist=False)
    location = project.store_location
    if not store_exists(location):
        if "://" not in location:
            state = project.root / STATE_DIR
            if not state.exists():
                state.mkdir()
                (state / ".gitignore").write_text("*\n", encoding="utf-8")
        open_store(location, create=True).close()
        show.say(f"created the team's store at {redact(location)}")
    team = _team_name_for_run(ctx)
    prepare_run(
        ctx.store,
        ctx.project,
        team,
        ctx.args.goal,
        model=ctx.args.model,
        teammate_model=ctx.args.teammate_model,
        max_teammates=ctx.args.max_teammates,
        budget_usd=ctx.args.budget,
        delegate=ctx.args.delegate,
    )
    warning = budget_warning(ctx.store, ctx.project, team)
    if warning is not None:
        sys.stderr.write(f"warning: {warning}\n")
    return _supervise(ctx, team)


def resume_cmd(ctx: Context) -> int:
    from accord.runtime.team_run import budget_warning, prepare_resume

    run, why = prepare_resume(ctx.store, ctx.project, ctx.team.team, budget_usd=ctx.args.budget)
    show.say(f"resuming team {run.team}: {', '.join(run.wanted)}; {why}")
    warning = budget_warning(ctx.store, ctx.project, run.team)
    if warning is not None and ctx.args.budget is not None:
        sys.stderr.write(f"warning: {warning}\n")
    return _supervise(ctx, run.team)


def store_copy(ctx: Context) -> int:
    from accord.store import open_store
    from accord.store.copy import copy_teams

    source_at, target_at = ctx.args.source, ctx.args.target
    if _same_store(source_at, target_at):
        raise UserError("--from and --to name the same store; give two different stores")
    for name in ctx.args.teams:
        check_name(name, "team name")
    if "://" not in source_at and not Path(source_at).expanduser().exists():
        raise UserError(f"no store at {source_at}; give the path or URL of an existing store")
    with open_store(source_at) as source:
        for name in ctx.args.teams:
            source.get_team(name)  # before the target is created or touched
        with open_store(target_at, create=True) as target:
            copied = copy_teams(source, target, ctx.args.teams)
    if _json(ctx):
        show.emit_json([{"team": c.team, "rows": c.rows} for c in copied])
        return 0
    for c in copied:
        total = sum(c.rows.values())
        parts = ", ".join(f"{n} {table}" for table, n in c.rows.items() if n)
        show.say(f"copied team {c.team}: {total} rows ({parts})")
    if not copied:
        show.say("the source store has no teams; nothing copied")
    return 0


def _same_store(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def supervise_cmd(ctx: Context) -> int:
    from accord.runtime.supervisor import Supervisor

    def say(line: str) -> None:
        show.say(line)
        sys.stdout.flush()

    team = ctx.team.team
    Supervisor(
        ctx.project, ctx.store, team, say=say, host=ctx.args.host, slots=ctx.args.slots
    ).serve(once=ctx.args.once)
    show.say(f"supervisor {ctx.args.host or 'of this host'} for team {team} stopped")
    return 0


def stop_cmd(ctx: Context) -> int:
    from accord.runtime.team_run import stop

    show.say(stop(ctx.store, ctx.team, ctx.args.member))
    return 0


def watch_cmd(ctx: Context) -> int:
    from accord.cli._live import watch

    watch(ctx.store, ctx.team.team)
    return 0


def status_cmd(ctx: Context) -> int:
    from accord.cli._live import render_status, status_data
    from accord.runtime.lifecycle import sweep

    sweep(ctx.store, ctx.team_name)  # a supervisor dead on this machine: say so, tidy up
    data = status_data(ctx.store, ctx.team_name)
    if _json(ctx):
        show.say(json.dumps(data, indent=2))
    else:
        render_status(data)
    return 0


def demo_cmd(ctx: Context) -> int:
    from accord.runtime import demo
    from accord.runtime.supervisor import Supervisor
    from accord.types import RunStatus

    # Only the demo's own folder and store: never the project (if any) of the cwd.
    folder = demo.scratch_folder(ctx.args.dir)
    show.say(demo.NOTICE)
    show.say(f"scratch repository: {folder.root}")
    show.say(f"goal: {demo.GOAL}")
    sys.stdout.flush()
    display = ctx.args.display or ("live" if sys.stdout.isatty() else "plain")

    def say(line: str) -> None:
        show.say(line)
        sys.stdout.flush()

    def supervise(project: Project, store: Store, team: str) -> RunStatus:
        story = demo.Narrator(store, team, say)
        if display == "plain":
            return Supervisor(project, store, team, say=say, on_event=story).run()
        from accord.cli._live import supervise_live

        before = store.read_events(team)
        final = supervise_live(project, store, team)
        # The live view shows the board; the story of the run is told once it is over.
        say("what happened:")
        for e in store.read_events(team, since=before[-1].seq if before else 0):
            story(e)
        return final

    report = demo.run(folder, supervise, keep=ctx.args.keep)
    for line in demo.closing(report):
        show.say(line)
    return 0


# plan files, workers ------------------------------------------------------


def plan_load(ctx: Context) -> int:
    from accord.team.plan import load_plan, read_plan

    plan = read_plan(Path(ctx.args.file))  # the whole file is checked before the store opens
    loaded = load_plan(ctx.team.board, plan, actor=ctx.actor)
    if _json(ctx):
        out = {
            "v": 1,
            "team": loaded.team,
            "plan": loaded.origin,
            "tasks": [
                {"id": e.item.id, "outcome": e.outcome, "note": e.note, "task": to_json(e.task)}
                for e in loaded.entries
            ],
        }
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        counts = [
            f"{loaded.count('added')} added",
            f"{loaded.count('existing')} already loaded",
        ]
        if loaded.count("refused"):
            counts.append(f"{loaded.count('refused')} refused by the TaskCreated hook")
        show.say(f"{loaded.origin} -> team {loaded.team}: {', '.join(counts)}")
        label = {"added": "added", "existing": "already loaded", "refused": "refused"}
        show.table(
            ["plan id", "task", "title", "state", "note"],
            [
                (
                    e.item.id,
                    f"#{e.task.id}" if e.outcome != "refused" else "-",
                    plain(e.task.title),
                    label[e.outcome]
                    if e.outcome == "refused"
                    else f"{label[e.outcome]}, {show.task_state(e.task)}",
                    (e.note or "").splitlines()[0] if e.note else None,
                )
                for e in loaded.entries
            ],
        )
    return 1 if loaded.count("refused") else 0


def work(ctx: Context) -> int:
    from accord.runtime.work import WorkPool, WorkSettings

    a = ctx.args

    def line(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    pool = WorkPool(
        ctx.team,
        ctx.project.config,
        ctx.project.root,
        WorkSettings(
            workers=a.workers,
            command=a.command,
            agent=a.agent,
            model=a.model,
            lease_seconds=a.lease,
            prefix=a.as_prefix,
        ),
        say=line,
    )
    with pool.signal_handlers():
        summary = pool.run()
    head = "stopped" if summary.stopped_by else "finished"
    line(
        f"{head} after {summary.seconds:.1f}s: {len(summary.completed)} completed, "
        f"{len(summary.failed)} failed, {len(summary.cancelled)} cancelled, "
        f"{len(summary.left)} left ({summary.started} attempt(s) started by this run)"
    )
    for t in summary.failed:
        why = (t.reason or "").strip().splitlines()
        line(f"  failed #{t.id} {plain(t.title)}" + (f": {plain(why[0])}" if why else ""))
    for t in summary.left:
        line(f"  left   #{t.id} {plain(t.title)}: {show.task_state(t)}")
    if summary.stopped_by == "signal":
        return 130
    return 0 if summary.ok else 1


# memory -------------------------------------------------------------------


def _memory(ctx: Context) -> Memory:
    from accord.memory import Memory

    return Memory(ctx.store, ctx.team.team, ctx.project.config.memory)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _memory_line(e: MemoryEntry) -> str:
    noted = f", noted {e.count} times" if e.count > 1 else ""
    return f"[{e.id}] {e.type.value} ({e.status.value}{noted}) {_clip(e.text, 100)}"


def memory_add(ctx: Context) -> int:
    a = ctx.args
    if a.scope.startswith("member:"):
        # An agent may keep entries of its own only: writing into another member's
        # scope would put words in its mouth at its next recall.
        ctx.acting_as(a.scope.removeprefix("member:"))
    entry, reinforced = _memory(ctx).remember(
        NewMemory(
            type=MemoryType(a.type),
            text=a.text,
            tags=tuple(a.tag),
            scope=a.scope,
            author=ctx.actor,
            supersedes=a.supersedes,
        )
    )
    if _json(ctx):
        out = to_json(entry)
        out["reinforced"] = reinforced
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
    elif reinforced:
        show.say(f"reinforced entry {entry.id} (now noted {entry.count} times)")
    else:
        linked = f", superseding {entry.supersedes}" if entry.supersedes else ""
        show.say(f"remembered {entry.type.value} {entry.id}{linked}")
    return 0


def memory_search(ctx: Context) -> int:
    a = ctx.args
    types = [MemoryType(t) for t in a.type] if a.type else None
    if types and MemoryType.STORY in types:
        raise UserError(
            "stories are never searched; list them with `accord memory list --type story`"
        )
    member = ctx.acting_as(a.as_) if a.as_ else ctx.actor
    found = _memory(ctx).recall(a.query, member=member, k=a.k, types=types, history=a.history)
    if _json(ctx):
        show.emit_json(found)
    elif not found:
        show.say(f"nothing recalled for {a.query!r}")
    else:
        for r in found:
            show.say(f"{r.score:.3f} {_memory_line(r.entry)}")
            show.say(f"      why: {r.why}")
    return 0


def memory_show(ctx: Context) -> int:
    e = _memory(ctx).get(ctx.args.id)
    if _json(ctx):
        show.emit_json(e)
        return 0
    origin = e.author or "a person"
    if e.task_id is not None:
        origin += f", task #{e.task_id}"
    if e.session is not None:
        origin += f", session {e.session}"
    rows: list[tuple[str, object]] = [
        ("type", e.type.value),
        ("status", e.status.value),
        ("scope", e.scope),
        ("tags", ", ".join(e.tags) or "-"),
        ("written by", origin),
        ("created", show.when(e.created_at)),
        ("last seen", f"{show.when(e.seen_at)} (noted {e.count} time{'s' * (e.count != 1)})"),
    ]
    if e.supersedes is not None:
        rows.append(("supersedes", e.supersedes))
    if e.superseded_by is not None:
        rows.append(("superseded by", e.superseded_by))
    show.say(f"memory {e.id}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        show.say(f"  {k:<{width}}  {v}")
    show.say("\n" + e.text)
    return 0


def memory_history(ctx: Context) -> int:
    chain = _memory(ctx).history(ctx.args.id)
    stands = next((e.id for e in chain if e.status == MemoryStatus.ACTIVE), None)
    if _json(ctx):
        out = {"v": 1, "chain": to_json(chain), "stands": stands}
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    for e in chain:
        mark = "stands" if e.id == stands else e.status.value
        show.say(f"[{e.id}] {mark:<10} {show.when(e.created_at)}  {_clip(e.text, 90)}")
    if stands is None:
        show.say("nothing in this chain stands: its last entry was retired")
    return 0


def memory_forget(ctx: Context) -> int:
    e = _memory(ctx).forget(ctx.args.id, ctx.actor)
    if _json(ctx):
        show.emit_json(e)
    else:
        show.say(f"retired memory {e.id} (kept, never recalled again)")
    return 0


def memory_list(ctx: Context) -> int:
    a = ctx.args
    entries = ctx.store.list_memories(
        ctx.team.team,
        type=MemoryType(a.type) if a.type else None,
        status=MemoryStatus(a.status) if a.status else None,
        limit=a.limit,
    )
    if _json(ctx):
        show.emit_json(entries)
        return 0
    if not entries:
        show.say("no memories; add one with `accord memory add --type TYPE TEXT`")
        return 0
    show.table(
        ["id", "type", "status", "scope", "noted", "last seen", "text"],
        [
            (
                e.id,
                e.type.value,
                e.status.value,
                e.scope,
                e.count,
                show.when(e.seen_at),
                _clip(e.text, 70),
            )
            for e in entries
        ],
    )
    return 0


def memory_export(ctx: Context) -> int:
    lines = list(_memory(ctx).export())
    if ctx.args.output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return 0
    target = Path(ctx.args.output)
    partial = target.with_name(target.name + ".partial")
    try:
        # Written aside and renamed, so a failed export never leaves half a backup.
        partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {e.strerror}; choose another --output") from e
    show.say(f"exported {len(lines)} entries to {target}")
    return 0


def memory_import(ctx: Context) -> int:
    from accord.config import read_utf8

    text = read_utf8(Path(ctx.args.file), "the import file", UserError)
    imported, problems = _memory(ctx).import_lines(
        text.splitlines(), skip_bad=ctx.args.skip_bad, actor=ctx.actor
    )
    if _json(ctx):
        show.say(json.dumps({"v": 1, "imported": imported, "skipped": problems}, indent=2))
        return 0
    show.say(f"imported {imported} entries into team {ctx.team.team}")
    for problem in problems:
        show.say(f"  skipped {problem}")
    return 0


def memory_reindex(ctx: Context) -> int:
    memory = _memory(ctx)
    quiet = _json(ctx)

    def progress(done: int) -> None:
        if not quiet:
            sys.stderr.write(f"\rembedded {done} entries")
            sys.stderr.flush()

    count = memory.reindex(progress)
    if not quiet and count:
        sys.stderr.write("\n")
    model = memory.embedder.name if memory.embedder is not None else None
    if not count:
        raise NothingToDo(f"every recallable entry already has a vector from {model}")
    if quiet:
        show.say(json.dumps({"v": 1, "model": model, "embedded": count}, indent=2))
    else:
        show.say(f"embedded {count} entries with {model}")
    return 0


def memory_continuity(ctx: Context) -> int:
    a = ctx.args
    memory = _memory(ctx)
    if a.set is not None:
        note = memory.write_continuity(ctx.acting_as(a.member), a.set)
        if _json(ctx):
            show.emit_json(note)
        else:
            show.say(f"wrote version {note.version} of {note.member}'s continuity note")
        return 0
    if a.history:
        notes = memory.continuity_history(a.member)
        if _json(ctx):
            show.emit_json(notes)
            return 0
    else:
        latest = memory.continuity(a.member)
        if _json(ctx):
            show.say(json.dumps(to_json(latest), indent=2, ensure_ascii=False))
            return 0
        notes = [latest] if latest else []
    if not notes:
        show.say(f"{a.member} has no continuity note yet")
    for note in notes:
        show.say(f"── version {note.version}, written {show.when(note.at)}")
        show.say(note.text)
    return 0


COMMANDS: dict[str, Command] = {
    "init": init,
    "team_create": team_create,
    "team_list": team_list,
    "team_show": team_show,
    "team_delete": team_delete,
    "member_add": member_add,
    "member_list": member_list,
    "member_show": member_show,
    "member_remove": member_remove,
    "member_token": member_token,
    "member_heartbeat": member_heartbeat,
    "task_add": task_add,
    "task_list": task_list,
    "task_show": task_show,
    "task_update": task_update,
    "task_claim": task_claim,
    "task_heartbeat": task_heartbeat,
    "task_complete": task_complete,
    "task_fail": task_fail,
    "task_cancel": task_cancel,
    "msg_send": msg_send,
    "msg_inbox": msg_inbox,
    "msg_ack": msg_ack,
    "msg_list": msg_list,
    "events": events,
    "wait": wait_cmd,
    "agent": agent_cmd,
    "cost": cost,
    "member_transcript": member_transcript,
    "run": run_cmd,
    "resume": resume_cmd,
    "stop": stop_cmd,
    "supervise": supervise_cmd,
    "store_copy": store_copy,
    "status": status_cmd,
    "demo": demo_cmd,
    "watch": watch_cmd,
    "plan_load": plan_load,
    "work": work,
    "memory_add": memory_add,
    "memory_search": memory_search,
    "memory_show": memory_show,
    "memory_history": memory_history,
    "memory_forget": memory_forget,
    "memory_list": memory_list,
    "memory_export": memory_export,
    "memory_import": memory_import,
    "memory_reindex": memory_reindex,
    "memory_continuity": memory_continuity,
}
