"""Runs, their supervisors, spawn requests and hosts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from accord.errors import InvalidState, Reason, StaleToken, UserError
from accord.events import EventKind
from accord.store.limits import MAX_DESCRIPTION, MAX_RESULT
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import (
    HostStatus,
    HostSupervisor,
    Run,
    RunSettings,
    RunSettingsChange,
    RunStatus,
    Spawn,
    SpawnStatus,
    check_name,
)


class RunsPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Runs, their supervisors, spawn requests and hosts.
    """

    # runs and spawn requests -----------------------------------------------

    _RUN_COLUMNS = (
        "goal, lead, status, summary, settings, wanted, supervisor_token, supervisor_pid, "
        "supervisor_host, supervisor_expires_at, started_at, updated_at"
    )

    def _run_row(self, db: Connection, team_id: int, team: str) -> Run | None:
        r = db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE team_id = ?", (team_id,)
        ).fetchone()
        if r is None:
            return None
        return Run(
            team,
            r[0],
            r[1],
            RunStatus(r[2]),
            r[3],
            RunSettings.from_json(json.loads(r[4])),
            tuple(json.loads(r[5])),
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
        )

    def _must_run(self, db: Connection, team_id: int, team: str) -> Run:
        run = self._run_row(db, team_id, team)
        if run is None:
            raise InvalidState(
                f"team {team!r} has never been run", team=team, reason=Reason.NEVER_RUN
            )
        return run

    @atomic
    def start_run(self, team: str, goal: str, lead: str, settings: RunSettings) -> Run:
        """Begin the team's run (or begin it again): status running, the lead wanted."""
        check_name(lead, "member name")
        if not goal.strip():
            raise UserError("a run needs a goal; say what the team should do")
        _cap(goal, MAX_DESCRIPTION, "the goal")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._member_row(db, team_id, team, lead)
            now = self.clock()
            prior = self._run_row(db, team_id, team)
            wanted = sorted({lead, *(prior.wanted if prior else ())})
            db.execute(
                "INSERT INTO runs (team_id, goal, lead, status, settings, wanted, started_at, "
                "updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?) "
                "ON CONFLICT (team_id) DO UPDATE SET goal = excluded.goal, lead = excluded.lead, "
                "status = 'running', summary = NULL, settings = excluded.settings, "
                "wanted = excluded.wanted, updated_at = excluded.updated_at",
                (team_id, goal, lead, json.dumps(settings.to_json()), json.dumps(wanted), now, now),
            )
            self._event(db, team_id, EventKind.RUN_STARTED, {"goal": goal, "lead": lead}, None)
            run = self._run_row(db, team_id, team)
            assert run is not None
            return run

    @atomic
    def get_run(self, team: str) -> Run | None:
        """The team's run, or None if it never had one."""
        with self._read() as db:
            return self._run_row(db, self._team_id(db, team), team)

    @atomic
    def update_run(
        self,
        team: str,
        *,
        status: RunStatus | None = None,
        summary: str | None = None,
        want: Sequence[str] = (),
        unwant: Sequence[str] = (),
        actor: str | None = None,
        settings: RunSettingsChange | None = None,
    ) -> Run:
        """Change the run's status or summary, who should be running, or some of its
        settings (``settings`` names those it changes, and the rest stay: a resume
        raising the budget, the run's end; read and changed in this one transaction);
        the ``run_updated`` event logs only the settings that changed."""
        _cap(summary, MAX_RESULT, "the run summary")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            wanted = sorted((set(run.wanted) | set(want)) - set(unwant))
            new_status = status or run.status
            was = run.settings.to_json()
            changed_to = _changed(run.settings, settings) if settings else run.settings
            after = changed_to.to_json()
            db.execute(
                "UPDATE runs SET status = ?, summary = COALESCE(?, summary), wanted = ?, "
                "settings = COALESCE(?, settings), updated_at = ? WHERE team_id = ?",
                (
                    new_status.value,
                    summary,
                    json.dumps(wanted),
                    json.dumps(after) if after != was else None,
                    self.clock(),
                    team_id,
                ),
            )
            changed: dict[str, Any] = {}
            # Only the settings that changed (one no longer set logged as None).
            moved = {k: after.get(k) for k in {**was, **after} if after.get(k) != was.get(k)}
            if moved:
                changed["settings"] = moved
            if new_status != run.status:
                changed["status"] = new_status.value
            if summary is not None:
                changed["summary"] = summary
            if wanted != list(run.wanted):
                changed["wanted"] = wanted
            if changed:
                self._event(db, team_id, EventKind.RUN_UPDATED, changed, actor)
            updated = self._run_row(db, team_id, team)
            assert updated is not None
            return updated

    @atomic
    def claim_supervisor(
        self, team: str, pid: int, host: str, lease_seconds: float, *, take_over: bool = False
    ) -> Run:
        """Become the team's one supervisor; InvalidState while another holds a live lease,
        unless ``take_over`` (the caller knows the holder is dead)."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            now = self.clock()
            expires = run.supervisor_expires_at
            if expires is not None and expires > now and not take_over:
                raise InvalidState(
                    f"team {team!r} already has a supervisor (pid {run.supervisor_pid} on "
                    f"{run.supervisor_host})",
                    team=team,
                    seconds=expires - now,
                    reason=Reason.SUPERVISED,
                )
            token = run.supervisor_token + 1
            db.execute(
                "UPDATE runs SET supervisor_token = ?, supervisor_pid = ?, supervisor_host = ?, "
                "supervisor_expires_at = ?, updated_at = ? WHERE team_id = ?",
                (token, pid, host, now + lease_seconds, now, team_id),
            )
            self._event(
                db,
                team_id,
                EventKind.SUPERVISOR_STARTED,
                {"pid": pid, "host": host, "token": token},
                None,
            )
            claimed = self._run_row(db, team_id, team)
            assert claimed is not None
            return claimed

    @atomic
    def renew_supervisor(self, team: str, token: int, lease_seconds: float) -> Run:
        """Extend the supervisor lease; StaleToken if another supervisor took over."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            if run.supervisor_token != token:
                raise StaleToken(
                    f"another supervisor (pid {run.supervisor_pid} on {run.supervisor_host}) "
                    f"took over team {team!r}",
                    team=team,
                )
            db.execute(
                "UPDATE runs SET supervisor_expires_at = ? WHERE team_id = ?",
                (self.clock() + lease_seconds, team_id),
            )
            renewed = self._run_row(db, team_id, team)
            assert renewed is not None
            return renewed

    @atomic
    def release_supervisor(self, team: str, token: int) -> None:
        """Give the lease up (no-op if it is no longer ours)."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._run_row(db, team_id, team)
            if run is None or run.supervisor_token != token:
                return
            db.execute(
                "UPDATE runs SET supervisor_expires_at = NULL, updated_at = ? WHERE team_id = ?",
                (self.clock(), team_id),
            )
            self._event(db, team_id, EventKind.SUPERVISOR_STOPPED, {"token": token}, None)

    def _spawn_row(self, team: str, r: Sequence[Any]) -> Spawn:
        return Spawn(r[0], team, r[1], r[2], r[3], r[4], r[5], SpawnStatus(r[6]), r[7], r[8], r[9])

    _SPAWN_COLUMNS = (
        "id, name, agent, model, host, requested_by, status, reason, created_at, taken_by"
    )

    @atomic
    def request_spawn(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        agent: str | None = None,
        model: str | None = None,
        host: str | None = None,
        requested_by: str | None = None,
    ) -> Spawn:
        """Ask for a member to be started: added (status starting) if new, made wanted.
        InvalidState if it is already wanted and live, or already requested."""
        check_name(name, "member name")
        if agent is not None:
            check_name(agent, "agent definition name")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            if db.execute(
                "SELECT 1 FROM spawns WHERE team_id = ? AND name = ? "
                "AND status IN ('pending', 'taken')",
                (team_id, name),
            ).fetchone():
                raise InvalidState(f"{name} is already waiting to be started")
            row = db.execute(
                "SELECT status FROM members WHERE team_id = ? AND name = ?", (team_id, name)
            ).fetchone()
            now = self.clock()
            if row is None:
                db.execute(
                    "INSERT INTO members (team_id, name, role, agent, model, status, token_hash, "
                    "created_at) VALUES (?, ?, 'teammate', ?, ?, 'starting', ?, ?)",
                    (team_id, name, agent, model, token_hash, now),
                )
                self._event(
                    db,
                    team_id,
                    EventKind.MEMBER_ADDED,
                    {"name": name, "role": "teammate", "agent": agent, "model": model},
                    requested_by,
                )
            elif name in run.wanted and row[0] in ("starting", "working", "idle"):
                raise InvalidState(
                    f"{name} is already running ({row[0]}); message it instead of spawning it"
                )
            else:
                db.execute(
                    "UPDATE members SET status = 'starting', agent = COALESCE(?, agent), "
                    "model = COALESCE(?, model) WHERE team_id = ? AND name = ?",
                    (agent, model, team_id, name),
                )
            db.execute(
                "UPDATE members SET placement = ? WHERE team_id = ? AND name = ?",
                (host, team_id, name),
            )
            wanted = sorted({*run.wanted, name})
            db.execute(
                "UPDATE runs SET wanted = ?, updated_at = ? WHERE team_id = ?",
                (json.dumps(wanted), now, team_id),
            )
            spawn_id = db.execute(
                "INSERT INTO spawns (team_id, name, agent, model, host, requested_by, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
                (team_id, name, agent, model, host, requested_by, now),
            ).fetchone()[0]
            self._event(
                db,
                team_id,
                EventKind.SPAWN_REQUESTED,
                {"id": spawn_id, "name": name, "agent": agent, "model": model, "host": host},
                requested_by,
            )
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE id = ?", (spawn_id,)
            ).fetchone()
            return self._spawn_row(team, r)

    @atomic
    def pending_spawns(self, team: str) -> list[Spawn]:
        """Spawn requests not yet handled (pending, or taken by a host not yet done with
        them), oldest first."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? "
                "AND status IN ('pending', 'taken') ORDER BY id",
                (team_id,),
            ).fetchall()
        return [self._spawn_row(team, r) for r in rows]

    @atomic
    def finish_spawn(
        self, team: str, spawn_id: int, status: SpawnStatus, reason: str | None = None
    ) -> Spawn:
        """Mark a request ``started`` or ``refused`` (a refusal unwants the member)."""
        if status not in (SpawnStatus.STARTED, SpawnStatus.REFUSED):
            raise UserError(f"a spawn request ends started or refused, not {str(status)!r}")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? AND id = ?",
                (team_id, spawn_id),
            ).fetchone()
            if r is None:
                raise InvalidState(f"team {team!r} has no spawn request {spawn_id}")
            spawn = self._spawn_row(team, r)
            db.execute(
                "UPDATE spawns SET status = ?, reason = ?, handled_at = ? WHERE id = ?",
                (status, reason, self.clock(), spawn_id),
            )
            refused = status == SpawnStatus.REFUSED
            if refused:
                run = self._must_run(db, team_id, team)
                db.execute(
                    "UPDATE runs SET wanted = ? WHERE team_id = ?",
                    (json.dumps(sorted(set(run.wanted) - {spawn.name})), team_id),
                )
                db.execute(
                    "UPDATE members SET status = 'stopped' WHERE team_id = ? AND name = ? "
                    "AND status = 'starting'",
                    (team_id, spawn.name),
                )
            self._event(
                db,
                team_id,
                EventKind.SPAWN_REFUSED if refused else EventKind.SPAWN_STARTED,
                {"id": spawn_id, "name": spawn.name, "reason": reason},
                None,
            )
            return dataclasses.replace(spawn, status=status, reason=reason)

    # hosts -----------------------------------------------------------------

    _HOST_COLUMNS = "host, machine, pid, token, slots, status, started_at, expires_at"

    def _host_rows(
        self, db: Connection, team_id: int, team: str, host: str | None = None
    ) -> list[HostSupervisor]:
        where, args = ("AND host = ?", (host,)) if host is not None else ("", ())
        rows = db.execute(
            f"SELECT {self._HOST_COLUMNS} FROM supervisors WHERE team_id = ? {where} "
            "ORDER BY started_at, host",
            (team_id, *args),
        ).fetchall()
        return [
            HostSupervisor(team, r[0], r[1], r[2], r[3], r[4], HostStatus(r[5]), r[6], r[7])
            for r in rows
        ]

    @atomic
    def register_host(
        self,
        team: str,
        host: str,
        *,
        machine: str,
        pid: int,
        slots: int | None,
        lease_seconds: float,
        take_over: bool = False,
    ) -> HostSupervisor:
        """Serve ``host`` of the team with a new token and lease. InvalidState while another
        supervisor holds a live lease for that host, unless ``take_over`` (it is known dead).
        Members a previous supervisor of the host ran are marked as nowhere, and spawn
        requests it had taken are pending again."""
        check_name(host, "host name")
        if slots is not None and slots < 1:
            raise UserError("a supervisor needs 1 slot or more (--slots N)")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            now = self.clock()
            prior = self._host_rows(db, team_id, team, host)
            if prior and prior[0].live(now) and not take_over:
                p = prior[0]
                raise InvalidState(
                    f"host {host!r} of team {team!r} is already served by a supervisor "
                    f"(pid {p.pid} on {p.machine}); give this one another --host name, or "
                    f"wait {p.expires_at - now if p.expires_at else 0:.0f}s for its lease to end"
                )
            token = (prior[0].token if prior else 0) + 1
            db.execute(
                "INSERT INTO supervisors (team_id, host, machine, pid, token, slots, status, "
                "started_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?) "
                "ON CONFLICT (team_id, host) DO UPDATE SET machine = excluded.machine, "
                "pid = excluded.pid, token = excluded.token, slots = excluded.slots, "
                "status = 'live', started_at = excluded.started_at, "
                "expires_at = excluded.expires_at",
                (team_id, host, machine, pid, token, slots, now, now + lease_seconds),
            )
            # Whatever a previous supervisor of this host ran died with it: those
            # members are nowhere now, and what it had taken is to be placed again.
            db.execute(
                "UPDATE members SET host = NULL, pid = NULL WHERE team_id = ? AND host = ?",
                (team_id, host),
            )
            self._give_back_spawns(db, team_id, host)
            self._event(
                db,
                team_id,
                EventKind.HOST_JOINED,
                {"host": host, "machine": machine, "pid": pid, "slots": slots, "token": token},
                None,
            )
            return self._host_rows(db, team_id, team, host)[0]

    def _give_back_spawns(self, db: Connection, team_id: int, host: str) -> None:
        """Spawn requests ``host`` took and did not finish wait for a supervisor again."""
        db.execute(
            "UPDATE spawns SET status = 'pending', taken_by = NULL "
            "WHERE team_id = ? AND status = 'taken' AND taken_by = ?",
            (team_id, host),
        )

    def _live_host(
        self, db: Connection, team_id: int, team: str, host: str, token: int
    ) -> HostSupervisor:
        rows = self._host_rows(db, team_id, team, host)
        if not rows or rows[0].token != token or rows[0].status != "live":
            raise StaleToken(
                f"host {host!r} of team {team!r} is now served by another supervisor "
                "or was given up; this one must stop",
                team=team,
            )
        return rows[0]

    @atomic
    def renew_host(self, team: str, host: str, token: int, lease_seconds: float) -> HostSupervisor:
        """Extend the host's lease; StaleToken if another supervisor took the host over or
        it was declared lost."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._live_host(db, team_id, team, host, token)
            db.execute(
                "UPDATE supervisors SET expires_at = ? WHERE team_id = ? AND host = ?",
                (self.clock() + lease_seconds, team_id, host),
            )
            return self._host_rows(db, team_id, team, host)[0]

    @atomic
    def release_host(self, team: str, host: str, token: int) -> None:
        """Stop serving the host (no-op if no longer ours); its taken requests are pending
        again, and its members can be placed elsewhere."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            rows = self._host_rows(db, team_id, team, host)
            if not rows or rows[0].token != token or rows[0].status != "live":
                return
            db.execute(
                "UPDATE supervisors SET status = 'stopped', expires_at = NULL "
                "WHERE team_id = ? AND host = ?",
                (team_id, host),
            )
            self._give_back_spawns(db, team_id, host)
            self._event(db, team_id, EventKind.HOST_LEFT, {"host": host, "token": token}, None)

    def list_hosts(self, team: str) -> list[HostSupervisor]:
        """Every host that has served the team, oldest first."""
        with self._read() as db:
            return self._host_rows(db, self._team_id(db, team), team)

    @atomic
    def take_spawn(self, team: str, host: str, token: int) -> Spawn | None:
        """Take the oldest pending spawn request for ``host`` or any host, so that no other
        supervisor starts it; StaleToken if the token is not the host's current one. Read
        first: with nothing pending, it commits nothing (a supervisor asks every pass)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._live_host(db, team_id, team, host, token)
            if (
                db.execute(
                    "SELECT 1 FROM spawns WHERE team_id = ? AND status = 'pending' "
                    "AND (host IS NULL OR host = ?) LIMIT 1",
                    (team_id, host),
                ).fetchone()
                is None
            ):
                return None
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._live_host(db, team_id, team, host, token)
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? "
                "AND status = 'pending' AND (host IS NULL OR host = ?) ORDER BY id LIMIT 1",
                (team_id, host),
            ).fetchone()
            if r is None:
                return None
            spawn = self._spawn_row(team, r)
            db.execute(
                "UPDATE spawns SET status = 'taken', taken_by = ? WHERE id = ?", (host, spawn.id)
            )
            self._event(
                db,
                team_id,
                EventKind.SPAWN_TAKEN,
                {"id": spawn.id, "name": spawn.name, "host": host},
                None,
            )
            return dataclasses.replace(spawn, status=SpawnStatus.TAKEN, taken_by=host)

    @atomic
    def place_wanted(self, team: str) -> list[Spawn]:
        """Declare hosts whose lease ran out lost (their taken requests pending again,
        their members crashed and nowhere), then request a spawn for every member the run
        wants (but the lead) that runs on no live host and waits for no request. A member
        pinned to a host (its spawn named one) is requested for that host only.

        It reads first and writes only when there is something to change, so a
        supervisor's look at an idle team commits nothing (and wakes nobody)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            gone, wanted = self._placing(db, team_id, team)
        if not gone and not wanted:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            now = self.clock()
            hosts = self._host_rows(db, team_id, team)
            live = {h.host for h in hosts if h.live(now)}
            for lost in (h for h in hosts if h.status == HostStatus.LIVE and not h.live(now)):
                db.execute(
                    "UPDATE supervisors SET status = 'lost' WHERE team_id = ? AND host = ?",
                    (team_id, lost.host),
                )
                self._give_back_spawns(db, team_id, lost.host)
                members = [
                    r[0]
                    for r in db.execute(
                        "SELECT name FROM members WHERE team_id = ? AND host = ? ORDER BY name",
                        (team_id, lost.host),
                    )
                ]
                db.execute(
                    "UPDATE members SET host = NULL, pid = NULL, status = CASE WHEN status "
                    "IN ('starting', 'working', 'idle', 'stopping') THEN 'crashed' "
                    "ELSE status END WHERE team_id = ? AND host = ?",
                    (team_id, lost.host),
                )
                self._event(
                    db,
                    team_id,
                    EventKind.HOST_LOST,
                    {"host": lost.host, "machine": lost.machine, "members": members},
                    None,
                )
            waiting = {
                r[0]
                for r in db.execute(
                    "SELECT name FROM spawns WHERE team_id = ? AND status IN ('pending', 'taken')",
                    (team_id,),
                )
            }
            placed: list[Spawn] = []
            for name, agent, model, host, placement in db.execute(
                "SELECT name, agent, model, host, placement FROM members "
                "WHERE team_id = ? ORDER BY name",
                (team_id,),
            ).fetchall():
                if name == run.lead or name not in run.wanted or name in waiting:
                    continue
                if host is not None and host in live:
                    continue
                spawn_id = db.execute(
                    "INSERT INTO spawns (team_id, name, agent, model, host, requested_by, "
                    "status, created_at) VALUES (?, ?, ?, ?, ?, NULL, 'pending', ?) RETURNING id",
                    (team_id, name, agent, model, placement, now),
                ).fetchone()[0]
                self._event(
                    db,
                    team_id,
                    EventKind.MEMBER_PLACED,
                    {"id": spawn_id, "name": name, "host": placement},
                    None,
                )
                r = db.execute(
                    f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE id = ?", (spawn_id,)
                ).fetchone()
                placed.append(self._spawn_row(team, r))
            return placed

    def _placing(self, db: Connection, team_id: int, team: str) -> tuple[list[str], list[str]]:
        """What ``place_wanted`` would change now: live hosts whose lease ran out, and
        wanted members (not the lead) on no live host and waiting for no request."""
        run = self._must_run(db, team_id, team)
        now = self.clock()
        hosts = self._host_rows(db, team_id, team)
        live = {h.host for h in hosts if h.live(now)}
        lost = [h.host for h in hosts if h.status == HostStatus.LIVE and not h.live(now)]
        waiting = {
            r[0]
            for r in db.execute(
                "SELECT name FROM spawns WHERE team_id = ? AND status IN ('pending', 'taken')",
                (team_id,),
            )
        }
        wanted = [
            name
            for name, host in db.execute(
                "SELECT name, host FROM members WHERE team_id = ? ORDER BY name", (team_id,)
            ).fetchall()
            if name != run.lead
            and name in run.wanted
            and name not in waiting
            and (host is None or host not in live or host in lost)
        ]
        return lost, wanted


def _changed(settings: RunSettings, change: RunSettingsChange) -> RunSettings:
    """``settings`` with ``change`` applied; a key that is no setting is refused."""
    unknown = sorted(set(change) - set(RunSettingsChange.__annotations__))
    if unknown:
        raise UserError(f"no run setting named {', '.join(unknown)}")
    fields: dict[str, Any] = dict(change)
    return dataclasses.replace(settings, **fields)
