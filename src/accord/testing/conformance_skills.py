"""Conformance for skills: the team's own procedures, every version kept, each use recorded.

A mixin of ``StoreConformance`` (its ``store`` and ``clock`` fixtures: team ``main``
with alice, bob and carol), kept in its own module so the promises about skills read
together: a revision builds only on the current version (and a pending one changes
nothing until approved), a file's text becomes version 1 on the first revision, a
member keeps the version it loaded first in an attempt, each use's outcome is its
attempt's as the board shows it, and refusals change nothing.
"""

from __future__ import annotations

from accord.errors import AlreadyExists, InvalidName, InvalidState, UnknownSkill, UserError
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import NewTask, SkillDraft, SkillOrigin, SkillStatus

TEAM = "main"


def _draft(body: str = "1. run the tests", name: str = "run-tests") -> SkillDraft:
    return SkillDraft(name, "How to run the tests", body, {"allowed-tools": "Bash"})


class SkillConformance:
    """Skills, on every backend."""

    def test_write_then_revise_keeps_every_version(self, store: Store, clock: FakeClock) -> None:
        from accord.testing.conformance import logs

        with logs(store, "skill_written") as written:
            v1 = store.write_skill(TEAM, _draft(), "alice")
        assert (v1.version, v1.status, v1.origin, v1.meta) == (
            1,
            SkillStatus.ACTIVE,
            SkillOrigin.STORE,
            {"allowed-tools": "Bash"},
        )
        assert written[0].payload == {"name": "run-tests", "version": 1, "author": "alice"}
        clock.advance(1)
        with logs(store, "skill_revised") as revised:
            v2 = store.revise_skill(
                TEAM, _draft("1. make test"), "bob", reason="task #3 failed", based_on=1
            )
        assert (v2.version, v2.supersedes, v2.reason) == (2, 1, "task #3 failed")
        assert revised[0].payload["status"] == "active"
        assert [v.body for v in store.skill_versions(TEAM, "run-tests")] == [
            "1. run the tests",
            "1. make test",
        ]
        assert store.skill_versions(TEAM, "nope") == []

    def test_refusals_change_nothing(self, store: Store) -> None:
        from accord.testing.conformance import refused

        store.write_skill(TEAM, _draft(), "alice")
        with refused(store, AlreadyExists):
            store.write_skill(TEAM, _draft("other"), "bob")
        with refused(store, InvalidName):
            store.write_skill(TEAM, _draft(name="Bad_Name"), "alice")
        with refused(store, UserError):
            store.write_skill(TEAM, SkillDraft("x", "  ", "body"), "alice")
        for path in ("../escape.md", "/etc/passwd", "a/../../b", ""):  # a file outside its folder
            with refused(store, UserError):
                store.write_skill(TEAM, SkillDraft("x", "d", "b", files={path: "t"}), "alice")
        with refused(store, UserError):  # no reason
            store.revise_skill(TEAM, _draft("b"), "alice", reason=" ", based_on=1)
        with refused(store, InvalidState):  # built on a version that is not current
            store.revise_skill(TEAM, _draft("b"), "alice", reason="r", based_on=7)
        with refused(store, UnknownSkill):  # no such skill, and no file's text to seed it
            store.revise_skill(TEAM, _draft("b", "ghost"), "alice", reason="r", based_on=None)
        with refused(store, UnknownSkill):
            store.use_skill(TEAM, "run-tests", 9, SkillOrigin.STORE, "alice", None)
        with refused(store, UserError):  # a task that is not there
            store.use_skill(TEAM, "run-tests", 1, SkillOrigin.STORE, "alice", 99)
        with refused(store, UserError):  # nobody of that name
            store.use_skill(TEAM, "run-tests", 1, SkillOrigin.STORE, "dave", None)

    def test_a_pending_revision_waits_for_its_review(self, store: Store) -> None:
        from accord.testing.conformance import logs, refused

        store.write_skill(TEAM, _draft(), "alice")
        v2 = store.revise_skill(TEAM, _draft("b2"), "bob", reason="r", based_on=1, pending=True)
        assert v2.status == SkillStatus.PENDING
        # Another revision still builds on v1, the current one; then v2 is stale.
        v3 = store.revise_skill(TEAM, _draft("b3"), "carol", reason="r", based_on=1, pending=True)
        assert v3.version == 3
        with logs(store, "skill_reviewed") as reviewed:
            store.review_skill(TEAM, "run-tests", 3, approve=True, reviewer="alice", reason="ok")
        assert reviewed[0].payload == {
            "name": "run-tests",
            "version": 3,
            "approved": True,
            "by": "alice",
            "reason": "ok",
        }
        with refused(store, InvalidState):  # it revised v1, which is current no more
            store.review_skill(TEAM, "run-tests", 2, approve=True, reviewer="alice", reason="")
        with refused(store, InvalidState):  # v3 is not pending
            store.review_skill(TEAM, "run-tests", 3, approve=False, reviewer="alice", reason="")
        rejected = store.review_skill(
            TEAM, "run-tests", 2, approve=False, reviewer="alice", reason="stale"
        )
        assert (rejected.status, rejected.review_reason) == (SkillStatus.REJECTED, "stale")

    def test_a_files_text_becomes_version_one_on_the_first_revision(self, store: Store) -> None:
        from accord.testing.conformance import logs

        seed = SkillDraft("deploy", "Deploying", "from the file", {"license": "MIT"})
        with logs(store, "skill_revised") as revised:
            v2 = store.revise_skill(
                TEAM,
                SkillDraft("deploy", "Deploying", "better"),
                "alice",
                reason="task #1",
                based_on=None,
                seed=seed,
                seed_origin=SkillOrigin.PROJECT,
            )
        assert revised[0].payload["seeded"] == "project"
        v1, again = store.skill_versions(TEAM, "deploy")
        assert (v1.origin, v1.body, v1.meta) == (
            SkillOrigin.PROJECT,
            "from the file",
            {"license": "MIT"},
        )
        assert (again, v2.supersedes) == (v2, 1)

    def test_a_member_keeps_the_version_it_loaded_in_an_attempt(self, store: Store) -> None:
        from accord.testing.conformance import logs

        store.write_skill(TEAM, _draft(), "alice")
        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        claim = store.claim_task(TEAM, "alice", lease_seconds=60)
        assert claim is not None and claim.task.id == task.id
        with logs(store, "skill_used") as used:
            first = store.use_skill(TEAM, "run-tests", 1, SkillOrigin.STORE, "alice", task.id)
        assert used[0].payload == {
            "name": "run-tests",
            "version": 1,
            "origin": "store",
            "member": "alice",
            "task_id": task.id,
            "attempt": 1,
        }
        store.revise_skill(TEAM, _draft("v2"), "bob", reason="r", based_on=1)
        again = store.use_skill(TEAM, "run-tests", 2, SkillOrigin.STORE, "alice", task.id)
        assert (first.attempt, again.version, again.attempt) == (1, 1, 1)
        # bob, in no task, gets what he asks for.
        assert store.use_skill(TEAM, "run-tests", 2, SkillOrigin.STORE, "bob", None).version == 2

    def test_a_uses_outcome_is_its_attempts(self, store: Store) -> None:
        store.write_skill(TEAM, _draft(), "alice")
        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        one = store.claim_task(TEAM, "alice", lease_seconds=60)
        assert one is not None
        store.use_skill(TEAM, "run-tests", 1, SkillOrigin.STORE, "alice", task.id)
        assert [u.outcome for u in store.skill_uses(TEAM)] == ["open"]
        store.fail_task(TEAM, task.id, "alice", one.fencing_token, "tests failed", retry=True)
        assert [u.outcome for u in store.skill_uses(TEAM)] == ["failed"]
        store.revise_skill(TEAM, _draft("v2"), "bob", reason="task failed", based_on=1)
        two = store.claim_task(TEAM, "bob", lease_seconds=60)
        assert two is not None
        store.use_skill(TEAM, "run-tests", 2, SkillOrigin.STORE, "bob", task.id)
        store.complete_task(TEAM, task.id, "bob", two.fencing_token, "done")
        found = [(u.version, u.attempt, u.outcome) for u in store.skill_uses(TEAM, "run-tests")]
        assert found == [(1, 1, "failed"), (2, 2, "succeeded")]
        assert store.skill_uses(TEAM, "other") == []

    def test_a_team_copy_carries_skills_and_uses(self, store: Store, make_store: object) -> None:
        store.write_skill(TEAM, _draft(), "alice")
        store.use_skill(TEAM, "run-tests", 1, SkillOrigin.STORE, "alice", None)
        dumped = store.dump_team(TEAM)
        assert [r["name"] for r in dumped.rows["skills"]] == ["run-tests"]
        store.delete_team(TEAM)
        assert store.load_team(dumped)["skill_uses"] == 1
        assert [v.version for v in store.skill_versions(TEAM)] == [1]
        assert [u.skill for u in store.skill_uses(TEAM)] == ["run-tests"]
