"""File tools: read, write, edit, list, glob and grep inside the member's workspace.

Every path the model gives is resolved to its real location (``..`` and
symlinks followed; for a file that does not exist yet, its nearest existing
parent) and refused unless it lies inside ``ToolContext.workspace``. Paths in
results are shown relative to the workspace, so the model never needs to know
where that is on disk. Walks never follow symlinked folders and skip ``.git``.

Writes (write_file, edit_file) are refused for accord's own state (``_not_protected``)
and for paths another member claimed for a task it holds (``_not_claimed``; see
``accord.agent.tools.claims``).

Reads stream line by line, so a large file costs memory in proportion to what
is shown, not to its size.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.errors import FileClaimed, UnknownTeam, UserError
from accord.globs import glob_regex as glob_regex  # re-exported: the tools' glob syntax
from accord.location import parse_location

# read_file shows at most this many lines per call, and cuts lines longer than this.
READ_LINES = 2000
LINE_CHARS = 2000
# grep and glob report at most this many hits; list_files this many entries.
MATCH_LIMIT = 200
ENTRY_LIMIT = 1000
# grep skips files larger than this (generated files, data dumps).
GREP_FILE_BYTES = 5 * 1024 * 1024
GREP_LINE_CHARS = 300
# A NUL byte in this much of the start of a file marks it as binary.
SNIFF_BYTES = 8192

SKIP_DIRS = frozenset({".git"})


# paths ---------------------------------------------------------------------


def _root(ctx: ToolContext) -> Path:
    return ctx.workspace.resolve()


def resolve(ctx: ToolContext, path: str) -> Path:
    """The real path ``path`` names inside the workspace, or UserError if it is outside.

    ``Path.resolve`` follows every symlink that exists and applies ``..`` to the
    rest, so a file that does not exist yet is judged by its real parent.
    """
    if "\x00" in path:
        raise UserError(f"path {path!r} contains a NUL byte; give a plain relative path")
    root = _root(ctx)
    given = Path(path).expanduser() if path == "~" or path.startswith("~/") else Path(path)
    joined = given if given.is_absolute() else root / given
    try:
        real = joined.resolve()
    except (RuntimeError, OSError) as e:  # RuntimeError: a symlink loop
        raise UserError(f"path {path!r} cannot be resolved: {e}") from e
    if real != root and not real.is_relative_to(root):
        lexical = Path(os.path.normpath(joined))
        via = "" if real == lexical else f" (it resolves to {real})"
        raise UserError(
            f"path {path!r} is outside your workspace{via}; use a path inside the "
            "workspace, relative to its root"
        )
    return real


def _not_protected(ctx: ToolContext, path: str, real: Path) -> None:
    """Refuse to write what accord itself runs on, whatever the mode (promise 9):
    the files hooks, rules and MCP servers come from, the agent definitions, ``.accord/`` (the
    store, logs, worktrees' bookkeeping) and the store file wherever it is."""
    # Judged by the real path, so a symlink to one of them is refused too.
    parts = real.relative_to(_root(ctx)).parts if real.is_relative_to(_root(ctx)) else ()
    name = real.name
    in_claude = real.parent.name == ".claude"
    if name in ("accord.toml", ".mcp.json") or (
        in_claude and fnmatch.fnmatch(name, "settings*.json")
    ):
        raise UserError(
            f"{path!r} configures hooks or MCP servers and no agent may change it; ask the "
            "person to edit it"
        )
    if real.parent.name == "agents" and real.parent.parent.name in (".claude", ".accord"):
        raise UserError(
            f"{path!r} is an agent definition and no agent may change it; ask the person"
        )
    if ".accord" in parts[:-1] or _is_store(ctx, real):
        raise UserError(
            f"{path!r} is accord's own state (the store, its logs) and no agent may write "
            "it; use the team tools to change the board, mail or memory"
        )


def _not_claimed(ctx: ToolContext, real: Path) -> None:
    """Refuse to write a path another member claimed for a task it holds (advisory file
    claims, ``claim_files``): FileClaimed names the holder and the task."""
    if ctx.team is None or not real.is_relative_to(_root(ctx)):
        return
    try:
        holder = ctx.team.board.file_holder(shown(ctx, real), ctx.member)
    except UnknownTeam:  # a team the store does not hold (deleted under us) claims nothing
        return
    if holder is not None:
        raise FileClaimed(
            f"{shown(ctx, real)} is claimed by {holder.member} for task #{holder.task_id} "
            f"({holder.pattern}); no other member may write it until that task ends",
            pattern=holder.pattern,
            member=holder.member,
            task_id=holder.task_id,
        )


def _is_store(ctx: ToolContext, real: Path) -> bool:
    """Whether ``real`` is the team's SQLite store, or its journal files."""
    if ctx.team is None:
        return False
    location = ctx.team.location
    if not location or parse_location(location).is_url:
        return False
    store = Path(location).resolve()
    journals = ("", "-wal", "-shm", "-journal")
    return real.parent == store.parent and real.name in {store.name + j for j in journals}


def shown(ctx: ToolContext, real: Path) -> str:
    """``real`` as the model should see it: relative to the workspace, '.' for the root."""
    rel = real.relative_to(_root(ctx))
    return rel.as_posix() if rel.parts else "."


def _existing_file(ctx: ToolContext, path: str, missing: str) -> Path:
    real = resolve(ctx, path)
    if real.is_dir():
        raise UserError(f"{path!r} is a folder, not a file; use list_files to see what is in it")
    if not real.exists():
        raise UserError(f"{path!r} does not exist; {missing}")
    _regular(path, real)
    return real


def _regular(path: str, real: Path) -> None:
    # A FIFO or device would block the read (or the write) forever.
    if real.exists() and not real.is_file():
        raise UserError(f"{path!r} is not a regular file; the file tools work on regular files")


def _is_binary(real: Path) -> bool:
    with real.open("rb") as f:
        return b"\x00" in f.read(SNIFF_BYTES)


def _refuse_binary(ctx: ToolContext, real: Path) -> None:
    if _is_binary(real):
        size = real.stat().st_size
        raise UserError(
            f"{shown(ctx, real)} is a binary file ({size} bytes); the file tools show and "
            "edit text only (use bash with a suitable tool to inspect it)"
        )


def _walk(top: Path, max_depth: int | None = None) -> Iterator[tuple[Path, list[os.DirEntry[str]]]]:
    """Folders under ``top`` (not following symlinks, skipping .git) with their sorted entries."""
    stack: list[tuple[Path, int]] = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable or vanished: not worth failing the whole walk
        yield folder, entries
        if max_depth is not None and depth + 1 >= max_depth:
            continue
        for entry in reversed(entries):
            if entry.name in SKIP_DIRS:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), depth + 1))


