"""Skills: named procedures a member lists in its context and loads when it needs one.

A skill is Claude Code's ``SKILL.md``: YAML front matter with ``name`` and
``description`` (other keys, like ``allowed-tools``, are kept as they are), a
Markdown body, and files beside it. Three places hold skills, and where two hold
the same name the first wins (``shadows`` says what it hides):

1. the team's store: its own skills, written and revised by members and the person,
   every version kept (``accord.store.sql.skills``);
2. the project's ``.claude/skills/NAME/SKILL.md``, read unchanged;
3. the user's ``~/.claude/skills/NAME/SKILL.md``, read unchanged.

A file that does not parse is skipped with a warning naming it (``warnings``); the
others still load. Revising a skill read from a file records the file's text as the
store's version 1 and the revision as version 2, so the team's version shadows the
file from then on, and ``accord skill export`` writes it back as a file.

The rules live here: precedence, who may use which skill (an agent definition's
``skills:`` list), the cap on a body (``[learning] skill_chars``: refused when written,
cut with a marker when a file's is loaded), review (``[learning] skill_review``), and
revision loops (a revision whose body is an earlier version's is refused: that is
``accord skill revert``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.errors import InvalidState, UnknownSkill, UserError
from accord.types import (
    PERSON,
    SKILL_DESCRIPTION_MAX,
    MemberRole,
    SkillDraft,
    SkillOrigin,
    SkillStatus,
    SkillUse,
    SkillVersion,
    check_skill_name,
)

if TYPE_CHECKING:
    from accord.config import LearningConfig
    from accord.store.base import Store

SKILL_FILE = "SKILL.md"
PROJECT_DIR = Path(".claude") / "skills"
# The files beside a SKILL.md that are listed (and, on a first revision, copied into
# the store as text): at most this many, each at most FILE_CHARS characters.
MAX_FILES = 50
FILE_CHARS = 100_000
# Characters of the list of skills in a member's system prompt.
LIST_CHARS = 4000

_FRONT = re.compile(r"\A---[ \t]*\r?\n(?:(.*?)\r?\n)?---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)


@dataclass(frozen=True, slots=True)
class Skill:
    """A skill as a member sees it: its current text, where it comes from (``version``
    is the store's number; a file's skill is version 1 until revised) and what it hides."""

    name: str
    description: str
    body: str
    meta: dict[str, Any]
    origin: SkillOrigin
    version: int
    files: tuple[str, ...] = ()
    path: Path | None = None  # the SKILL.md it was read from
    shadows: tuple[SkillOrigin, ...] = ()
    file_texts: dict[str, str] = field(default_factory=dict)  # the store's files

    @property
    def where(self) -> str:
        """Where it comes from, for people: ``store vN`` or the file's path."""
        if self.origin == SkillOrigin.STORE:
            return f"store v{self.version}"
        return f"{self.origin.value} {self.path}"


@dataclass(frozen=True, slots=True)
class Loaded:
    """What ``use_skill`` gives a member: the version it loaded, its body (cut when a
    file's is over the cap) and the use recorded."""

    skill: Skill
    body: str
    use: SkillUse
    pinned: bool  # an earlier load in the same attempt chose this version


@dataclass(frozen=True, slots=True)
class VersionStats:
    """Uses of one version of a skill, and the outcomes of the attempts they served."""

    name: str
    version: int
    uses: int
    attempts: int
    succeeded: int
    failed: int
    open: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded over finished attempts (None: none finished yet)."""
        done = self.succeeded + self.failed
        return self.succeeded / done if done else None


def parse_skill_file(text: str, source: str, folder: str) -> SkillDraft:
    """A ``SKILL.md``'s text as a draft; UserError naming ``source`` when it is broken.
    ``name`` defaults to the folder's name, as Claude Code's does."""
    import yaml

    m = _FRONT.match(text)
    if m is None:
        raise UserError(f"{source}: no front matter (a `---` block with name and description)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when built with it
    try:
        front = yaml.load(m.group(1) or "", Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 2}" if mark is not None else ""
        raise UserError(f"{source}{where}: the front matter is not valid YAML") from e
    if not isinstance(front, dict):
        raise UserError(f"{source}: the front matter must be `key: value` lines")
    name = front.get("name", folder)
    if not isinstance(name, str):
        raise UserError(f"{source}: name must be text")
    try:
        check_skill_name(name)
    except UserError as e:
        raise UserError(f"{source}: {e}") from e
    description = front.get("description")
    if not isinstance(description, str) or not description.strip():
        raise UserError(f"{source}: a description is required (what the skill is for)")
    if len(description) > SKILL_DESCRIPTION_MAX:
        raise UserError(
            f"{source}: the description has {len(description)} characters; at most "
            f"{SKILL_DESCRIPTION_MAX}"
        )
    meta = {str(k): v for k, v in front.items() if k not in ("name", "description")}
    return SkillDraft(name, description.strip(), m.group(2).strip("\n"), meta)


def render_skill_file(draft: SkillDraft | Skill) -> str:
    """The ``SKILL.md`` text of a skill: its front matter (name, description, then its
    other keys as they were) and its body."""
    import yaml

    front = {"name": draft.name, "description": draft.description, **draft.meta}
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{head}---\n\n{draft.body.rstrip()}\n"


def _files_beside(folder: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != SKILL_FILE:
            found.append(path.relative_to(folder).as_posix())
            if len(found) >= MAX_FILES:
                break
    return found


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it would leave ``root`` (an absolute path, ``..``)."""
    if not relative or Path(relative).is_absolute() or "\\" in relative:
        raise UserError(f"{relative!r} is not a path inside the skill's folder")
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UserError(f"{relative!r} is not a path inside the skill's folder")
    return target


