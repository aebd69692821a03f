"""Which ready task a claim takes, and whether a new blocker closes a cycle.

Pure functions over plain tuples, shared by every backend so the rules are
written once: the backend fetches the rows inside its transaction and asks here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence


def pick_best(
    candidates: Sequence[tuple[int, int, bool]],
    open_edges: Iterable[tuple[int, int]],
) -> int:
    """The id to claim among ``(id, priority, assigned_to_claimer)`` candidates.

    Order: assigned to the claimer first, then priority, then how many open tasks
    wait on it directly or transitively, then the oldest (lowest id).
    ``open_edges`` are ``(blocker_id, task_id)`` pairs between unfinished tasks.
    """
    top = max((assigned, priority) for _, priority, assigned in candidates)
    group = [c[0] for c in candidates if (c[2], c[1]) == top]
    if len(group) == 1:
        return group[0]
    waiting = waiting_behind(group, open_edges)
    return min(group, key=lambda i: (-waiting[i], i))


def waiting_behind(roots: Iterable[int], edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """For each root, how many distinct tasks are blocked by it, directly or not."""
    children: dict[int, list[int]] = defaultdict(list)
    for blocker, task in edges:
        children[blocker].append(task)
    counts: dict[int, int] = {}
    for root in roots:
        seen: set[int] = set()
        stack = list(children.get(root, ()))
        while stack:
            t = stack.pop()
            if t not in seen:
                seen.add(t)
                stack.extend(children.get(t, ()))
        counts[root] = len(seen)
    return counts


def find_cycle(
    task_id: int, new_blockers: Iterable[int], edges: Iterable[tuple[int, int]]
) -> tuple[int, ...] | None:
    """The cycle that adding ``new_blockers`` to ``task_id`` would close, if any.

    ``edges`` are existing ``(blocker_id, task_id)`` pairs. The result reads in the
    order work would wait: ``(a, b, ..., a)`` where each blocks the next.
    """
    children: dict[int, list[int]] = defaultdict(list)
    for blocker, task in edges:
        children[blocker].append(task)
    for blocker in new_blockers:
        if blocker == task_id:
            return (task_id, task_id)
        # A cycle exists if task_id already (transitively) blocks the new blocker.
        path = _path(children, task_id, blocker)
        if path is not None:
            return (*path, task_id)
    return None


def _path(children: dict[int, list[int]], start: int, goal: int) -> tuple[int, ...] | None:
    parent: dict[int, int] = {}
    stack = [start]
    seen = {start}
    while stack:
        node = stack.pop()
        if node == goal:
            out = [node]
            while out[-1] != start:
                out.append(parent[out[-1]])
            return tuple(reversed(out))
        for nxt in children.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                parent[nxt] = node
                stack.append(nxt)
    return None
