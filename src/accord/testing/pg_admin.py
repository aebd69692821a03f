"""PostgreSQL for tests and benchmarks: a server to use, throwaway databases and
schemas on it, and private clusters that a test may restart or lock with a password.

It is test tooling, not part of the product: it speaks SQL to the server, never to
accord's data (only ``store/`` does that). Code reaches it as ``accord.testing.pg``.

Tests find a server through ``ACCORD_TEST_POSTGRES`` (a URL whose user may create
databases), else try the local one at ``postgresql://postgres@127.0.0.1:5432/test``
(then as ``root``). Each process makes its own database ``accord_test_<random>``
(``Throwaway``) and one schema in it per test, which is fast; everything is dropped
at the end. A ``PrivateCluster`` is a server of its own, in a temporary folder on a
free port, for what must never be done to a shared server: restarting it, or
turning on password logins. It needs the PostgreSQL server binaries (``initdb``,
``pg_ctl``); run as root it runs them as the ``postgres`` user.

    with PrivateCluster(password="s3cret") as cluster:
        store = open_store(cluster.url(), create=True)
        cluster.restart()
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from accord.location import parse_location, redact

__all__ = [
    "DEFAULT_SERVERS",
    "ENV",
    "HOW_TO_ENABLE",
    "REQUIRE_ENV",
    "PrivateCluster",
    "Throwaway",
    "bench_server",
    "find_server",
    "free_port",
    "private_cluster_missing",
    "redact",
    "with_database",
    "with_schema",
]

ENV = "ACCORD_TEST_POSTGRES"
REQUIRE_ENV = "ACCORD_REQUIRE_POSTGRES"  # "1": a test that cannot reach a server fails
DEFAULT_SERVERS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
HOW_TO_ENABLE = (
    f"set {ENV}=postgresql://USER@HOST:PORT/DATABASE (a user that may create databases) to run them"
)


def find_server(url: str | None = None) -> tuple[str | None, str]:
    """A server URL tests may use (``url``, else ``$ACCORD_TEST_POSTGRES``, else the
    local defaults), or None and why none answered."""
    url = url or os.environ.get(ENV) or None
    why = ""
    for candidate in (url,) if url else DEFAULT_SERVERS:
        try:
            psycopg.connect(candidate, connect_timeout=3).close()
            return candidate, ""
        except psycopg.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            why = f"{redact(candidate)}: {first}"
    return None, why


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    return parse_location(url).with_database(database)


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections put their tables in ``schema`` (its ``search_path``)."""
    return parse_location(url).with_schema(schema)


