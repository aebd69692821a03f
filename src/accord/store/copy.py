"""Moving teams from one store to another (SQLite to PostgreSQL, and back), history included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accord.errors import AlreadyExists, StoreError
from accord.store.base import Store


@dataclass(frozen=True, slots=True)
class Copied:
    team: str
    rows: dict[str, int]  # rows written per table


def copy_teams(source: Store, target: Store, teams: Sequence[str] = ()) -> list[Copied]:
    """Copy ``teams`` (default: every team of ``source``) into ``target``.

    Everything is checked before anything is written: each named team exists in the
    source, and none exists in the target. Each team is then written in one
    transaction and read back, and its row counts compared with the source's.
    """
    names = list(dict.fromkeys(teams)) or [t.name for t in source.list_teams()]
    for name in names:
        source.get_team(name)  # UnknownTeam, naming the teams there are
    there = {t.name for t in target.list_teams()}
    clash = [n for n in names if n in there]
    if clash:
        raise AlreadyExists(
            f"the target store already has team {', '.join(map(repr, clash))}; "
            "delete it there first, or copy into another store"
        )
    done: list[Copied] = []
    for name in names:
        dump = source.dump_team(name)
        written = target.load_team(dump)
        check = target.dump_team(name).counts()
        if check != dump.counts():
            raise StoreError(
                f"team {name!r} was copied but reads back differently "
                f"({check} instead of {dump.counts()}); the target needs checking"
            )
        done.append(Copied(name, written))
    return done
