"""A store location is picked apart once (accord.location), however it is asked about."""

from __future__ import annotations

from pathlib import Path

from accord.location import parse_location, redact


def test_a_path_and_urls() -> None:
    path = parse_location("/home/a/.accord/accord.db")
    assert (path.is_url, path.is_postgres, path.scheme) == (False, False, None)
    assert path.shown() == path.without_password() == "/home/a/.accord/accord.db"

    url = parse_location("postgresql://alice:s3cret@db.example:5432/team?sslmode=require")
    assert url.is_url and url.is_postgres and url.scheme == "postgresql"
    assert url.shown() == "postgresql://alice:***@db.example:5432/team?sslmode=require"
    assert url.without_password() == "postgresql://alice@db.example:5432/team?sslmode=require"
    assert parse_location("postgres://u@h/d").is_postgres

    other = parse_location("mysql://u:p@h/d")
    assert other.is_url and not other.is_postgres and other.scheme == "mysql"
    assert other.shown() == "mysql://u:p@h/d"  # only a store accord opens is shown redacted


def test_test_tooling_derives_urls_from_the_same_parse() -> None:
    url = parse_location("postgresql://postgres@127.0.0.1:5432/test?sslmode=disable")
    assert url.with_database("accord_x") == (
        "postgresql://postgres@127.0.0.1:5432/accord_x?sslmode=disable"
    )
    assert url.with_schema("s1").endswith("?sslmode=disable&options=-csearch_path%3Ds1")
    assert redact("postgresql://h/d?password=x&user=u") == "postgresql://h/d?password=***&user=u"


def test_inside_a_members_worktree_the_project_is_the_one_it_belongs_to(tmp_path: Path) -> None:
    """An external agent's `accord mcp`, started in its worktree (which checks out the
    project's committed accord.toml too), acts on the project, not on the worktree."""
    from accord._where import find_root

    root = tmp_path / "proj"
    work = root / ".accord" / "worktrees" / "main" / "ext"
    (work / "src").mkdir(parents=True)
    (root / "accord.toml").write_text("")
    (work / "accord.toml").write_text("")
    assert find_root(work / "src") == root.resolve()
    assert find_root(root) == root.resolve()