def _files(top: Path) -> Iterator[Path]:
    """Every regular file under ``top`` in path order, not following symlinked folders."""
    for _, entries in _walk(top):
        for entry in entries:
            if entry.name in SKIP_DIRS or entry.is_dir(follow_symlinks=False):
                continue
            try:
                regular = entry.is_file()  # follows a symlink; the caller checks where to
            except OSError:  # a symlink loop
                continue
            if regular:
                yield Path(entry.path)


def _inside(ctx: ToolContext, path: Path) -> bool:
    try:
        real = path.resolve()
    except (RuntimeError, OSError):
        return False
    root = _root(ctx)
    return real == root or real.is_relative_to(root)


def _check_pattern(pattern: str, what: str) -> str:
    pattern = pattern.strip()
    if not pattern:
        raise UserError(f"the {what} is empty; give one such as '**/*.py'")
    if pattern.startswith("/") or ".." in pattern.split("/"):
        raise UserError(
            f"the {what} {pattern!r} must be relative to the workspace, without '..'; "
            "pass a folder as path to search elsewhere in the workspace"
        )
    return pattern.removeprefix("./")


# read_file -----------------------------------------------------------------


class ReadFileArgs(ToolArgs):
    path: str = Field(description="File to read, relative to the workspace root.")
    start_line: int | None = Field(
        default=None, ge=1, description="First line to show (1-based). Default: 1."
    )
    end_line: int | None = Field(
        default=None,
        ge=1,
        description=f"Last line to show, inclusive. Default: at most {READ_LINES} lines.",
    )


