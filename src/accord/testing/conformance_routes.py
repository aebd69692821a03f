"""Conformance for routed messages: exactly one owner per message, under a lease.

A mixin of ``StoreConformance`` (it uses that class's ``store`` and ``clock``
fixtures: team ``main`` with alice, bob and carol; here a lead, ``lena``, joins them).
The promises: a send or post with a route has its owner from the moment it exists; a
route is set only where none holds or its lease has run out; the lead takes or assigns
one whatever its lease; renewing or releasing needs the current owner and token; an
expired lease moves ownership to the next candidate; every change is one
``message_routed`` event naming its rule; a refused change leaves the store as it was.
"""

from __future__ import annotations

from accord.errors import InvalidState, Reason, UnknownMember, UnknownMessage, UserError
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import MemberRole, OutgoingMessage, RouteChoice

TEAM = "main"
LEASE = 60.0


def _with_lead(store: Store) -> None:
    store.add_member(TEAM, "lena", token_hash="hash-lena", role=MemberRole.LEAD)


class RouteConformance:
    """Routed messages, on every backend."""

    def test_a_routed_broadcast_has_one_owner_from_the_start(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import logs

        choice = RouteChoice("bob", "rule 1 (keyword 'deploy')", LEASE, ("bob", "carol"))
        with logs(store, "message_sent", "message_routed") as written:
            sent = store.send_message(
                TEAM, OutgoingMessage("alice", "*", "deploy please"), route=choice
            )
        root = sent[0].id
        assert [m.route_id for m in sent] == [root, root]
        assert written[1].payload == {
            "id": root,
            "owner": "bob",
            "token": 1,
            "rule": "rule 1 (keyword 'deploy')",
            "lease_expires_at": clock() + LEASE,
        }
        # Every copy knows the one owner; each recipient reads it on its own copy.
        for m in sent:
            route = store.get_route(TEAM, m.id)
            assert route is not None and route.owner == "bob" and route.message_id == root
        got = store.receive_messages(TEAM, "carol", visibility_timeout=30.0)
        assert [m.route_id for m in got] == [root]
        assert [r.owner for r in store.list_routes(TEAM)] == ["bob"]
        assert store.list_routes(TEAM, owner="carol") == []
        assert store.member_load(TEAM) == {"bob": 1}

    def test_a_route_is_set_only_where_none_holds(self, store: Store, clock: FakeClock) -> None:
        from accord.testing.conformance import logs

        [m] = store.send_message(TEAM, OutgoingMessage("alice", "bob", "hi"))
        assert store.get_route(TEAM, m.id) is None
        first = store.route_message(TEAM, m.id, "bob", rule="fallback: lead", lease_seconds=LEASE)
        assert first is not None and first.owner == "bob" and first.token == 1
        with logs(store):  # owned, lease running: the second decider loses, nothing written
            assert store.route_message(TEAM, m.id, "carol", rule="x", lease_seconds=LEASE) is None
        clock.advance(LEASE + 1)
        with logs(store, "message_routed") as moved:
            second = store.route_message(TEAM, m.id, "carol", rule="y", lease_seconds=LEASE)
        assert second is not None and (second.owner, second.token) == ("carol", 2)
        assert moved[0].payload["previous"] == "bob"

    def test_a_routed_post_and_its_copies(self, store: Store) -> None:
        store.create_channel(TEAM, "#ops", "alice")
        store.join_channel(TEAM, "#ops", "bob")
        store.join_channel(TEAM, "#ops", "carol")
        posted = store.post(
            TEAM, "#ops", "alice", "disk full", route=RouteChoice("carol", "channel #ops", LEASE)
        )
        assert {m.route_id for m in posted} == {posted[0].id}
        route = store.get_route(TEAM, posted[1].id)
        assert route is not None and route.owner == "carol"

    def test_the_lead_takes_or_assigns_whatever_the_lease(self, store: Store) -> None:
        from accord.testing.conformance import logs, refused

        _with_lead(store)
        [m] = store.send_message(
            TEAM, OutgoingMessage("alice", "bob", "x"), route=RouteChoice("bob", "r", LEASE)
        )
        with refused(store, InvalidState) as info:
            store.take_ownership(TEAM, m.id, "carol", by="carol", lease_seconds=LEASE)
        assert info.value.reason is Reason.NOT_THE_LEAD
        with logs(store, "message_routed") as taken:
            route = store.take_ownership(TEAM, m.id, "carol", by="lena", lease_seconds=LEASE)
        assert (route.owner, route.token, route.rule) == ("carol", 2, "assigned by lena")
        assert taken[0].payload["previous"] == "bob"
        assert store.take_ownership(TEAM, m.id, "lena", by="lena", lease_seconds=LEASE).rule == (
            "taken by lena"
        )
        [plain] = store.send_message(TEAM, OutgoingMessage("alice", "bob", "y"))
        with refused(store, InvalidState) as info:
            store.take_ownership(TEAM, plain.id, "bob", by="lena", lease_seconds=LEASE)
        assert info.value.reason is Reason.NOT_ROUTED

    def test_renew_and_release_need_the_current_owner_and_token(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import logs, refused

        [m, _] = store.send_message(
            TEAM,
            OutgoingMessage("alice", "*", "x"),
            route=RouteChoice("bob", "r", LEASE, ("bob", "carol")),
        )
        for who, token in (("carol", 1), ("bob", 7)):
            with refused(store, InvalidState) as info:
                store.renew_route(TEAM, m.id, who, token, lease_seconds=LEASE)
            assert info.value.reason is Reason.NOT_THE_OWNER
        clock.advance(LEASE / 2)
        renewed = store.renew_route(TEAM, m.id, "bob", 1, lease_seconds=LEASE)
        assert renewed.lease_expires_at == clock() + LEASE
        with logs(store, "message_routed") as released:
            route = store.release_route(TEAM, m.id, "bob", 1)
        assert (route.owner, route.token, route.rule) == ("carol", 2, "released by bob")
        assert released[0].payload["previous"] == "bob"
        with refused(store, InvalidState):
            store.release_route(TEAM, m.id, "bob", 1)  # not the owner any more

    def test_an_expired_lease_moves_ownership_to_the_next_candidate(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import logs

        [m, _] = store.send_message(
            TEAM,
            OutgoingMessage("alice", "*", "x"),
            route=RouteChoice("carol", "r", LEASE, ("bob", "carol")),
        )
        with logs(store):
            assert store.expire_routes(TEAM) == []
        clock.advance(LEASE + 1)
        with logs(store, "message_routed") as moved:
            [route] = store.expire_routes(TEAM)
        assert (route.owner, route.token) == ("bob", 2)  # round: after carol comes bob
        assert moved[0].payload["rule"] == "lease of carol ran out"
        assert store.get_route(TEAM, m.id) == route

    def test_a_heartbeat_keeps_the_owners_routes_and_moves_a_silent_ones(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import logs

        [m, _] = store.send_message(
            TEAM,
            OutgoingMessage("alice", "*", "x"),
            route=RouteChoice("bob", "r", LEASE, ("bob", "carol")),
        )
        clock.advance(LEASE / 2)
        with logs(store):  # bob beats: his lease runs from now, and nothing is logged
            store.update_member(TEAM, "bob", heartbeat=True)
        assert store.get_route(TEAM, m.id).lease_expires_at == clock() + LEASE  # type: ignore[union-attr]
        clock.advance(LEASE + 1)  # bob falls silent; carol's heartbeat moves his message on
        with logs(store, "message_routed") as moved:
            store.update_member(TEAM, "carol", heartbeat=True)
        assert moved[0].payload["owner"] == "carol" and moved[0].payload["previous"] == "bob"
        store.update_member(TEAM, "bob", heartbeat=True)  # back too late: it stays carol's
        assert store.get_route(TEAM, m.id).owner == "carol"  # type: ignore[union-attr]

    def test_bad_routes_change_nothing(self, store: Store) -> None:
        from accord.testing.conformance import refused

        with refused(store, UnknownMember):  # the message is not sent either
            store.send_message(
                TEAM, OutgoingMessage("alice", "bob", "x"), route=RouteChoice("zed", "r", LEASE)
            )
        with refused(store, UserError):
            store.send_message(
                TEAM, OutgoingMessage("alice", "bob", "x"), route=RouteChoice("bob", "r", 0)
            )
        with refused(store, UnknownMessage):
            store.route_message(TEAM, 999, "bob", rule="r", lease_seconds=LEASE)
        [m] = store.send_message(TEAM, OutgoingMessage("alice", "bob", "x"))
        with refused(store, UnknownMember):
            store.route_message(TEAM, m.id, "zed", rule="r", lease_seconds=LEASE)

    def test_only_the_owner_answers_and_its_answer_ends_the_route(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import logs, refused

        _with_lead(store)
        sent = store.send_message(
            TEAM,
            OutgoingMessage("alice", "*", "is the api slow?"),
            route=RouteChoice("bob", "r", LEASE, ("bob", "carol"), ("api", "perf")),
        )
        root = sent[0].id
        carol_copy = next(m.id for m in sent if m.recipient == "carol")
        for reply_to in (root, carol_copy):  # carol may not answer bob's message
            with refused(store, InvalidState) as info:
                store.send_message(TEAM, OutgoingMessage("carol", "alice", "no", reply_to=reply_to))
            assert info.value.reason is Reason.OWNED_BY_ANOTHER and "owned by bob" in str(
                info.value
            )
        with logs(store, "message_sent"):  # its sender adds to it: not an answer
            store.send_message(TEAM, OutgoingMessage("alice", "bob", "p99", reply_to=root))
        with logs(store, "message_sent", "message_answered") as answered:
            [answer] = store.send_message(
                TEAM, OutgoingMessage("bob", "alice", "yes, 2 s", reply_to=carol_copy)
            )
        assert answered[1].payload == {"id": root, "member": "bob", "answer": answer.id}
        route = store.get_route(TEAM, root)
        assert route is not None
        assert (route.answer_id, route.answered_at, route.accepted) == (answer.id, clock(), None)
        assert route.topics == ("api", "perf")
        assert store.member_load(TEAM) == {} and store.list_routes(TEAM, unanswered=True) == []
        clock.advance(LEASE * 3)
        with logs(store):  # an answered route holds no lease: nothing moves
            assert store.expire_routes(TEAM) == []
        with refused(store, InvalidState):
            store.release_route(TEAM, root, "bob", route.token)
        with refused(store, InvalidState):
            store.take_ownership(TEAM, root, "carol", by="lena", lease_seconds=LEASE)
        with logs(store, "message_sent"):  # answered: the thread is open to all
            store.send_message(TEAM, OutgoingMessage("carol", "alice", "agreed", reply_to=root))

    def test_the_sender_judges_the_answer_and_patterns_count_it(self, store: Store) -> None:
        from accord.testing.conformance import logs, refused
        from accord.types import WorkPattern

        def ask(body: str, owner: str, topics: tuple[str, ...]) -> int:
            return store.send_message(
                TEAM,
                OutgoingMessage("alice", owner, body),
                route=RouteChoice(owner, "r", LEASE, (owner,), topics),
            )[0].id

        first, second, third = ask("a", "bob", ("api",)), ask("b", "bob", ()), ask("c", "carol", ())
        with refused(store, InvalidState) as info:  # not answered yet
            store.judge_answer(TEAM, first, "alice", accepted=True)
        assert info.value.reason is Reason.NOT_ANSWERED
        for m, owner in ((first, "bob"), (second, "bob")):
            store.send_message(TEAM, OutgoingMessage(owner, "alice", "done", reply_to=m))
        with refused(store, InvalidState):  # only its sender judges it
            store.judge_answer(TEAM, first, "carol", accepted=True)
        with logs(store, "answer_judged") as judged:
            assert store.judge_answer(TEAM, first, "alice", accepted=True).accepted is True
        assert judged[0].payload == {"id": first, "by": "alice", "owner": "bob", "accepted": True}
        store.judge_answer(TEAM, second, "person", accepted=False)
        d = store.open_deliberation(TEAM, "which db?", "alice", ["carol"], rounds=0, tags=["db"])
        store.submit_position(TEAM, d.id, "carol", "sqlite")
        d = store.claim_synthesis(TEAM, d.id, "carol")
        store.finish_deliberation(TEAM, d.id, "carol", d.lease_token, "sqlite")
        assert store.work_patterns(TEAM) == [
            WorkPattern("bob", "*", owned=2, answered=2, accepted=1, rejected=1),
            WorkPattern("bob", "api", owned=1, answered=1, accepted=1),
            WorkPattern("carol", "*", owned=1, syntheses=1),
            WorkPattern("carol", "db", syntheses=1),
        ]
        assert third and [p.score for p in store.work_patterns(TEAM)] == [1, 2, 1, 1]
