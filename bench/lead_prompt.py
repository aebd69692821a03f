"""The lead's prompt size as a run goes on: after 10, 50 and 200 completed tasks.

A lead (the real Lead runtime, with a scripted model) wakes after each batch of
completions and its request is measured in tokens (four characters a token, as
the scripted model counts). The digest is capped, so the prompt should stay near
its size at 10 tasks (aim: no more than 1.2 times it at 200).

    python3 bench/lead_prompt.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from accord.agent.launch import build_agent
from accord.config import Config
from accord.llm.scripted import ScriptedModel, estimate_tokens, reply
from accord.store import open_store
from accord.team import TeamServices
from accord.team.roster import hash_token
from accord.types import MemberRole, NewTask

POINTS = (10, 50, 200)


def measure(root: Path) -> list[tuple[int, int, int]]:
    store = open_store(str(root / "accord.db"), create=True, synchronous="normal")
    store.create_team("main")
    store.add_member("main", "lead", token_hash=hash_token("x"), role=MemberRole.LEAD)
    store.add_member("main", "worker", token_hash=hash_token("y"))
    store.start_run("main", "Build the thing, task by task.", "lead", {})
    services = TeamServices.open(store, "main", Config(), root)
    model = ScriptedModel([reply("Planned.")])
    lead = build_agent(services, "lead", Config(), root, model=model, idle_wait=0.01)
    lead.run(once=True)  # the first wake: the plan
    done = 0
    rows = []
    for point in POINTS:
        while done < point:
            task = store.add_task(
                "main",
                NewTask(f"task {done + 1}: a step of the plan", "details " * 20),
                max_attempts=3,
            )
            claim = store.claim_task("main", "worker", lease_seconds=60, task_id=task.id)
            assert claim is not None
            store.complete_task(
                "main", task.id, "worker", claim.fencing_token, "result: " + "words " * 40
            )
            done += 1
        model.add(reply(f"Noted {point} done; waiting."))
        lead.run(once=True)
        request = model.requests[-1]
        rows.append((point, estimate_tokens(request), len(request.messages)))
    store.close()
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp))
    base = rows[0][1]
    print(f"{'completed tasks':>16} {'prompt tokens':>14} {'vs at 10':>9} {'messages':>9}")
    for done, tokens, messages in rows:
        print(f"{done:>16} {tokens:>14} {tokens / base:>9.2f} {messages:>9}")
    worst = max(t for _, t, _ in rows) / base
    print(f"largest / at 10: {worst:.2f} (aim <= 1.20): {'met' if worst <= 1.2 else 'MISSED'}")
    return 0 if worst <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
