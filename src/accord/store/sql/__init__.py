"""Every store operation, written once in SQL that SQLite and PostgreSQL both run.

``SQLStore`` is the store (``accord.store.base.Store`` names it): what each
operation checks, which rows it writes, which event it appends. It is composed of
one part per noun, each a mixin class over the one seam (``seam.Seam``):

- ``seam``: the seam a backend fills in, and the plumbing every part shares
  (team ids, events, row helpers, ``atomic``, ``Conflict``);
- ``teams``: teams and members;
- the board: ``board`` (``TasksPart``: tasks and their dependencies) under
  ``claims`` (``BoardPart``: claims, leases, fencing tokens);
- ``mail``: messages, and what wakes a waiting member;
- ``channels``: channels, their subscribers, and posts (messages marked with one);
- ``deliberations``: questions put to members in enforced phases, one answer each;
- ``routes``: routed messages, each with one owner under a lease;
- ``log``: events, transcripts, usage;
- ``runs``: runs, supervisors, spawn requests, hosts;
- ``memory``: typed memory and continuity notes;
- ``skills``: the team's own skills, each version kept, and each use of one;
- ``dump``: moving a team between stores.

A part calls only the seam and its own methods, never another part, so each can be
read alone. Each operation is written once, with its docstring, which is the
contract: ``store/base.py`` names the parts as the store's interface, one per
noun, rather than restating their signatures. ``SQLStore`` lists the parts; a
backend (``sqlite.py``, ``postgres.py``) subclasses it and supplies only the seam
below (and the lifecycle, ``change_marker`` and ``close``):

- ``_read()`` and ``_write()``: one read transaction (one snapshot) and one write
  transaction, as a connection whose ``execute(sql, args)`` takes this package's
  SQL, written with ``?`` placeholders (PostgreSQL's connection translates them);
- ``_attempt(call)``: runs one whole operation, and runs it again when the backend
  says its transaction lost a race it can simply retry (``Conflict``);
- locks, spelled as SQL (empty on SQLite, whose writer holds the whole file):
  ``_TAKE_TURN`` for a write's turn among its team's writes, ``_LOCK_ROW`` for a
  row a write reads and then changes (or takes turns on), ``_FOR_UPDATE`` for a
  row it deletes, ``_KEY_SHARE`` for a row that must not be deleted under it, and
  ``_SKIP_LOCKED`` for the ready task a claim picks while other claims pick theirs;
- memory search (FTS5 on SQLite, a term table on PostgreSQL): ``_indexed`` writes
  an entry's terms to the index, ``_search`` ranks, and ``_among`` says "one of
  these ids" as the backend best takes a list. Both index the terms of
  ``accord.text`` and keep ``memory_vocab`` (entries per term) and
  ``memory_count`` (entries), which this package reads the same way on both.

Where writers run side by side (PostgreSQL), locks are taken in one order, which
keeps the busy paths free of deadlocks: a team's turn, then member rows, then
task rows, then the team's counters row. The turn lets a write that changes the
team's shape (members, task dependencies, runs, memory) run as on SQLite, after
every other such write of its team and seeing its commit. The busy paths take
narrower locks instead: a mailbox, transcript or continuity note its member's
row; a claim, completion or heartbeat its task's row (a claim picks its task with
SKIP LOCKED, so claims pick different tasks at once). The counters row (events,
task ids, fencing tokens) is locked from a write's first event to its commit, so
the log has no gaps, and a write never waits for another lock while it holds it.
"""

from __future__ import annotations

from accord.store.sql.channels import ChannelsPart
from accord.store.sql.claims import BoardPart
from accord.store.sql.deliberations import DeliberationsPart
from accord.store.sql.dump import DumpPart
from accord.store.sql.log import LogPart
from accord.store.sql.mail import MailPart
from accord.store.sql.memory import MemoryPart
from accord.store.sql.routes import RoutesPart
from accord.store.sql.runs import RunsPart
from accord.store.sql.seam import Conflict, Connection, Cursor, MemorySearch, Seam, atomic
from accord.store.sql.skills import SkillsPart
from accord.store.sql.teams import TeamsPart

__all__ = ["Conflict", "Connection", "Cursor", "MemorySearch", "SQLStore", "Seam", "atomic"]


class SQLStore(
    TeamsPart,
    BoardPart,
    MailPart,
    ChannelsPart,
    DeliberationsPart,
    RoutesPart,
    LogPart,
    RunsPart,
    MemoryPart,
    SkillsPart,
    DumpPart,
):
    """The store's logic over a SQL connection; see the package docstring for the seam."""
