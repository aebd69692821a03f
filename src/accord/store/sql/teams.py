"""Teams and their members: the roster's rows."""

from __future__ import annotations

from typing import Any

from accord.errors import AlreadyExists, InvalidName
from accord.events import EventKind
from accord.store.limits import MAX_DESCRIPTION, UNSET
from accord.store.sql.seam import _MEMBER_COLUMNS, Seam, _cap, _member, atomic
from accord.types import PERSON, Member, MemberRole, MemberStatus, Team, check_name


class TeamsPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Teams and their members: the roster's rows.
    """

    # teams -----------------------------------------------------------------

    @atomic
    def create_team(self, name: str, description: str = "", actor: str | None = None) -> Team:
        """Create a team; AlreadyExists if the name is taken."""
        check_name(name, "team name")
        _cap(description, MAX_DESCRIPTION, "the team description")
        with self._write() as db:
            if db.execute("SELECT 1 FROM teams WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(f"a team named {name!r} already exists; pick another name")
            now = self.clock()
            team_id = db.execute(
                "INSERT INTO teams (name, description, created_at) VALUES (?, ?, ?) RETURNING id",
                (name, description, now),
            ).fetchone()[0]
            self._event(db, team_id, EventKind.TEAM_CREATED, {"name": name}, actor)
        return Team(team_id, name, description, now)

    @atomic
    def get_team(self, name: str) -> Team:
        """UnknownTeam if absent."""
        with self._read() as db:
            team_id = self._team_id(db, name)
            row = db.execute(
                "SELECT id, name, description, created_at FROM teams WHERE id = ?", (team_id,)
            ).fetchone()
        return Team(*row)

    @atomic
    def list_teams(self) -> list[Team]:
        """Every team, by name."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, name, description, created_at FROM teams ORDER BY name"
            ).fetchall()
        return [Team(*r) for r in rows]

    @atomic
    def delete_team(self, name: str) -> None:
        """Remove a team and everything in it (board, mail, roster, log)."""
        with self._write() as db:
            team_id = self._team_id(db, name, lock=True)
            self._serialize_memory(db)  # project entries lose their links into this team's
            # Explicit deletes keep this independent of foreign-key enforcement.
            for table in (
                "file_claims",
                "task_deps",
                "tasks",
                "messages",
                "members",
                "events",
                "transcripts",
                "usage",
                "spawns",
                "runs",
                "continuity",
            ):
                db.execute(f"DELETE FROM {table} WHERE team_id = ?", (team_id,))
            # Project entries outlive the team; their links into its entries go. A project
            # decision whose successor was the team's stands again: nobody else saw it.
            doomed = "SELECT id FROM memories WHERE team_id = ?"
            db.execute(
                f"UPDATE memories SET supersedes = NULL WHERE team_id IS NULL "
                f"AND supersedes IN ({doomed})",
                (team_id,),
            )
            db.execute(
                "UPDATE memories SET superseded_by = NULL, status = CASE status "
                "WHEN 'superseded' THEN 'active' ELSE status END "
                f"WHERE team_id IS NULL AND superseded_by IN ({doomed})",
                (team_id,),
            )
            db.execute("DELETE FROM memories WHERE team_id = ?", (team_id,))
            db.execute("DELETE FROM teams WHERE id = ?", (team_id,))
        # Members' live output is scratch kept apart (Seam._live): it goes after the team.
        with self._live() as db:
            db.execute("DELETE FROM live_output WHERE team = ?", (name,))

    # members ---------------------------------------------------------------

    @atomic
    def add_member(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        role: MemberRole = MemberRole.TEAMMATE,
        agent: str | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> Member:
        """Add a member in status ``stopped``; AlreadyExists if the name is taken."""
        check_name(name, "member name")
        if name == PERSON:
            raise InvalidName(
                f"{PERSON!r} is reserved for the person at the terminal; pick another name"
            )
        if agent is not None:
            check_name(agent, "agent definition name")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            if db.execute(
                "SELECT 1 FROM members WHERE team_id = ? AND name = ?", (team_id, name)
            ).fetchone():
                raise AlreadyExists(
                    f"team {team!r} already has a member named {name!r}; pick another name"
                )
            now = self.clock()
            db.execute(
                "INSERT INTO members (team_id, name, role, agent, model, status, token_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (team_id, name, role.value, agent, model, "stopped", token_hash, now),
            )
            self._event(
                db,
                team_id,
                EventKind.MEMBER_ADDED,
                {"name": name, "role": role.value, "agent": agent, "model": model},
                actor,
            )
            return self._member_row(db, team_id, team, name)

    @atomic
    def get_member(self, team: str, name: str) -> Member:
        """UnknownMember if absent."""
        with self._read() as db:
            return self._member_row(db, self._team_id(db, team), team, name)

    @atomic
    def list_members(self, team: str) -> list[Member]:
        """Every member of the team, by name."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT {_MEMBER_COLUMNS} FROM members WHERE team_id = ? ORDER BY name",
                (team_id,),
            ).fetchall()
        return [_member(team, r) for r in rows]

    @atomic
    def update_member(
        self,
        team: str,
        name: str,
        *,
        status: MemberStatus | None = None,
        pid: int | None = UNSET,
        host: str | None = UNSET,
        agent: str | None = UNSET,
        model: str | None = UNSET,
        token_hash: str | None = None,
        heartbeat: bool = False,
        actor: str | None = None,
    ) -> Member:
        """Change a member's fields; a status change is logged, a bare heartbeat is not."""
        if agent is not UNSET and agent is not None:
            check_name(agent, "agent definition name")
        sets: list[str] = []
        args: list[Any] = []
        logged: dict[str, Any] = {}
        for column, value in (("pid", pid), ("host", host), ("agent", agent), ("model", model)):
            if value is not UNSET:
                sets.append(f"{column} = ?")
                args.append(value)
                logged[column] = value
        if token_hash is not None:
            sets.append("token_hash = ?")
            args.append(token_hash)
            logged["token"] = "rotated"
        if heartbeat:
            sets.append("heartbeat_at = ?")
            args.append(self.clock())
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            before = self._member_row(db, team_id, team, name)
            if status is not None and status != before.status:
                sets.append("status = ?")
                args.append(status.value)
                logged["status"] = status.value
                logged["was"] = before.status.value
            if sets:
                db.execute(
                    f"UPDATE members SET {', '.join(sets)} WHERE team_id = ? AND name = ?",
                    (*args, team_id, name),
                )
            if logged:
                self._event(db, team_id, EventKind.MEMBER_UPDATED, {"name": name, **logged}, actor)
            if heartbeat:
                # A live member keeps what it owns; a silent one's routes move on.
                self._beat_routes(db, team_id, name)
            return self._member_row(db, team_id, team, name)

    @atomic
    def remove_member(self, team: str, name: str, actor: str | None = None) -> list[int]:
        """Remove a member; its in-progress tasks go back to pending. Returns their ids."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            # Locked first: a claim of this member's in flight finishes before the release.
            self._member_row(db, team_id, team, name, lock=self._FOR_UPDATE)
            now = self.clock()
            # Released like an ended lease: back to pending, or failed when out of attempts.
            db.execute(
                "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, updated_at = ?, "
                "reason = 'its holder was removed on its last attempt' "
                "WHERE team_id = ? AND owner = ? AND status = 'in_progress' "
                "AND attempts >= max_attempts",
                (now, team_id, name),
            )
            released = [
                r[0]
                for r in db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND owner = ? AND status = 'in_progress' "
                    "RETURNING id",
                    (now, team_id, name),
                )
            ]
            db.execute(
                "UPDATE tasks SET assignee = NULL, updated_at = ? "
                "WHERE team_id = ? AND assignee = ? AND status IN ('pending', 'in_progress')",
                (now, team_id, name),
            )
            db.execute("DELETE FROM members WHERE team_id = ? AND name = ?", (team_id, name))
            self._event(
                db,
                team_id,
                EventKind.MEMBER_REMOVED,
                {"name": name, "released": sorted(released)},
                actor,
            )
        return sorted(released)
