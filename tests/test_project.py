"""Project setup in one place (runtime/project.py): what init, a first run and the demo make."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.errors import InvalidName
from accord.runtime.project import init, make_state_dir, set_up_store


@pytest.fixture(autouse=True)
def _no_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCORD_STORE", raising=False)


def test_the_state_folder_keeps_itself_out_of_git(tmp_path: Path) -> None:
    assert make_state_dir(tmp_path)
    assert (tmp_path / ".accord" / ".gitignore").read_text() == "*\n"
    (tmp_path / ".accord" / ".gitignore").write_text("mine\n")
    assert not make_state_dir(tmp_path)  # there already: left as it is
    assert (tmp_path / ".accord" / ".gitignore").read_text() == "mine\n"


def test_a_first_run_makes_the_store_once_where_the_project_says(tmp_path: Path) -> None:
    (tmp_path / "accord.toml").write_text('[store]\npath = "state/team.db"\n')
    (tmp_path / "state").mkdir()
    project, made = set_up_store(tmp_path, None)
    assert made and project.store_location == str(tmp_path / "state" / "team.db")
    assert (tmp_path / "state" / "team.db").is_file()
    assert (tmp_path / ".accord" / ".gitignore").is_file()
    assert set_up_store(tmp_path, None)[1] is False


def test_init_makes_the_project_and_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        init(tmp_path, None, store_from_env=None, team="Not A Name")
    assert list(tmp_path.iterdir()) == []
    done = init(tmp_path, None, store_from_env=None, team="main")
    assert done.made == ("accord.toml", ".accord/", ".accord/accord.db", "team main")
    assert not done.password_withheld
    again = init(tmp_path, None, store_from_env=None, team=None)
    assert again.made == () and again.store_location == str(tmp_path / ".accord" / "accord.db")