def _cut(body: str, limit: int, source: str) -> str:
    if len(body) <= limit:
        return body
    return (
        body[:limit] + f"\n\n[accord cut this skill here: {source} has {len(body):,} "
        f"characters, only the first {limit:,} are shown ([learning] skill_chars)]"
    )


class Skills:
    """The skills one team's members can use, and how they change."""

    def __init__(
        self,
        store: Store,
        team: str,
        config: LearningConfig | None = None,
        root: Path | None = None,
        home: Path | None = None,
    ) -> None:
        from accord.config import LearningConfig

        self.store = store
        self.team = team
        self.config = config or LearningConfig()
        self.root = root
        self._home = home
        #: One line per SKILL.md that could not be read (it was skipped), naming it.
        self.warnings: list[str] = []
        # Each SKILL.md read, by path, with the size and times it had then: a member
        # lists its skills at every task, and reads a file again only once it changed.
        self._read: dict[Path, tuple[tuple[int, int, int], Skill | str]] = {}

    # reading ---------------------------------------------------------------------

    @property
    def home(self) -> Path | None:
        if self._home is not None:
            return self._home
        try:
            return Path(os.environ.get("HOME") or Path.home())
        except RuntimeError:
            return None

    def _folder(self, origin: SkillOrigin) -> Path | None:
        base = self.root if origin == SkillOrigin.PROJECT else self.home
        return None if base is None else base / PROJECT_DIR

    def _from_files(self, origin: SkillOrigin) -> dict[str, Skill]:
        folder = self._folder(origin)
        found: dict[str, Skill] = {}
        if folder is None or not folder.is_dir():
            return found
        for path in sorted(folder.glob(f"*/{SKILL_FILE}")):
            read = self._read_file(path, origin)
            if isinstance(read, str):
                if read not in self.warnings:
                    self.warnings.append(read)
                continue
            found[read.name] = read
        return found

    def _read_file(self, path: Path, origin: SkillOrigin) -> Skill | str:
        """The skill ``path`` holds, or the warning that it was skipped."""
        try:
            st, folder = path.stat(), path.parent.stat()
            key = (st.st_size, st.st_mtime_ns, folder.st_mtime_ns)
        except OSError as e:
            return f"{path}: {e}; the skill is skipped"
        known = self._read.get(path)
        if known is not None and known[0] == key:
            return known[1]
        read: Skill | str
        try:
            draft = parse_skill_file(path.read_text(encoding="utf-8"), str(path), path.parent.name)
            read = Skill(
                draft.name,
                draft.description,
                draft.body,
                draft.meta,
                origin,
                1,
                tuple(_files_beside(path.parent)),
                path,
            )
        except (UserError, OSError, UnicodeDecodeError) as e:
            warning = str(e) if isinstance(e, UserError) else f"{path}: {e}"
            read = f"{warning}; the skill is skipped"
        self._read[path] = (key, read)
        return read

    def _from_store(self) -> dict[str, Skill]:
        current: dict[str, SkillVersion] = {}
        for v in self.store.skill_versions(self.team):
            if v.status == SkillStatus.ACTIVE:
                current[v.name] = v  # versions come in order: the highest active wins
        return {name: self._skill(v) for name, v in current.items()}

    def _skill(self, v: SkillVersion, shadows: tuple[SkillOrigin, ...] = ()) -> Skill:
        return Skill(
            v.name,
            v.description,
            v.body,
            v.meta,
            SkillOrigin.STORE,
            v.version,
            tuple(sorted(v.files)),
            None,
            shadows,
            dict(v.files),
        )

    def available(self, allowed: Sequence[str] | None = None) -> list[Skill]:
        """Every skill by name, the store's winning over the project's over the user's;
        with ``allowed`` (an agent definition's ``skills:``), only those."""
        layers = [self._from_store(), self._from_files(SkillOrigin.PROJECT)]
        layers.append(self._from_files(SkillOrigin.USER))
        found: dict[str, Skill] = {}
        for layer in layers:
            for name, skill in layer.items():
                if name in found:
                    winner = found[name]
                    found[name] = Skill(
                        winner.name,
                        winner.description,
                        winner.body,
                        winner.meta,
                        winner.origin,
                        winner.version,
                        winner.files,
                        winner.path,
                        (*winner.shadows, skill.origin),
                        winner.file_texts,
                    )
                else:
                    found[name] = skill
        listed = sorted(found.values(), key=lambda s: s.name)
        if allowed is not None:
            listed = [s for s in listed if s.name in allowed]
        return listed

    def get(self, name: str, allowed: Sequence[str] | None = None) -> Skill:
        """The skill ``name`` as it is now; UnknownSkill listing the ones there are, or
        UserError when ``allowed`` does not name it."""
        check_skill_name(name)
        every = {s.name: s for s in self.available()}
        if name not in every:
            known = ", ".join(sorted(every)) or "none yet"
            raise UnknownSkill(f"no skill named {name!r} (skills: {known})", team=self.team)
        if allowed is not None and name not in allowed:
            mine = ", ".join(sorted(n for n in allowed if n in every)) or "none"
            raise UserError(
                f"skill {name!r} is not one your agent definition allows (its skills: {mine})"
            )
        return every[name]

    def listing(self, allowed: Sequence[str] | None = None, limit: int = LIST_CHARS) -> str:
        """The skills a member may load, one line each (name: description), cut at
        ``limit`` characters; empty when there are none."""
        lines: list[str] = []
        used = 0
        skills = self.available(allowed)
        for i, s in enumerate(skills):
            line = f"- {s.name}: {' '.join(s.description.split())}"
            if used + len(line) > limit:
                lines.append(f"- ... and {len(skills) - i} more (use_skill loads any by name)")
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)

    def version(self, name: str, version: int) -> SkillVersion:
        """One stored version of ``name``; UnknownSkill if the store has no such version."""
        check_skill_name(name)
        for v in self.store.skill_versions(self.team, name):
            if v.version == version:
                return v
        raise UnknownSkill(f"the store has no version {version} of skill {name!r}", team=self.team)

    def history(self, name: str) -> list[SkillVersion]:
        """Every stored version of ``name``, oldest first; a skill read only from a file
        has none yet (UnknownSkill if there is no such skill at all)."""
        check_skill_name(name)
        versions = self.store.skill_versions(self.team, name)
        if not versions:
            self.get(name)
        return versions

    # using -------------------------------------------------------------------------

    def load(
        self,
        name: str,
        member: str,
        task_id: int | None,
        allowed: Sequence[str] | None = None,
    ) -> Loaded:
        """Load skill ``name`` for ``member`` and record the use. A member that loaded it
        earlier in the same attempt of the same task gets that version again, whatever
        was revised since: a revision takes effect for the next task."""
        skill = self.get(name, allowed)
        use = self.store.use_skill(self.team, name, skill.version, skill.origin, member, task_id)
        pinned = (use.origin, use.version) != (skill.origin, skill.version)
        if pinned:
            if use.origin == SkillOrigin.STORE:
                skill = self._skill(self.version(name, use.version))
            else:  # a file's skill, revised since: its text is the store's version 1 now
                stored = self.store.skill_versions(self.team, name)
                if stored:
                    skill = self._skill(stored[0])
        body = skill.body
        if skill.origin != SkillOrigin.STORE:
            body = _cut(body, self.config.skill_chars, str(skill.path))
        return Loaded(skill, body, use, pinned)

    def read_file(self, name: str, path: str, allowed: Sequence[str] | None = None) -> str:
        """The text of a file beside skill ``name``'s SKILL.md (``path`` relative to its
        folder); never a file outside that folder."""
        skill = self.get(name, allowed)
        if skill.origin == SkillOrigin.STORE:
            if path not in skill.file_texts:
                raise UserError(
                    f"skill {name!r} has no file {path!r} (its files: "
                    f"{', '.join(skill.files) or 'none'})"
                )
            return skill.file_texts[path]
        assert skill.path is not None
        target = _inside(skill.path.parent, path)
        if not target.is_file():
            raise UserError(
                f"skill {name!r} has no file {path!r} (its files: "
                f"{', '.join(skill.files) or 'none'})"
            )
        return _cut(target.read_text(encoding="utf-8", errors="replace"), FILE_CHARS, path)

    # writing -----------------------------------------------------------------------

    def _check_body(self, name: str, body: str) -> None:
        limit = self.config.skill_chars
        if len(body) > limit:
            raise UserError(
                f"the body of skill {name!r} has {len(body):,} characters; a skill may have "
                f"{limit:,} ([learning] skill_chars): shorten it, or put details in a file"
            )

    def write(
        self,
        name: str,
        description: str,
        body: str,
        author: str,
        *,
        meta: dict[str, Any] | None = None,
    ) -> SkillVersion:
        """A new skill of the team's own, active at once (version 1). A name the project
        or the user has already as a file is refused: revise that one instead."""
        check_skill_name(name)
        self._check_body(name, body)
        for s in self.available():
            if s.name == name and s.origin != SkillOrigin.STORE:
                raise InvalidState(
                    f"skill {name!r} exists already ({s.where}); revise it instead of writing "
                    "a new one",
                    team=self.team,
                )
        return self.store.write_skill(
            self.team, SkillDraft(name, description.strip(), body, dict(meta or {})), author
        )

    def _pending(self, author: str) -> bool:
        """Whether a revision by ``author`` waits for a review: the person's own does not
        (the person is who reviews in the end)."""
        return self.config.skill_review != "none" and author != PERSON

    def revise(
        self,
        name: str,
        body: str,
        reason: str,
        author: str,
        *,
        description: str | None = None,
        allowed: Sequence[str] | None = None,
    ) -> SkillVersion:
        """The next version of ``name`` with a new body (and description), superseding the
        current one; pending a review when ``[learning] skill_review`` asks for one.
        Refused: an empty reason, a body over the cap, the current body again, or an
        earlier version's body (a loop: revert to it with ``accord skill revert``)."""
        if not reason or not reason.strip():
            raise UserError(
                f"a revision of skill {name!r} needs a reason naming its evidence (the task "
                "or failure that showed the old text fell short)"
            )
        skill = self.get(name, allowed)
        self._check_body(name, body)
        stored = self.store.skill_versions(self.team, name)
        if body.strip() == skill.body.strip():
            raise UserError(
                f"the body is the same as skill {name!r}'s current version (v{skill.version}); "
                "nothing to revise"
            )
        for v in stored:
            if v.status == SkillStatus.ACTIVE and v.version != skill.version:
                if v.body.strip() == body.strip():
                    raise InvalidState(
                        f"this revision of skill {name!r} would bring back v{v.version}'s body "
                        f"(a revision loop); to go back to it, use `accord skill revert {name} "
                        f"--to {v.version}`",
                        team=self.team,
                    )
        draft = SkillDraft(
            name,
            (description if description is not None else skill.description).strip(),
            body,
            dict(skill.meta),
            dict(skill.file_texts),
        )
        if skill.origin == SkillOrigin.STORE:
            return self.store.revise_skill(
                self.team,
                draft,
                author,
                reason=reason.strip(),
                based_on=skill.version,
                pending=self._pending(author),
            )
        seed, files = self._seed(skill)
        draft = SkillDraft(draft.name, draft.description, body, dict(skill.meta), files)
        return self.store.revise_skill(
            self.team,
            draft,
            author,
            reason=reason.strip(),
            based_on=None,
            pending=self._pending(author),
            seed=seed,
            seed_origin=skill.origin,
        )

    def _seed(self, skill: Skill) -> tuple[SkillDraft, dict[str, str]]:
        """A file's skill as the store's version 1: its whole text, and its files that
        are text (a binary or huge one stays behind, on disk)."""
        assert skill.path is not None
        files: dict[str, str] = {}
        for rel in skill.files:
            try:
                text = (skill.path.parent / rel).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if len(text) <= FILE_CHARS:
                files[rel] = text
        return SkillDraft(skill.name, skill.description, skill.body, dict(skill.meta), files), files

    def revert(self, name: str, to: int, author: str) -> SkillVersion:
        """A new version of ``name`` with version ``to``'s text (reason "revert to vN"),
        under the same review as any revision."""
        target = self.version(name, to)
        skill = self.get(name)
        if skill.origin == SkillOrigin.STORE and skill.version == to:
            raise UserError(f"v{to} is skill {name!r}'s current version already")
        if target.status == SkillStatus.PENDING:
            raise InvalidState(
                f"v{to} of skill {name!r} is pending a review: approve it instead", team=self.team
            )
        return self.store.revise_skill(
            self.team,
            SkillDraft(name, target.description, target.body, target.meta, target.files),
            author,
            reason=f"revert to v{to}",
            based_on=skill.version,
            pending=self._pending(author),
        )

    def review(
        self, name: str, version: int, *, approve: bool, reviewer: str, reason: str
    ) -> SkillVersion:
        """Approve or reject a pending version, as ``[learning] skill_review`` allows:
        "person" only the person; "lead" the lead or the person."""
        check_skill_name(name)
        if approve is False and not reason.strip():
            raise UserError("say why the revision is rejected (--reason)")
        who = self.config.skill_review
        if reviewer != PERSON:
            if who == "person":
                raise InvalidState(
                    "skill revisions are reviewed by the person ([learning] skill_review = "
                    '"person")',
                    team=self.team,
                )
            role = self._role(reviewer)
            if role != MemberRole.LEAD:
                raise InvalidState(
                    f"{reviewer} is not the lead: only the lead or the person reviews a skill's "
                    "revision",
                    team=self.team,
                )
        return self.store.review_skill(
            self.team, name, version, approve=approve, reviewer=reviewer, reason=reason.strip()
        )

    def _role(self, member: str) -> MemberRole | None:
        for m in self.store.list_members(self.team):
            if m.name == member:
                return m.role
        return None

    def pending(self) -> list[SkillVersion]:
        """Revisions waiting for a review, oldest first."""
        return [v for v in self.store.skill_versions(self.team) if v.status == SkillStatus.PENDING]

    # outcomes ----------------------------------------------------------------------

    def used_in(self, task_id: int, attempt: int, member: str) -> list[tuple[str, int]]:
        """The skills (name, version) ``member`` loaded in this attempt at the task."""
        uses = self.store.skill_uses(self.team, task_id=task_id)
        return list(
            dict.fromkeys(
                (u.skill, u.version) for u in uses if u.attempt == attempt and u.member == member
            )
        )

    def stats(self, name: str | None = None) -> list[VersionStats]:
        """Per skill and version: its uses, and the outcomes of the attempts they served
        (an attempt counts once however often it loaded the skill)."""
        if name is not None:
            check_skill_name(name)
        uses = self.store.skill_uses(self.team, name)
        if name is not None and not uses:
            self.get(name)  # UnknownSkill for a name that is nowhere
        by_version: dict[tuple[str, int], list[SkillUse]] = {}
        for u in uses:
            by_version.setdefault((u.skill, u.version), []).append(u)
        found = []
        for (skill, version), group in sorted(by_version.items()):
            attempts: dict[tuple[int, int], str] = {}
            for u in group:
                if u.task_id is not None and u.attempt is not None:
                    attempts[(u.task_id, u.attempt)] = u.outcome
            outcomes = list(attempts.values())
            found.append(
                VersionStats(
                    skill,
                    version,
                    len(group),
                    len(attempts),
                    outcomes.count("succeeded"),
                    outcomes.count("failed"),
                    outcomes.count("open"),
                )
            )
        return found

    # files -------------------------------------------------------------------------

    def export(self, directory: Path, names: Iterable[str] | None = None) -> list[Path]:
        """Write the team's own skills (their current versions; ``names`` only, when
        given) as ``directory/NAME/SKILL.md`` and the files beside it; never a path
        outside ``directory``. Returns the SKILL.md files written."""
        mine = {s.name: s for s in self._from_store().values()}
        wanted = list(names) if names is not None else sorted(mine)
        for n in wanted:
            check_skill_name(n)
            if n not in mine:
                known = ", ".join(sorted(mine)) or "none yet"
                raise UnknownSkill(
                    f"the team's store has no skill named {n!r} (its skills: {known})",
                    team=self.team,
                )
        # Every path is checked before anything is written.
        plans: list[tuple[Path, Skill, list[tuple[Path, str]]]] = []
        for n in wanted:
            skill = mine[n]
            folder = _inside(directory, n)
            files = [(_inside(folder, rel), text) for rel, text in skill.file_texts.items()]
            plans.append((folder, skill, files))
        written = []
        for folder, skill, files in plans:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / SKILL_FILE
            target.write_text(render_skill_file(skill), encoding="utf-8")
            for path, text in files:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            written.append(target)
        return written
