"""Secrets: which environment variables are keys, and how a child process gets them.

Tool commands, hooks and ``accord work`` commands never see a model API key, a
member token or a store password. Three things keep it so:

- ``is_secret`` names a secret variable: a list of known ones (``KNOWN``), the
  ones accord.toml declares under ``[secrets] variables`` (``declare``), and a
  name pattern (``*_KEY``, ``*_TOKEN``, ``AWS_*``...) for the ones nobody listed.
  ``scrubbed`` is an environment without them.
- ``hand_over`` gives a member process its token and the keys through a pipe
  (its number in ``ACCORD_SECRETS_FD``) instead of its environment, so a command
  reading ``/proc/<member>/environ`` finds none of them. The member calls
  ``receive`` once at start and then ``get`` reads from memory; run by hand
  (keys exported in a person's shell), ``get`` falls back to the environment.
- ``without_password`` takes the password out of a store URL handed to a tool.
- ``hide_from_proc`` blanks the secrets in this process's own environment block,
  which ``/proc/<pid>/environ`` shows, so a command cannot read the person's
  keys from the supervisor either (they stay in ``os.environ``, in memory).

A plain module of the ground floor: importable from any layer.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Iterable, Mapping

from accord.location import parse_location

FD_VARIABLE = "ACCORD_SECRETS_FD"

# Variables that are secrets whatever the pattern says about their names.
KNOWN = frozenset(
    {
        "ACCORD_TOKEN",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "MISTRAL_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY",
        "TOGETHER_API_KEY",
        "COHERE_API_KEY",
        "VOYAGE_API_KEY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "GITLAB_TOKEN",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "NPM_TOKEN",
        "PGPASSWORD",
    }
)
# Names (upper-cased) and endings that mark a secret nobody listed.
_SECRET_NAMES = frozenset({"API_KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIALS"})
_SECRET_SUFFIXES = (
    "_KEY",  # _API_KEY, _SECRET_KEY, _ACCESS_KEY, _PRIVATE_KEY, ...
    "_APIKEY",
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_CREDENTIALS",
)
# AWS_* variables that are settings, not credentials.
_AWS_SETTINGS = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_DEFAULT_OUTPUT"})

_declared: set[str] = set()
_held: dict[str, str] = {}
_received = False
_handed = False


def declare(names: Iterable[str]) -> None:
    """Add variables that are secrets in this project (accord.toml ``[secrets] variables``)."""
    _declared.update(n.upper() for n in names)


def is_secret(name: str) -> bool:
    """Whether an environment variable named ``name`` is a key, token or secret."""
    upper = name.upper()
    if upper in KNOWN or upper in _declared or upper in _SECRET_NAMES:
        return True
    if upper.endswith(_SECRET_SUFFIXES) or "SECRET" in upper:
        return True
    return upper.startswith("AWS_") and upper not in _AWS_SETTINGS


def scrubbed(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without its secrets, and with any store URL's password taken out."""
    out = {k: v for k, v in env.items() if not is_secret(k) and k != FD_VARIABLE}
    if "ACCORD_STORE" in out:
        out["ACCORD_STORE"] = without_password(out["ACCORD_STORE"])
    return out


def without_password(location: str) -> str:
    """A store location with the password of a URL taken out (a path is unchanged)."""
    return parse_location(location).without_password()


def hand_over(values: Mapping[str, str]) -> int:
    """A pipe's read end holding ``values``, for a child to ``receive``: pass it in
    ``pass_fds`` with its number in ``ACCORD_SECRETS_FD``, then close it here."""
    data = json.dumps({"v": 1, "values": dict(values)}).encode()
    if len(data) > 60000:  # a pipe holds 64 KiB; a write past that would wait for the child
        raise ValueError(f"{len(data)} bytes of secrets do not fit in a pipe")
    read, write = os.pipe()
    try:
        os.write(write, data)
    finally:
        os.close(write)
    return read


def receive() -> None:
    """Read what the parent handed over (once; later calls do nothing)."""
    global _received, _handed
    if _received:
        return
    _received = True
    number = os.environ.pop(FD_VARIABLE, None)
    if not number or not number.isdigit():
        return
    chunks: list[bytes] = []
    try:
        while chunk := os.read(int(number), 65536):
            chunks.append(chunk)
        os.close(int(number))
    except OSError:
        return
    try:
        values = json.loads(b"".join(chunks)).get("values", {})
    except (ValueError, AttributeError):
        return
    _held.update({str(k): str(v) for k, v in values.items()})
    _handed = True


def handed_over() -> bool:
    """Whether a parent (a supervisor) handed this process its secrets: it was started
    for a team run, not by a person or a script of theirs."""
    receive()
    return _handed


def held() -> dict[str, str]:
    """Every secret the parent handed over (a supervised member's token and keys)."""
    receive()
    return dict(_held)


def get(name: str) -> str | None:
    """A secret: what the parent handed over, else the environment's (a run by hand)."""
    receive()
    return _held.get(name) or os.environ.get(name) or None


def hide_from_proc() -> None:
    """Blank every secret in the environment block this process started with.

    ``/proc/<pid>/environ`` shows that block, and any process of the same user
    may read it. The values are overwritten in place with NUL bytes and taken
    out of the C environment; Python's ``os.environ`` keeps them, so this
    process can still hand them to a child explicitly. Linux with glibc or musl;
    elsewhere it does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        getenv, unsetenv, strlen = libc.getenv, libc.unsetenv, libc.strlen
    except (OSError, AttributeError):
        return
    getenv.restype = ctypes.c_void_p
    getenv.argtypes = [ctypes.c_char_p]
    strlen.restype = ctypes.c_size_t
    strlen.argtypes = [ctypes.c_void_p]
    unsetenv.argtypes = [ctypes.c_char_p]
    for name in [n for n in os.environ if is_secret(n)]:
        raw = os.fsencode(name)
        while (value := getenv(raw)) is not None:
            ctypes.memset(value, 0, strlen(value))
            if unsetenv(raw) != 0:
                break
