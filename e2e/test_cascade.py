"""PROTOCOL.md 8, issue 16: one event across nodes. A listener or co-host on a node that is not the
event's origin is served by that node (an edge), which holds one link per event to the origin and
fans out to its own clients; the client sees exactly the protocol of one node. tools/test starts
the PostgreSQL cluster (AIRWAVE_TEST_POSTGRES_URL)."""

import asyncio

import pytest

from awtest import close_all, go_live, http_json, join, metrics, metric_sum, run, send, uid
from test_cluster import start_nodes
from test_media import (HOST_SOURCE_ID, KIND_OPUS, SPEECH, Tap, as_relayed, make_cohost, media, sync_point)
from test_postgres import URL, fresh_database, wait_for

pytestmark = pytest.mark.skipif(not URL, reason="AIRWAVE_TEST_POSTGRES_URL is not set (tools/test sets it)")


async def joined(node, event_id, host_tap, name, verified=True):
    """A listener of `node`, seen joining by the host; returns (member, tap)."""
    member = await join(node, event_id, uid(name), verified=verified)
    await host_tap.wait_text("participant_joined", pred=lambda x: x["user_id"] == member.user_id)
    return member, Tap(member.ws, name)


async def closed_code(tap, timeout=5.0):
    """Waits until the tap's socket closed; returns its close code."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not tap.closed:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"{tap.name}: still open after {timeout} s; {tap.summary()}"
        tap._changed.clear()
        try:
            await asyncio.wait_for(tap._changed.wait(), left)
        except asyncio.TimeoutError:
            pass
    return tap.close_code


async def published(event_id, *nodes):
    """Waits until every node's directory lists the event (PROTOCOL.md 8: within 2 s)."""
    for node in nodes:
        await asyncio.to_thread(wait_for, lambda n=node: event_id in [e["event_id"] for e in http_json(n, "/api/streams")["streams"]],
                                3, f"the event in {node.http}'s directory")


def relayed_audio(tap, start=0):
    return [f for _, f in tap.frames[start:] if isinstance(f, bytes)]


def test_listeners_on_every_node_get_every_frame_chat_once_and_the_same_lists(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b", "c"])
    a, b, c = nodes["a"], nodes["b"], nodes["c"]

    async def scenario():
        host, link = await go_live(a, uid("host"), "Host")
        event_id = link["event_id"]
        host_tap = Tap(host, "host")
        await published(event_id, b, c)
        on_a, tap_a = await joined(a, event_id, host_tap, "la")
        on_b, tap_b = await joined(b, event_id, host_tap, "lb")
        on_b2, tap_b2 = await joined(b, event_id, host_tap, "lb2", verified=False)
        on_c, tap_c = await joined(c, event_id, host_tap, "lc")
        taps = [tap_a, tap_b, tap_b2, tap_c]

        # The edge's joiner got the origin's stream_state and chat history.
        for member in (on_b, on_c):
            assert member.state["event_id"] == event_id and member.state["mode"] == "audio", member.state
            assert member.history["messages"] == [], member.history

        # Host audio: every frame, in order, with the host's source id, on every node.
        sent = [media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960) for i in range(50)]
        for frame in sent:
            await host.send(frame)
        await sync_point(host, *taps)
        want = [as_relayed(f, HOST_SOURCE_ID) for f in sent]
        for tap in taps:
            assert relayed_audio(tap) == want, tap.name

        # Chat from an edge reaches everyone once, in one order.
        marks = [len(t) for t in [host_tap] + taps]
        await send(on_b.ws, {"type": "broadcast_message", "message": "hello from b"})
        for tap, start in zip([host_tap] + taps, marks):
            await tap.wait_text("message_broadcast", start=start, pred=lambda m: m["message"] == "hello from b")
        await sync_point(host, *taps)
        for tap, start in zip([host_tap] + taps, marks):
            got = [f for _, f in tap.frames[start:] if isinstance(f, dict) and f.get("type") == "message_broadcast"
                   and f["message"] == "hello from b"]
            assert len(got) == 1 and got[0]["user_id"] == on_b.user_id, (tap.name, got)

        # Lists and counts are the same on every node once they settle.
        everyone = {on_a.user_id, on_b.user_id, on_b2.user_id, on_c.user_id}

        async def settled(tap):
            i = await tap.wait_text("participant_count", timeout=5, pred=lambda m: m["count"] == 4)
            j = await tap.wait_text("participant_list", timeout=5,
                                    pred=lambda m: {p["user_id"] for p in m["participants"]} >= everyone)
            return tap.frames[i][1], tap.frames[j][1]
        lists = [await settled(t) for t in [host_tap] + taps]
        assert all(lst == lists[0] for lst in lists), lists

        # A co-host on c is heard on a and b, and not by itself.
        joined_msg = await make_cohost(host, host_tap, on_c, tap_c)
        source = joined_msg["source_id"]
        marks = [len(t) for t in taps]
        spoken = [media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960) for i in range(20)]
        for frame in spoken:
            await on_c.ws.send(frame)
        # Its frames go up c's link and come back down to a and b.
        for tap, start in zip([tap_a, tap_b, tap_b2], marks):
            await tap.wait(lambda f, s=start: False if not isinstance(f, bytes) else
                           f == as_relayed(spoken[-1], source), timeout=5, start=start, what="the co-host's last frame")
            assert relayed_audio(tap, start) == [as_relayed(f, source) for f in spoken], tap.name
        await sync_point(host, *taps)
        assert relayed_audio(tap_c, marks[3]) == [], "a co-host got its own voice back"

        # The origin holds one link per edge, and counts what went down them.
        assert metric_sum(metrics(a), "airwave_connections_open", 'endpoint="link"') == 2
        assert metric_sum(metrics(b), "airwave_link_frames_total", 'direction="down"') > 0

        # The end reaches every node: stream_ended, then a normal close.
        await send(host, {"type": "stream_ended"})
        for tap in taps:
            await tap.wait_text("stream_ended", timeout=5)
            assert await closed_code(tap) == 1000, tap.name
        await close_all(host)
    run(scenario())
