"""A model that plays back scripted replies: the fake every offline test uses.

Steps go in, in order; each call takes the next one and records the request.
A step is a ``Reply`` (text and/or tool calls), an exception to raise, or a
function of the request that returns either. ``assert_complete()`` fails if
steps were left unplayed. Token usage is estimated from text length (four
characters a token), so cost and context-size logic can be tested too.

``stream`` tells a listener the reply in pieces of a few words, then its tool
calls, as a streaming server would; ``between_pieces``, when set, is called after
each piece with the text so far, so a test can look at what a viewer sees while the
call is still in progress.

From another process, a script is a JSON file: ``scripted:PATH``; each step is
``{"text": ..., "tool_calls": [{"name": ..., "arguments": {...}}]}`` or
``{"error": "message"}``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.errors import UserError
from accord.llm.base import (
    ChatMessage,
    Model,
    ModelError,
    ModelName,
    ModelRequest,
    ModelResponse,
    StopReason,
    StreamListener,
    ToolCall,
    Usage,
)

# Named here too, where tests and scripts have long imported it from.
from accord.llm.base import estimate_tokens as estimate_tokens

_ids = itertools.count(1)
PIECE_WORDS = 3  # words per piece of a streamed scripted reply
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted assistant turn."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason | None = None
    usage: Usage | None = None


Step = Reply | BaseException | Callable[[ModelRequest], "Reply | BaseException"]


def call(name: str, arguments: dict[str, Any] | None = None, *, raw: str | None = None) -> ToolCall:
    """A tool call for a script; ``raw`` sends malformed arguments as they are."""
    call_id = f"call_{next(_ids)}"
    if raw is not None:
        return ToolCall.parse(call_id, name, raw)
    return ToolCall(call_id, name, dict(arguments or {}), json.dumps(arguments or {}))


def reply(text: str = "", *calls: ToolCall, usage: Usage | None = None) -> Reply:
    return Reply(text, tuple(calls), usage=usage)


def pieces(text: str, words: int = PIECE_WORDS) -> list[str]:
    """``text`` in pieces of ``words`` words each (spaces kept), as a stream brings it."""
    parts = [p for p in _WORD_START.split(text) if p]
    return ["".join(parts[i : i + words]) for i in range(0, len(parts), words)]


class UnexpectedModelCall(AssertionError):
    """The model was called after its script ran out."""


class ScriptedModel(Model):
    """Plays back steps; records every request in ``requests``."""

    def __init__(
        self,
        steps: Iterable[Step] = (),
        *,
        name: str = "scripted:model",
        context_window: int = 200_000,
        delay: float = 0.0,
    ) -> None:
        self.name = ModelName.parse(name)
        self.context_window = context_window
        self.delay = delay  # seconds each call takes, as a server's would
        self._steps: deque[Step] = deque(steps)
        self.requests: list[ModelRequest] = []
        self._lock = threading.Lock()
        # Called after each streamed piece with the text so far (see the module docstring).
        self.between_pieces: Callable[[str], None] | None = None

    def add(self, *steps: Step) -> ScriptedModel:
        with self._lock:
            self._steps.extend(steps)
        return self

    @property
    def remaining(self) -> int:
        return len(self._steps)

    def complete(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            self.requests.append(request)
            if not self._steps:
                raise UnexpectedModelCall(
                    f"scripted model called a {len(self.requests)}th time with no step left"
                )
            step = self._steps.popleft()
        if self.delay:
            time.sleep(self.delay)
        if callable(step) and not isinstance(step, BaseException):
            step = step(request)
        if isinstance(step, BaseException):
            raise step
        stop: StopReason = step.stop_reason or ("tool_use" if step.tool_calls else "end_turn")
        message = ChatMessage("assistant", step.text, step.tool_calls)
        usage = step.usage or Usage(
            input_tokens=estimate_tokens(request),
            output_tokens=max(1, len(json.dumps(message.to_dict())) // 4),
        )
        return ModelResponse(message, stop, usage, str(self.name))

    def stream(self, request: ModelRequest, listener: StreamListener) -> ModelResponse:
        if not self.streaming:
            return super().stream(request, listener)
        response = self.complete(request)
        so_far = ""
        for piece in pieces(response.message.text):
            so_far += piece
            listener.text(piece)
            if self.between_pieces is not None:
                self.between_pieces(so_far)
        for tool_call in response.message.tool_calls:
            listener.tool(tool_call.name)
        return response

    def assert_complete(self) -> None:
        if self._steps:
            raise AssertionError(f"{len(self._steps)} scripted step(s) were never played")

    @staticmethod
    def from_file(path: str | Path, name: str | None = None) -> ScriptedModel:
        """Load a JSON script: a list of steps, {"steps": [...], "context_window": N}, or
        {"rules": [{"if": TEXT, "then": STEP, "once": BOOL}], "otherwise": STEP}; an
        object may also give "delay": the seconds every call takes (a simulated server).

        Anything else is bad input: a ``UserError`` naming the file and what is wrong.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise UserError(f"cannot read the model script {p}: {e.strerror or e}") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"the model script {p} is not JSON: {e}") from e
        window = 200_000
        delay = 0.0
        label = name or f"scripted:{p.name}"
        if isinstance(data, dict):
            unknown = sorted(set(data) - {"steps", "rules", "otherwise", "context_window", "delay"})
            if unknown:
                raise UserError(
                    f"the model script {p} has unknown key(s) {', '.join(unknown)}; "
                    "known: steps, rules, otherwise, context_window, delay"
                )
            raw_delay = data.get("delay", 0.0)
            if (
                isinstance(raw_delay, bool)
                or not isinstance(raw_delay, int | float)
                or not 0 <= raw_delay <= 600
            ):
                raise UserError(
                    f"the model script {p}: delay must be seconds from 0 to 600, not {raw_delay!r}"
                )
            delay = float(raw_delay)
            raw_window = data.get("context_window", window)
            if isinstance(raw_window, bool) or not isinstance(raw_window, int) or raw_window < 1:
                raise UserError(
                    f"the model script {p}: context_window must be a positive whole number, "
                    f"not {raw_window!r}"
                )
            window = raw_window
        if isinstance(data, dict) and "rules" in data:
            if not isinstance(data["rules"], list):
                raise UserError(f"the model script {p}: rules must be a list")
            rules = []
            for n, r in enumerate(data["rules"], start=1):
                if not isinstance(r, dict) or not isinstance(r.get("if"), str) or "then" not in r:
                    raise UserError(
                        f"the model script {p}: rule {n} must be an object with a text "
                        '"if" and a step "then"'
                    )
                rules.append((r["if"], _step(r["then"], p, f"rule {n}"), bool(r.get("once"))))
            otherwise = _step(data.get("otherwise", {"text": "Nothing to do."}), p, "otherwise")
            model: ScriptedModel = RuleModel(rules, otherwise, name=label, context_window=window)
            model.delay = delay
            return model
        if isinstance(data, dict):
            data = data.get("steps", [])
        if not isinstance(data, list):
            raise UserError(
                f"the model script {p} must be a JSON list of steps, or an object with "
                '"steps" or "rules"'
            )
        steps = [_step(item, p, f"step {n}") for n, item in enumerate(data, start=1)]
        return ScriptedModel(steps, name=label, context_window=window, delay=delay)