def read_file(ctx: ToolContext, args: ReadFileArgs) -> str:
    real = _existing_file(ctx, args.path, "use list_files or glob to find the file")
    _refuse_binary(ctx, real)
    start = args.start_line or 1
    if args.end_line is not None and args.end_line < start:
        raise UserError(f"end_line {args.end_line} is before start_line {start}")
    last = args.end_line if args.end_line is not None else start + READ_LINES - 1
    last = min(last, start + READ_LINES - 1)
    lines: list[str] = []
    total = 0
    long_lines = 0
    with real.open("r", encoding="utf-8", errors="replace", newline=None) as f:
        for total, line in enumerate(f, start=1):
            if start <= total <= last:
                text = line.rstrip("\n")
                if len(text) > LINE_CHARS:
                    long_lines += 1
                    text = text[:LINE_CHARS] + f" [... {len(text) - LINE_CHARS} characters cut]"
                lines.append(f"{total:>6}\t{text}")
    name = shown(ctx, real)
    if total == 0:
        return f"[{name} is empty: 0 lines]"
    if start > total:
        raise UserError(f"start_line {start} is past the end of {name}, which has {total} lines")
    end = start + len(lines) - 1
    header = f"[{name}: lines {start}-{end} of {total}]"
    notes = []
    if end < total and (args.end_line is None or args.end_line > end):
        notes.append(
            f"[{total - end} more lines; read on with start_line={end + 1}; at most "
            f"{READ_LINES} lines are shown per call]"
        )
    if long_lines:
        notes.append(f"[{long_lines} long lines were cut at {LINE_CHARS} characters]")
    return "\n".join([header, *lines, *notes])


# write_file ----------------------------------------------------------------


class WriteFileArgs(ToolArgs):
    path: str = Field(description="File to write, relative to the workspace root.")
    content: str = Field(description="The whole new content of the file.")


def write_file(ctx: ToolContext, args: WriteFileArgs) -> str:
    real = resolve(ctx, args.path)
    _not_protected(ctx, args.path, real)
    _not_claimed(ctx, real)
    if real.is_dir():
        raise UserError(f"{args.path!r} is a folder; give a file path")
    _regular(args.path, real)
    existed = real.exists()
    real.parent.mkdir(parents=True, exist_ok=True)
    data = args.content.encode("utf-8")
    real.write_bytes(data)
    lines = args.content.count("\n") + (0 if args.content.endswith("\n") or not data else 1)
    verb = "overwrote" if existed else "created"
    return f"{verb} {shown(ctx, real)} ({lines} lines, {len(data)} bytes)"


# edit_file -----------------------------------------------------------------


class EditFileArgs(ToolArgs):
    path: str = Field(description="File to edit, relative to the workspace root.")
    old_text: str = Field(
        min_length=1,
        description="Exact text to replace, including whitespace and indentation. It must "
        "occur exactly once unless replace_all is true.",
    )
    new_text: str = Field(description="Text to put in its place.")
    replace_all: bool = Field(default=False, description="Replace every occurrence.")