class Throwaway:
    """A database made for this process on a server, handing out one schema per test.

    Creating accord's tables takes a tenth of a second, so a schema a test is done
    with is emptied (its rows deleted, its id counters reset) and handed to the next
    test: ``schema()`` then ``release()``. A test that must see a schema nobody ever
    migrated asks ``schema(fresh=True)``; such a schema is dropped on release.
    """

    def __init__(self, server_url: str, prefix: str = "accord_test") -> None:
        self.name = f"{prefix}_{secrets.token_hex(4)}"
        self._server = server_url
        self._free: list[str] = []
        self._fresh: set[str] = set()
        self._extra: list[str] = []
        self._order: list[str] | None = None
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.url = with_database(server_url, self.name)
        self._admin = psycopg.connect(self.url, autocommit=True)

    def schema(self, *, fresh: bool = False) -> tuple[str, str]:
        """An empty schema: its name, and a URL whose connections put their tables in it."""
        if self._free and not fresh:
            name = self._free.pop()
        else:
            name = f"s_{secrets.token_hex(6)}"
            self._admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            if fresh:
                self._fresh.add(name)
        return name, with_schema(self.url, name)

    def release(self, name: str) -> None:
        """Empty the schema for the next test (or drop it, if it is not accord's)."""
        tables = self._tables(name)
        if name in self._fresh or "accord_migrations" not in tables:
            self._fresh.discard(name)
            self._admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )
            return
        if self._order is None or set(self._order) != tables - {"accord_migrations"}:
            self._order = self._deletion_order(name, tables - {"accord_migrations"})
        with self._admin.transaction():
            for table in self._order:
                self._admin.execute(
                    sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(name), sql.Identifier(table))
                )
            self._admin.execute(
                "SELECT setval(format('%%I.%%I', schemaname, sequencename)::regclass, 1, false) "
                "FROM pg_sequences WHERE schemaname = %s",
                (name,),
            )
        self._free.append(name)

    def _tables(self, schema: str) -> set[str]:
        rows = self._admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        return {r[0] for r in rows}

    def _deletion_order(self, schema: str, tables: set[str]) -> list[str]:
        """Tables in an order that deletes every row that refers to another first."""
        refers: dict[str, set[str]] = {t: set() for t in tables}
        for child, parent in self._admin.execute(
            "SELECT c.relname, p.relname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid "
            "WHERE k.contype = 'f' AND k.connamespace = %s::regnamespace",
            (schema,),
        ):
            if child != parent and child in refers:
                refers[child].add(parent)
        order: list[str] = []
        while refers:
            # A table nobody left refers to can go now.
            ready = sorted(t for t in refers if not any(t in ps for ps in refers.values()))
            if not ready:
                raise RuntimeError(f"foreign keys in {schema} refer to each other in a circle")
            for table in ready:
                order.append(table)
                del refers[table]
        return order

    def database(self) -> str:
        """The URL of a new empty database of its own (dropped with this one)."""
        name = f"{self.name}_{secrets.token_hex(3)}"
        with psycopg.connect(self._server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._extra.append(name)
        return with_database(self._server, name)

    def close(self) -> None:
        self._admin.close()
        with psycopg.connect(self._server, autocommit=True) as conn:
            for name in [*self._extra, self.name]:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def __enter__(self) -> Throwaway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _binaries() -> Path | None:
    """The folder of the newest installed ``initdb`` and ``pg_ctl``."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:

        def version(path: str) -> int:
            number = Path(path).parts[-3]
            return int(number) if number.isdigit() else 0

        return Path(max(found, key=version)).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def private_cluster_missing() -> str | None:
    """Why a PrivateCluster cannot run here, or None when it can."""
    if _binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run initdb as"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at this moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateCluster:
    """A PostgreSQL server in a temporary folder, on a free port, for one test (or
    bench): its superuser ``accord`` logs in with ``password`` (scram-sha-256), or
    with no password at all when ``password`` is None. Stopped and deleted on exit."""

    def __init__(
        self,
        *,
        password: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        missing = private_cluster_missing()
        if missing:
            raise RuntimeError(f"cannot run a private PostgreSQL cluster: {missing}")
        bindir = _binaries()
        assert bindir is not None
        self._bin = bindir
        self.password = password
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="accord-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        self._options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.folder}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",  # a test server: speed over surviving power loss
                *(f"-c {k}={v}" for k, v in (settings or {}).items()),
            ]
        )
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        args = ["-D", str(self.data), "-U", "accord", "--no-sync", "-E", "UTF8", "--locale=C"]
        if password is None:
            args.append("--auth=trust")
        else:
            pwfile = self.folder / "pw"
            pwfile.write_text(password + "\n")
            if self._user:
                os.chown(pwfile, pwd.getpwnam(self._user).pw_uid, -1)
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            self._run("initdb", *args)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._running = False

    def url(
        self, *, user: str = "accord", password: str | None = None, database: str = "postgres"
    ) -> str:
        """A URL of this server (with this cluster's password unless told another)."""
        secret = self.password if password is None else password
        login = quote(user) + (f":{quote(secret, safe='')}" if secret is not None else "")
        return f"postgresql://{login}@127.0.0.1:{self.port}/{quote(database)}"

    def create_database(self, name: str) -> str:
        """Make a database; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(database=name)

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", self._options, "-l", str(self.log), "-w", "start"
        )
        self._running = True

    def restart(self, mode: str = "fast") -> None:
        """Restart the server: ``fast`` ends every session (rolling back what is open)."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            self._options,
            "-l",
            str(self.log),
            "-m",
            mode,
            "-w",
            "restart",
        )

    def stop(self, mode: str = "immediate") -> None:
        if self._running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self._running = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, tool: str, *args: str) -> None:
        extra: dict[str, Any] = {"user": self._user} if self._user else {}
        done = subprocess.run(
            [str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            cwd=self.folder,
            timeout=120,
            check=False,
            **extra,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{log}"
            )


@contextmanager
def bench_server(choice: str | None = None) -> Iterator[tuple[str, str]]:
    """A server a benchmark may create databases on, and a line that says which.

    ``choice`` is a URL; or ``"private"``, a private cluster with fsync on (so
    ``synchronous`` means what it says) and room for 400 connections (64 processes
    each with a pool and a listening connection would not fit the default 100); or
    None: a private cluster if this machine can run one, else the test server.
    """
    if choice and choice != "private":
        yield choice, f"{redact(choice)} (given)"
        return
    missing = private_cluster_missing()
    if missing and choice == "private":
        raise RuntimeError(f"cannot run a private PostgreSQL cluster: {missing}")
    if missing:
        url, why = find_server()
        if url is None:
            raise RuntimeError(f"no PostgreSQL server ({why}); {HOW_TO_ENABLE}")
        yield url, f"{redact(url)} (the test server: {missing})"
        return
    settings = {"fsync": "on", "max_connections": "400", "shared_buffers": "128MB"}
    with PrivateCluster(settings=settings) as cluster:
        yield cluster.url(), f"a private cluster on port {cluster.port} (fsync on)"