_STEP_KEYS = {"text", "tool_calls", "error"}


def _step(item: Any, path: Path, where: str) -> Reply | ModelError:
    def bad(what: str) -> UserError:
        return UserError(f"the model script {path}: {where} {what}")

    if not isinstance(item, dict):
        raise bad('must be an object such as {"text": "..."} or {"tool_calls": [...]}')
    unknown = sorted(set(item) - _STEP_KEYS)
    if unknown:
        raise bad(f"has unknown key(s) {', '.join(unknown)}; known: text, tool_calls, error")
    if "error" in item:
        return ModelError(str(item["error"]), retryable=False)
    if not isinstance(item.get("text", ""), str):
        raise bad('has a "text" that is not a string')
    raw_calls = item.get("tool_calls", [])
    if not isinstance(raw_calls, list):
        raise bad('has "tool_calls" that is not a list')
    calls = []
    for m, c in enumerate(raw_calls, start=1):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise bad(f'tool call {m} must be an object with a "name"')
        arguments = c.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise bad(f'tool call {m} has "arguments" that are not an object (use "raw")')
        raw = c.get("raw")
        if raw is not None and not isinstance(raw, str):
            raise bad(f'tool call {m} has a "raw" that is not a string')
        calls.append(call(c["name"], arguments, raw=raw))
    return Reply(item.get("text", ""), tuple(calls))


class RuleModel(ScriptedModel):
    """Replies chosen by what the model was just told, for scripts of unknown length.

    Each rule is ``(text, step, once)``: the first rule whose text appears in the
    latest turn (its text and tool results) answers; a ``once`` rule answers one
    time only. Nothing matching: ``otherwise``. A run of several processes wakes in
    an order no script can foresee; rules make the outcome deterministic anyway.
    """

    def __init__(
        self,
        rules: list[tuple[str, Reply | ModelError, bool]],
        otherwise: Reply | ModelError,
        *,
        name: str = "scripted:rules",
        context_window: int = 200_000,
    ) -> None:
        super().__init__((), name=name, context_window=context_window)
        self.rules = list(rules)
        self.otherwise = otherwise
        self.fired: set[int] = set()

    def complete(self, request: ModelRequest) -> ModelResponse:
        last = request.messages[-1] if request.messages else ChatMessage("user")
        seen = last.text + "\n" + "\n".join(r.content for r in last.tool_results)
        chosen: Reply | ModelError = self.otherwise
        for i, (needle, step, once) in enumerate(self.rules):
            if needle in seen and not (once and i in self.fired):
                self.fired.add(i)
                chosen = step
                break
        if isinstance(chosen, Reply) and chosen.tool_calls:
            # Fresh call ids every time, as a real model would send.
            chosen = Reply(
                chosen.text,
                tuple(call(c.name, c.arguments) for c in chosen.tool_calls),
                chosen.stop_reason,
                chosen.usage,
            )
        self.add(chosen)
        return super().complete(request)
