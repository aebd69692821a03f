"""The store interface: everything accord keeps, behind one set of atomic operations.

The interface is one part per noun: ``TeamStore`` (teams, members), ``BoardStore``
(tasks, claims, leases), ``MailStore`` (messages), ``ChannelStore`` (channels),
``DeliberationStore`` (deliberations) and
``RouteStore`` (routed messages) and
``WakeStore`` (what a waiting member checks), ``LogStore`` (events, transcripts,
usage), ``RunStore`` (runs, spawns, hosts), ``MemoryStore``, ``SkillStore`` (skills,
their versions and uses) and ``DumpStore``.
``Store`` is all of them, plus
the store's lifecycle (``location``, ``clock``, ``close``). A service that uses one
part takes that part.

Each part is the class in ``accord.store.sql`` that writes its operations once, in
SQL both backends run; the docstring of each operation there is its contract, so
no signature is written twice. A backend (SQLite, PostgreSQL) subclasses ``Store``
and supplies only the seam (``accord.store.sql.seam``), and must pass
``accord.testing.conformance``. Each operation is one transaction: it either
happens whole, with its event appended to the team's log in the same transaction,
or not at all. Services above this layer add the rules that need no atomicity
(hooks, identity checks); anything that must be decided together with a write
(which task a claim takes, whether a token is current, whether a blocker closes a
cycle) is decided here.

Times are seconds since the epoch from the store's ``clock``, so tests can pass a
fake one and move leases and visibility timeouts deterministically.
"""

from __future__ import annotations

from accord.store.limits import (
    MAX_BODY,
    MAX_CONTINUITY,
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_MEMORY,
    MAX_PAYLOAD,
    MAX_RESULT,
    MAX_SUMMARY,
    MAX_TITLE,
    UNSET,
    Clock,
)
from accord.store.sql import SQLStore as Store
from accord.store.sql.channels import ChannelsPart as ChannelStore
from accord.store.sql.claims import BoardPart as BoardStore
from accord.store.sql.deliberations import DeliberationsPart as DeliberationStore
from accord.store.sql.dump import DumpPart as DumpStore
from accord.store.sql.log import LogPart as LogStore
from accord.store.sql.mail import MailPart as MailStore
from accord.store.sql.memory import MemoryPart as MemoryStore
from accord.store.sql.routes import RoutesPart as RouteStore
from accord.store.sql.runs import RunsPart as RunStore
from accord.store.sql.skills import SkillsPart as SkillStore
from accord.store.sql.teams import TeamsPart as TeamStore

#: What a waiting member checks: ``change_marker`` and ``pending_work``.
WakeStore = MailStore

__all__ = [
    "MAX_BODY",
    "MAX_CONTINUITY",
    "MAX_DESCRIPTION",
    "MAX_KEY",
    "MAX_MEMORY",
    "MAX_PAYLOAD",
    "MAX_RESULT",
    "MAX_SUMMARY",
    "MAX_TITLE",
    "UNSET",
    "BoardStore",
    "ChannelStore",
    "Clock",
    "DeliberationStore",
    "DumpStore",
    "LogStore",
    "RouteStore",
    "MailStore",
    "MemoryStore",
    "RunStore",
    "SkillStore",
    "Store",
    "TeamStore",
    "WakeStore",
]
