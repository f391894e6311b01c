"""PROTOCOL.md 3 and 8, docs/protocol.md "Listening rooms across nodes": a listening room's members
may be connected to different nodes of a cluster (`airwave serve` processes on one PostgreSQL
database). Every member, on every node, sees every change in one order, each change stored before
anyone sees it; host rules and votes are checked against the latest state whichever node a
message arrives at; a room outlives a node killed with SIGKILL, and its members reconnecting to
another node get the full state. tools/test starts the PostgreSQL cluster
(AIRWAVE_TEST_POSTGRES_URL)."""

from __future__ import annotations

import asyncio
import time

import pytest

from awtest import close_all, connect, q, recv_json, run, send, token, uid
from test_cluster import start_nodes
from test_postgres import URL, fresh_database

pytestmark = pytest.mark.skipif(not URL, reason="AIRWAVE_TEST_POSTGRES_URL is not set (tools/test sets it)")

# Frames every member of the room receives (the others: room_state to a joiner, errors to a sender).
NOT_RELAYED = ("room_state", "error")


class Member:
    """One socket of the room: every frame it received, relays and the others apart."""

    def __init__(self, name, ws, state):
        self.name = name
        self.ws = ws
        self.state = state
        self.relays: list[dict] = []
        self.others: list[dict] = []

    async def read_until(self, relays: int, timeout: float = 15.0):
        """Reads until `relays` relays arrived in all (anti-hang bound: `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.relays) < relays:
            left = deadline - time.monotonic()
            assert left > 0, f"{self.name}: {len(self.relays)} of {relays} relays within {timeout} s: {self.relays[-3:]}"
            msg = await recv_json(self.ws, left)
            (self.others if msg["type"] in NOT_RELAYED else self.relays).append(msg)

    def errors(self, code):
        return [m for m in self.others if m["type"] == "error" and m.get("code") == code]


async def enter(node, room, name, user=None) -> Member:
    path = f"/ws/session/{q(room)}/" + (f"?token={q(token(user, name))}" if user else f"?name={q(name)}")
    ws = await connect(node.ws(path))
    state = await recv_json(ws, 10)
    assert state["type"] == "room_state", state
    return Member(name, ws, state)


def same_order(members):
    first = members[0]
    for other in members[1:]:
        assert other.relays == first.relays, (
            f"{other.name} saw another order than {first.name}:\n"
            + "\n".join(f"{a} | {b}" for a, b in zip(first.relays, other.relays) if a != b))
    return first.relays


def test_members_on_three_nodes_see_every_change_in_one_order(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b", "c"])
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    room = uid("room")

    async def scenario():
        # One verified user on a and on c (one voter), another on b, and a guest on b.
        ua, ub, guest, uc = (await enter(a, room, "Uma A", "u-uma"), await enter(b, room, "Bo", "u-bo"),
                             await enter(b, room, "Gia"), await enter(c, room, "Uma C", "u-uma"))
        members = [ua, ub, guest, uc]

        # Interleaved from the three nodes at once; none depends on another's order.
        await asyncio.gather(
            send(ua.ws, {"type": "song_queued", "song_id": "s-a"}),
            send(ub.ws, {"type": "song_queued", "song_id": "s-b"}),
            send(uc.ws, {"type": "autoplay_song_queued", "song_id": "s-c"}),
            send(guest.ws, {"type": "user_joined"}))
        for i in range(3):
            await asyncio.gather(*(send(m.ws, {"type": "chat_message", "message": f"{m.name}@{n} {i}"})
                                   for m, n in ((ua, "a"), (ub, "b"), (guest, "b"), (uc, "c"))))
        await asyncio.gather(*(m.read_until(16) for m in members))
        order = same_order(members)
        assert sorted(m["song_id"] for m in order if m["type"] in ("song_queued", "autoplay_song_queued")) == ["s-a", "s-b", "s-c"]
        # Each sender's messages keep their order.
        for name, node in (("Uma A", "a"), ("Bo", "b"), ("Gia", "b"), ("Uma C", "c")):
            said = [m["message"] for m in order if m["type"] == "chat_message" and m["message"].startswith(f"{name}@{node}")]
            assert said == [f"{name}@{node} {i}" for i in range(3)], said

        # The same verified user votes for s-b on a and on c at once: one vote counts, the other
        # connection gets already_voted. The guest's vote counts too.
        await asyncio.gather(send(ua.ws, {"type": "song_vote", "song_id": "s-b"}),
                             send(uc.ws, {"type": "song_vote", "song_id": "s-b"}),
                             send(guest.ws, {"type": "song_vote", "song_id": "s-b"}))
        await asyncio.gather(*(m.read_until(18) for m in members))
        votes = [m for m in same_order(members) if m["type"] == "song_vote"]
        assert [v["user_id"] for v in votes].count("u-uma") == 1, votes
        # The other connection's vote was checked against the state with the first one in it.
        loser = uc if next(v["name"] for v in votes if v["user_id"] == "u-uma") == "Uma A" else ua
        while not loser.errors("already_voted"):
            msg = await recv_json(loser.ws, 10)
            assert msg["type"] == "error", msg
            loser.others.append(msg)
        assert [v["votes"] for v in votes] == [2, 3], votes
        assert len(ua.errors("already_voted") + uc.errors("already_voted")) == 1

        # Song changes and playback from different nodes, in one order everywhere; the second song
        # change is sent once its sender saw the first (the top of the queue, s-b, most votes).
        await asyncio.gather(send(ub.ws, {"type": "song_changed"}),
                             send(uc.ws, {"type": "playback_changed", "paused": False, "song_progress": 1000}))
        await ua.read_until(20)
        await send(ua.ws, {"type": "song_changed", "song_id": "s-c"})
        await asyncio.gather(*(m.read_until(21) for m in members))
        order = same_order(members)
        changes = [m["song_id"] for m in order if m["type"] == "song_changed"]
        assert changes == ["s-b", "s-c"], changes

        # A late joiner on any node sees the state the order left.
        late = await enter(b, room, "Late")
        assert late.state["current_song"] == {"song_id": "s-c"}
        assert [s["song_id"] for s in late.state["queue"]] == ["s-a"]
        assert late.state["playback"]["song_progress"] == 1000
        assert [m["message"] for m in late.state["chat_history"]] == [m["message"] for m in order if m["type"] == "chat_message"]
        await close_all(*(m.ws for m in members + [late]))

    run(scenario())


def test_a_room_outlives_a_killed_node_and_its_members_get_the_full_state_elsewhere(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b", "c"])
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    room = uid("room")

    async def scenario():
        ma, mb, mc = await enter(a, room, "Ann", "u-ann"), await enter(b, room, "Ben", "u-ben"), await enter(c, room, "Cy")
        await send(ma.ws, {"type": "song_queued", "song_id": "s1"})
        await send(mb.ws, {"type": "song_queued", "song_id": "s2"})
        await mc.read_until(2)
        await send(mc.ws, {"type": "song_vote", "song_id": "s1"})
        await asyncio.gather(*(m.read_until(3) for m in (ma, mb, mc)))
        await send(mb.ws, {"type": "chat_message", "message": "b was here"})
        await asyncio.gather(*(m.read_until(4) for m in (ma, mb, mc)))
        same_order([ma, mb, mc])

        b.kill()
        # The others go on: their changes are ordered and stored without b.
        await send(ma.ws, {"type": "song_changed", "song_id": "s1"})
        await send(mc.ws, {"type": "chat_message", "message": "after b"})
        await asyncio.gather(*(m.read_until(6) for m in (ma, mc)))
        order = list(same_order([ma, mc]))

        # Ben reconnects to c: the full state, as the others saw it.
        back = await enter(c, room, "Ben", "u-ben")
        assert back.state["current_song"] == {"song_id": "s1"}
        assert back.state["queue"] == [{"song_id": "s2", "votes": 1, "time_added": back.state["queue"][0]["time_added"]}]
        assert [m["message"] for m in back.state["chat_history"]] == ["b was here", "after b"]
        # Ben's vote was stored with the room: voting again from c is already_voted.
        await send(back.ws, {"type": "song_vote", "song_id": "s2"})
        msg = await recv_json(back.ws, 10)
        assert msg["type"] == "error" and msg["code"] == "already_voted", msg
        # And the room is one again.
        await send(back.ws, {"type": "chat_message", "message": "ben is back"})
        await asyncio.gather(*(m.read_until(7) for m in (ma, mc)), back.read_until(1))
        assert ma.relays[-1] == mc.relays[-1] == back.relays[-1]
        assert order == ma.relays[:6]
        await close_all(ma.ws, mc.ws, back.ws)
        await close_all(mb.ws)

    run(scenario())
