"""Conformance for channels: named topics whose posts reach every subscriber's inbox.

A mixin of ``StoreConformance`` (it uses that class's ``store``, ``clock`` and
``make_store`` fixtures: team ``main`` with alice, bob and carol), kept in its own
module so the promises about channels read together: a post reaches each other
subscriber as mail (delivered, acknowledged, first-in first-out), the channel's
history is complete and ordered for a member who joined later, and posting to an
unknown channel, or one the poster has not joined, is refused and changes nothing.
"""

from __future__ import annotations

from accord.errors import (
    AlreadyExists,
    InvalidName,
    InvalidState,
    Reason,
    UnknownChannel,
    UnknownMember,
    UnknownMessage,
    UserError,
)
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import PERSON, Channel, OutgoingMessage

TEAM = "main"
VISIBILITY = 30.0


class ChannelConformance:
    """Channels, on every backend."""

    def test_create_join_leave_write_their_events(self, store: Store, clock: FakeClock) -> None:
        from accord.testing.conformance import logs

        with logs(store, "channel_created") as created:
            channel = store.create_channel(TEAM, "design", "alice")
        assert channel == Channel(TEAM, "#design", "alice", clock(), ("alice",))
        assert created[0].payload == {"channel": "#design", "creator": "alice"}
        with logs(store, "channel_joined", "channel_joined") as joined:
            assert store.join_channel(TEAM, "#design", "bob")
            assert store.join_channel(TEAM, "#design", PERSON)  # the person may subscribe
        assert joined[1].payload == {"channel": "#design", "member": PERSON}
        with logs(store):  # joining twice is no change
            assert not store.join_channel(TEAM, "#design", "bob")
        [listed] = store.list_channels(TEAM)
        assert listed.subscribers == ("alice", "bob", PERSON)
        with logs(store, "channel_left"):
            assert store.leave_channel(TEAM, "#design", "bob")
        with logs(store):
            assert not store.leave_channel(TEAM, "#design", "bob")
        assert store.list_channels(TEAM)[0].subscribers == ("alice", PERSON)

    def test_a_post_reaches_every_other_subscriber_as_mail(self, store: Store) -> None:
        from accord.testing.conformance import logs

        store.create_channel(TEAM, "#design", "alice")
        store.join_channel(TEAM, "#design", "bob")
        with logs(store, "message_sent") as sent:
            posted = store.post(TEAM, "#design", "alice", "first", summary="one")
            # carol has not joined: she gets nothing, and may not post
        [post, copy] = posted
        assert (post.recipient, copy.recipient) == ("#design", "bob")
        assert all(m.channel == "#design" and m.sender == "alice" for m in posted)
        assert sent[0].payload["channel"] == "#design" and sent[0].payload["to"] == "#design"
        assert sent[0].payload["ids"] == [post.id, copy.id]
        store.post(TEAM, "#design", "alice", "second")
        store.post(TEAM, "#design", "bob", "third")
        got = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [(m.body, m.channel) for m in got] == [("first", "#design"), ("second", "#design")]
        got_alice = store.receive_messages(TEAM, "alice", visibility_timeout=VISIBILITY)
        assert [m.body for m in got_alice] == ["third"]
        assert store.receive_messages(TEAM, "carol", visibility_timeout=VISIBILITY) == []
        assert store.pending_work(TEAM, "carol").mail == 0
        # Mail's promises: unacknowledged copies come back; acknowledged ones do not.
        assert store.ack_messages(TEAM, "bob", [got[0].id]) == [got[0].id]

    def test_unacked_posts_are_delivered_again(self, store: Store, clock: FakeClock) -> None:
        store.create_channel(TEAM, "#review", "alice")
        store.join_channel(TEAM, "#review", "bob")
        store.post(TEAM, "#review", "alice", "look")
        first = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        clock.advance(VISIBILITY + 1)
        again = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [m.id for m in again] == [m.id for m in first] and again[0].deliveries == 2
        store.ack_messages(TEAM, "bob", [first[0].id])
        clock.advance(VISIBILITY + 1)
        assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []

    def test_history_is_complete_and_ordered_for_a_late_joiner(self, store: Store) -> None:
        store.create_channel(TEAM, "#design", "alice")
        store.join_channel(TEAM, "#design", "bob")
        ids = [store.post(TEAM, "#design", "alice", f"p{i}")[0].id for i in range(3)]
        store.post(TEAM, "#design", "bob", "p3")
        store.join_channel(TEAM, "#design", "carol")
        history = store.channel_history(TEAM, "#design")
        assert [m.body for m in history] == ["p0", "p1", "p2", "p3"]
        assert all(m.recipient == "#design" for m in history)
        assert [m.body for m in store.channel_history(TEAM, "#design", since=ids[0])] == [
            "p1",
            "p2",
            "p3",
        ]
        assert [m.body for m in store.channel_history(TEAM, "design", limit=2)] == ["p0", "p1"]
        # carol joined after: the history is hers to read; her inbox starts with her joining
        assert store.receive_messages(TEAM, "carol", visibility_timeout=VISIBILITY) == []
        # a post nobody else reads is still kept
        store.create_channel(TEAM, "#alone", "carol")
        assert store.post(TEAM, "#alone", "carol", "note to self")[0].recipient == "#alone"
        assert [m.body for m in store.channel_history(TEAM, "#alone")] == ["note to self"]

    def test_news_newest_history_and_reading_a_channel_acks_its_copies(self, store: Store) -> None:
        from accord.testing.conformance import logs, refused

        store.create_channel(TEAM, "#design", "alice")
        store.create_channel(TEAM, "#quiet", "alice")
        store.join_channel(TEAM, "#design", PERSON)
        store.join_channel(TEAM, "#quiet", PERSON)
        store.send_message(TEAM, OutgoingMessage(sender="alice", recipient=PERSON, body="dm"))
        posts = [store.post(TEAM, "#design", "alice", f"p{i}")[0] for i in range(4)]
        news = store.channel_news(TEAM, PERSON)
        assert news["#design"].unread == 4 and news["#design"].newest == posts[-1]
        assert (news["#quiet"].unread, news["#quiet"].newest) == (0, None)
        newest = store.channel_history(TEAM, "#design", limit=2, newest=True)
        assert [m.body for m in newest] == ["p2", "p3"]  # the last two, oldest first
        assert [m.body for m in store.channel_history(TEAM, "#design", newest=True)] == [
            "p0", "p1", "p2", "p3",
        ]  # fmt: skip
        with logs(store, "messages_acked") as acked:
            done = store.ack_channel(TEAM, "#design", PERSON)
        assert len(done) == 4 and acked[0].payload == {"by": PERSON, "ids": done}
        assert store.channel_news(TEAM, PERSON)["#design"].unread == 0
        # the person's other mail stays unread; reading again acknowledges nothing
        assert [m.body for m in store.list_messages(TEAM, member=PERSON, unacked=True)] == ["dm"]
        with logs(store):
            assert store.ack_channel(TEAM, "#design", PERSON) == []
        with refused(store, UnknownChannel):
            store.ack_channel(TEAM, "#nope", PERSON)
        with refused(store, UnknownMember):
            store.channel_news(TEAM, "dave")

    def test_refusals_change_nothing(self, store: Store) -> None:
        from accord.testing.conformance import refused

        store.create_channel(TEAM, "#design", "alice")
        with refused(store, UnknownChannel) as unknown:
            store.post(TEAM, "#nope", "alice", "hello")
        assert unknown.value.channel == "#nope" and "#design" in str(unknown.value)
        with refused(store, InvalidState) as not_joined:
            store.post(TEAM, "#design", "bob", "hello")
        assert not_joined.value.reason == Reason.NOT_SUBSCRIBED
        assert not_joined.value.member == "bob"
        with refused(store, UnknownChannel):
            store.join_channel(TEAM, "#nope", "bob")
        with refused(store, UnknownChannel):
            store.leave_channel(TEAM, "#nope", "bob")
        with refused(store, UnknownChannel):
            store.channel_history(TEAM, "#nope")
        with refused(store, AlreadyExists):
            store.create_channel(TEAM, "#design", "bob")
        with refused(store, InvalidName):
            store.create_channel(TEAM, "#Bad Name", "bob")
        with refused(store, UnknownMember):
            store.create_channel(TEAM, "#x", "dave")
        with refused(store, UnknownMember):
            store.join_channel(TEAM, "#design", "dave")
        with refused(store, UserError):
            store.post(TEAM, "#design", "alice", "   ")

    def test_a_removed_member_gets_no_more_posts(self, store: Store) -> None:
        store.create_channel(TEAM, "#design", "alice")
        store.join_channel(TEAM, "#design", "carol")
        store.remove_member(TEAM, "carol")
        assert store.list_channels(TEAM)[0].subscribers == ("alice",)
        assert [m.recipient for m in store.post(TEAM, "#design", "alice", "hi")] == ["#design"]

    def test_channels_move_with_their_team(self, store: Store) -> None:
        store.create_channel(TEAM, "#design", "alice")
        store.join_channel(TEAM, "#design", "bob")
        store.post(TEAM, "#design", "alice", "kept")
        channels, history = store.list_channels(TEAM), store.channel_history(TEAM, "#design")
        dump = store.dump_team(TEAM)
        store.delete_team(TEAM)
        store.load_team(dump)
        assert store.list_channels(TEAM) == channels
        assert store.channel_history(TEAM, "#design") == history

    def test_a_post_with_a_key_is_posted_once(self, store: Store) -> None:
        from accord.testing.conformance import logs, refused

        store.create_channel(TEAM, "#ops", "alice")
        store.join_channel(TEAM, "#ops", "bob")
        with logs(store, "message_sent"):
            first = store.post(TEAM, "#ops", "alice", "deploying", key="deploy-1")
        with logs(store):  # retried after a crash: the same post, nothing new
            again = store.post(TEAM, "#ops", "alice", "deploying", key="deploy-1")
        assert [m.id for m in again] == [m.id for m in first]
        assert [m.id for m in store.channel_history(TEAM, "#ops")] == [first[0].id]
        store.send_message(TEAM, OutgoingMessage("alice", "bob", "hi", idempotency_key="k2"))
        with refused(store, UserError):  # a key used for something else
            store.post(TEAM, "#ops", "alice", "x", key="k2")
        reply = store.post(TEAM, "#ops", "bob", "ok", reply_to=first[0].id)
        assert reply[0].reply_to == first[0].id
        with refused(store, UnknownMessage):
            store.post(TEAM, "#ops", "bob", "ok", reply_to=999_999)