def edit_file(ctx: ToolContext, args: EditFileArgs) -> str:
    real = _existing_file(ctx, args.path, "create it with write_file")
    _not_protected(ctx, args.path, real)
    _not_claimed(ctx, real)
    _refuse_binary(ctx, real)
    name = shown(ctx, real)
    # newline="" keeps the file's own line endings through the round trip.
    with real.open("r", encoding="utf-8", errors="surrogateescape", newline="") as f:
        text = f.read()
    if args.old_text == args.new_text:
        raise UserError("old_text and new_text are the same; there is nothing to change")
    count = text.count(args.old_text)
    if count == 0:
        hint = ""
        if "\r\n" in text and "\n" in args.old_text and "\r\n" not in args.old_text:
            hint = " (the file uses CRLF line endings)"
        raise UserError(
            f"old_text was not found in {name}{hint}; read_file it to see its exact current "
            "text (whitespace and indentation must match) and try again"
        )
    if count > 1 and not args.replace_all:
        raise UserError(
            f"old_text occurs {count} times in {name}; include more surrounding lines to make "
            "it unique, or pass replace_all=true to replace every one"
        )
    first_line = text.count("\n", 0, text.find(args.old_text)) + 1
    updated = text.replace(args.old_text, args.new_text)
    with real.open("w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(updated)
    if count == 1:
        return f"edited {name}: replaced 1 occurrence at line {first_line}"
    return f"edited {name}: replaced {count} occurrences (the first at line {first_line})"


# list_files ----------------------------------------------------------------


class ListFilesArgs(ToolArgs):
    path: str = Field(default=".", description="Folder to list, relative to the workspace root.")
    depth: int = Field(
        default=2, ge=1, le=20, description="How many levels of folders to go down (1 = only path)."
    )


def list_files(ctx: ToolContext, args: ListFilesArgs) -> str:
    top = resolve(ctx, args.path)
    if not top.exists():
        raise UserError(f"{args.path!r} does not exist")
    if not top.is_dir():
        return f"{shown(ctx, top)} is a file ({top.stat().st_size} bytes)"
    out: list[str] = []
    more = 0
    for _, entries in _walk(top, args.depth):
        for entry in entries:
            if entry.name in SKIP_DIRS:
                continue
            if len(out) >= ENTRY_LIMIT:
                more += 1
                continue
            rel = Path(entry.path).relative_to(top).as_posix()
            if entry.is_symlink():
                out.append(f"{rel} -> {os.readlink(entry.path)}")
            elif entry.is_dir():
                out.append(rel + "/")
            else:
                out.append(rel)
    if not out:
        return f"[{shown(ctx, top)} is empty]"
    out.sort()
    head = f"[{shown(ctx, top)}: {len(out) + more} entries, up to {args.depth} levels deep]"
    lines = [head, *out]
    if more:
        lines.append(f"[{more} more entries not shown; list a subfolder or lower depth]")
    return "\n".join(lines)


# glob ----------------------------------------------------------------------


class GlobArgs(ToolArgs):
    pattern: str = Field(
        description="Glob over file paths, e.g. '**/*.py' (any depth) or 'src/*.md' "
        "(one folder). '**' spans folders; '*' stays within one name."
    )
    path: str = Field(default=".", description="Folder to search from, relative to the workspace.")


def glob(ctx: ToolContext, args: GlobArgs) -> str:
    pattern = _check_pattern(args.pattern, "pattern")
    top = resolve(ctx, args.path)
    if not top.is_dir():
        raise UserError(f"{args.path!r} is not a folder")
    regex = glob_regex(pattern)
    hits: list[str] = []
    total = 0
    for file in _files(top):
        rel = file.relative_to(top).as_posix()
        if regex.match(rel) and _inside(ctx, file):
            total += 1
            if len(hits) < MATCH_LIMIT:
                hits.append(shown(ctx, file))
    if not hits:
        return f"no files match {pattern!r} under {shown(ctx, top)}"
    hits.sort()
    if total > len(hits):
        hits.append(f"[{total - len(hits)} more files match; narrow the pattern or the path]")
    return "\n".join(hits)


# grep ----------------------------------------------------------------------


class GrepArgs(ToolArgs):
    pattern: str = Field(description="Regular expression (Python syntax) to search for.")
    path: str = Field(
        default=".", description="File or folder to search, relative to the workspace."
    )
    glob: str | None = Field(
        default=None,
        description="Only search files matching this glob: '*.py' matches names at any "
        "depth; a glob with '/' matches the path from the searched folder.",
    )
    ignore_case: bool = Field(default=False, description="Match without regard to case.")
    max_matches: int = Field(
        default=MATCH_LIMIT, ge=1, le=2000, description="Stop after this many matching lines."
    )


def grep(ctx: ToolContext, args: GrepArgs) -> str:
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
    except re.error as e:
        raise UserError(f"pattern {args.pattern!r} is not a valid regular expression: {e}") from e
    top = resolve(ctx, args.path)
    if not top.exists():
        raise UserError(f"{args.path!r} does not exist")
    name_glob: str | None = None
    path_glob: re.Pattern[str] | None = None
    if args.glob is not None:
        g = _check_pattern(args.glob, "glob")
        if "/" in g:
            path_glob = glob_regex(g)
        else:
            name_glob = g
    files = [top] if top.is_file() else _files(top)
    hits: list[str] = []
    more = False
    skipped_large = 0
    for file in files:
        if name_glob is not None and not fnmatch.fnmatchcase(file.name, name_glob):
            continue
        if path_glob is not None and not path_glob.match(file.relative_to(top).as_posix()):
            continue
        if not _inside(ctx, file):
            continue
        try:
            if file.stat().st_size > GREP_FILE_BYTES:
                skipped_large += 1
                continue
            if _is_binary(file):
                continue
            name = shown(ctx, file)
            with file.open("r", encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, start=1):
                    if regex.search(line) is None:
                        continue
                    if len(hits) >= args.max_matches:
                        more = True
                        break
                    text = line.rstrip("\n")
                    if len(text) > GREP_LINE_CHARS:
                        text = text[:GREP_LINE_CHARS] + " [...]"
                    hits.append(f"{name}:{number}:{text}")
        except OSError:
            continue
        if more:
            break
    notes: list[str] = []
    if more:
        notes.append(
            f"[stopped at {args.max_matches} matching lines; narrow the pattern, path or glob]"
        )
    if skipped_large:
        notes.append(
            f"[{skipped_large} files over {GREP_FILE_BYTES // (1024 * 1024)} MB were skipped]"
        )
    if not hits:
        return "\n".join([f"no matches for {args.pattern!r} under {shown(ctx, top)}", *notes])
    return "\n".join([*hits, *notes])


FILE_TOOLS: list[Tool[Any]] = [
    Tool(
        "read_file",
        "Read a text file in your workspace, with line numbers. Shows at most "
        f"{READ_LINES} lines per call; use start_line/end_line (1-based, inclusive) for more.",
        ReadFileArgs,
        read_file,
        read_only=True,
    ),
    Tool(
        "write_file",
        "Create or overwrite a file in your workspace with the given content; missing "
        "folders are created.",
        WriteFileArgs,
        write_file,
    ),
    Tool(
        "edit_file",
        "Replace exact text in a file: old_text must match the file exactly (whitespace "
        "included) and occur once, unless replace_all is true. Read the file first.",
        EditFileArgs,
        edit_file,
    ),
    Tool(
        "list_files",
        "List files and folders (folders end with '/') under a folder of your workspace.",
        ListFilesArgs,
        list_files,
        read_only=True,
    ),
    Tool(
        "glob",
        "Find files in your workspace whose paths match a glob such as '**/*.py'.",
        GlobArgs,
        glob,
        read_only=True,
    ),
    Tool(
        "grep",
        "Search text files in your workspace for a regular expression; returns "
        "file:line:text for each matching line.",
        GrepArgs,
        grep,
        read_only=True,
    ),
]
