"""Where a store is: a file path, or a ``postgresql://`` URL, picked apart in one place.

``parse_location`` reads what a person or a setting gave (``--store``,
``ACCORD_STORE``, ``accord.toml``) once, and the ``StoreLocation`` it returns answers
what the rest of accord asks of it: is it a URL, is it PostgreSQL, how to show it
without its password, how to hand it to a tool without its password. Checking a URL
against libpq's own grammar, and connecting, stay with the PostgreSQL backend.

This is the ground floor: it imports nothing of accord's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A store location as given; ``scheme`` is None for a file path."""

    text: str
    scheme: str | None

    @property
    def is_url(self) -> bool:
        return self.scheme is not None

    @property
    def is_postgres(self) -> bool:
        return self.scheme in POSTGRES_SCHEMES

    def shown(self) -> str:
        """Safe to print: a PostgreSQL URL's password becomes ``***``."""
        return redact(self.text) if self.is_postgres else self.text

    def without_password(self) -> str:
        """The location with a URL's password taken out, for a tool that must not see
        it (a path is unchanged)."""
        if not self.is_url:
            return self.text
        parts = urlsplit(self.text)
        if parts.password is None:
            return self.text
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))

    def with_database(self, database: str) -> str:
        """The URL naming another database on the same server."""
        return urlunsplit(urlsplit(self.text)._replace(path="/" + quote(database)))

    def with_schema(self, schema: str) -> str:
        """The URL whose connections put their tables in ``schema`` (its ``search_path``)."""
        parts = urlsplit(self.text)
        option = "options=" + quote(f"-csearch_path={schema}")
        query = f"{parts.query}&{option}" if parts.query else option
        return urlunsplit(parts._replace(query=query))


def parse_location(text: str) -> StoreLocation:
    """``text`` as a store location: a URL when it holds ``://``, else a path."""
    scheme, sep, _ = text.partition("://")
    return StoreLocation(text, scheme if sep else None)


def redact(url: str) -> str:
    """``url`` with any password (in its login or a ``password=`` parameter) replaced
    by ``***``: safe to print."""
    scheme, sep, rest = url.partition("://")
    if sep:
        at = rest.rfind("@")
        if at >= 0:
            user, colon, _ = rest[:at].partition(":")
            rest = f"{user}{':***' if colon else ''}{rest[at:]}"
        url = f"{scheme}{sep}{rest}"
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)
