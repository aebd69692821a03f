"""Learning from failure: 20 tasks with a known pitfall, with learning on and off.

Each task is "parse the dates of log N"; its TaskCompleted hook (a real shell
command) refuses a completion unless the member wrote the task's guard file first:
the pitfall. The members are the real agent runtime (``build_agent``) playing a
policy model that stands in for an LLM, seeded (the same seed for both arms):

- knowing the pitfall (a lesson about it in its context), an attempt avoids it with
  probability ``--know`` (0.95); not knowing it, with ``--guess`` (0.25);
- refused, the member writes the lesson when asked and its attempt ends (its turns
  run out), so the next attempt starts afresh; 3 attempts per task.

Tokens are counted as the scripted model counts them (four characters a token of
the request, plus the reply), so the lessons' own cost in every prompt is in the
figure. The baseline is the same run with ``[learning] enabled = false``.

    python bench/learning.py            # 20 tasks
    python bench/learning.py --tasks 50 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from accord.agent.definition import AgentDefinition
from accord.agent.launch import build_agent, toolbox_for
from accord.config import parse_config
from accord.llm.base import ChatMessage, Model, ModelName, ModelRequest, ModelResponse, Usage
from accord.llm.scripted import call, estimate_tokens
from accord.memory.lessons import LESSON_PROMPT
from accord.store import open_store
from accord.team import Team
from accord.team.roster import hash_token
from accord.types import NewTask, TaskStatus

GATE = """\
import json, os, sys
task = json.load(sys.stdin)["task_id"]
if not os.path.exists(f"guard-{task}"):
    print("FAILED: the log parser crashed on an empty line (no guard file)", file=sys.stderr)
    sys.exit(2)
"""
PITFALL = "guard file"
LESSON = (
    "Lesson: the log parser crashes on empty lines and the check refuses it; write the "
    "task's guard file (guard-N) before completing."
)


class Policy(Model):
    """Stands in for an LLM: avoids the pitfall when it knows it, as the module says."""

    def __init__(self, rng: random.Random, know: float, guess: float) -> None:
        self.name = ModelName("scripted", "policy")
        self.rng, self.know, self.guess = rng, know, guess
        self.calls = 0

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        opening = request.messages[0].text
        last = request.messages[-1]
        task_id = int(opening.split("# Your task #", 1)[1].split(":", 1)[0])
        if LESSON_PROMPT in last.text:
            message = ChatMessage("assistant", LESSON)
        elif any("is completed" in r.content for r in last.tool_results):
            message = ChatMessage("assistant", "Done.")
        elif any("created guard" in r.content for r in last.tool_results):
            message = ChatMessage(
                "assistant",
                "",
                (call("task_complete", {"task_id": task_id, "result": "parsed, guarded"}),),
            )
        elif len(request.messages) == 1:
            knows = PITFALL in opening
            if self.rng.random() < (self.know if knows else self.guess):
                guard = call("write_file", {"path": f"guard-{task_id}", "content": "ok"})
                message = ChatMessage("assistant", "", (guard,))
            else:
                done = call("task_complete", {"task_id": task_id, "result": "parsed"})
                message = ChatMessage("assistant", "", (done,))
        else:
            message = ChatMessage("assistant", "I am stuck on this one.")
        out = max(1, len(message.text) // 4 + 20 * len(message.tool_calls))
        usage = Usage(input_tokens=estimate_tokens(request), output_tokens=out)
        stop = "tool_use" if message.tool_calls else "end_turn"
        return ModelResponse(message, stop, usage, str(self.name))


def measure(root: Path, *, learning: bool, tasks: int, seed: int, know: float, guess: float):  # type: ignore[no-untyped-def]
    (root / "gate.py").write_text(GATE)
    toml = (
        f'[hooks]\nTaskCompleted = "python3 gate.py"\n'
        f"[learning]\nenabled = {str(learning).lower()}\n"
    )
    (root / "accord.toml").write_text(toml)
    config = parse_config(toml)
    store = open_store(str(root / "accord.db"), create=True, synchronous="normal")
    store.create_team("main")
    for name in ("alice", "bob"):
        store.add_member("main", name, token_hash=hash_token(name))
    services = Team.open(store, "main", config, root)
    for n in range(1, tasks + 1):
        services.board.add(NewTask(f"parse the dates of log {n}", max_attempts=3))
    model = Policy(random.Random(seed), know, guess)
    brief = AgentDefinition(name="brief", prompt="You parse logs.", max_turns=3)
    turn = 0
    while any(
        t.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS) for t in services.board.list()
    ):
        member = ("alice", "bob")[turn % 2]
        turn += 1
        agent = build_agent(services, member, config, root, model=model, idle_wait=0.01)
        agent.definition = brief
        agent.toolbox = toolbox_for(brief)
        agent.run(once=True)
    done = [t for t in services.board.list() if t.status == TaskStatus.COMPLETED]
    attempts = sum(len(services.board.attempts(t.id)) for t in services.board.list())
    used = store.usage_totals("main", by="member")
    tokens = sum(row.input_tokens + row.output_tokens for row in used)
    lessons = len(services.lessons.listed())
    store.close()
    return len(done), attempts, tokens, model.calls, lessons


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--know", type=float, default=0.95)
    p.add_argument("--guess", type=float, default=0.25)
    a = p.parse_args()
    rows = []
    for learning in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(
                (learning,)
                + measure(
                    Path(tmp),
                    learning=learning,
                    tasks=a.tasks,
                    seed=a.seed,
                    know=a.know,
                    guess=a.guess,
                )
            )
    print(
        f"{a.tasks} tasks, a pitfall refused by the TaskCompleted hook; an attempt avoids "
        f"it with p={a.know} knowing it, p={a.guess} not; 3 attempts per task; seed {a.seed}\n"
    )
    head = (
        f"{'learning':>8} {'completed':>9} {'attempts':>8} {'per task':>8} "
        f"{'calls':>6} {'tokens':>8} {'tokens/completed':>16} {'lessons':>7}"
    )
    print(head)
    print("-" * len(head))
    for learning, done, attempts, tokens, calls, lessons in rows:
        per = tokens / done if done else float("inf")
        print(
            f"{'on' if learning else 'off':>8} {done:>9} {attempts:>8} {attempts / a.tasks:>8.2f} "
            f"{calls:>6} {tokens:>8} {per:>16,.0f} {lessons:>7}"
        )
    (_, d0, a0, t0, _, _), (_, d1, a1, t1, _, _) = rows
    print(
        f"\nwith learning: attempts per task x{(a1 / a0):.2f}, tokens per completed task "
        f"x{((t1 / d1) / (t0 / d0)):.2f} (against learning off, same seed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
