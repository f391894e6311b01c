"""PROTOCOL.md 8, issue 16: one event across nodes. A listener or co-host on a node that is not the
event's origin is served by that node (an edge), which holds one link per event to the origin and
fans out to its own clients; the client sees exactly the protocol of one node. tools/test starts
the PostgreSQL cluster (AIRWAVE_TEST_POSTGRES_URL)."""

import asyncio
import subprocess

import numpy as np
import pytest

from awtest import close_all, expect_refusal, go_live, http_json, join, join_path, metrics, metric_sum, run, send, token, uid
from test_cluster import CLUSTER_SECRET, free_port, start_nodes
from test_media import (CONFIG_PAYLOAD, FLAG_CONFIG, FLAG_KEYFRAME, HOST_SOURCE_ID, KIND_OPUS, KIND_SCREEN, SPEECH, Tap,
                        as_relayed, is_media, make_cohost, media, screen, sync_point)
from test_postgres import URL, fresh_database, wait_for

pytestmark = pytest.mark.skipif(not URL, reason="AIRWAVE_TEST_POSTGRES_URL is not set (tools/test sets it)")


def fresh_nodes(start_server, *names):
    """Nodes named `names` on a fresh database, in that order."""
    nodes = start_nodes(start_server, fresh_database(URL), list(names))
    return [nodes[name] for name in names]


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


async def live_on(origin, *others, host_id=None):
    """A host live on `origin`, its event in every other node's directory; (ws, event id, tap)."""
    host, link = await go_live(origin, host_id or uid("host"), "Host")
    event_id = link["event_id"]
    await published(event_id, *others)
    return host, event_id, Tap(host, "host")


async def resume_host(node, host_id, within=20):
    """The host reconnects to `node` until its event resumes there: until the dead origin drops
    out (7-9 s) it is sent back with `other_node`, as a client retries. Returns (ws, stream_link)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await go_live(node, host_id, "Host")
        except AssertionError as refused:
            assert "other_node" in str(refused), refused
        assert asyncio.get_running_loop().time() < deadline, f"the host could not resume on {node.http}"
        await asyncio.sleep(0.25)


def relayed_audio(tap, start=0):
    return [f for _, f in tap.frames[start:] if isinstance(f, bytes)]


def test_listeners_on_every_node_get_every_frame_chat_once_and_the_same_lists(start_server):
    a, b, c = fresh_nodes(start_server, "a", "b", "c")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c)
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

        # GET /api/cluster shows the cascade: a's event with its two edges, b's view of its link.
        cascade = http_json(a, "/api/cluster")["cascade"]
        lags = [edge.pop("lag_ms") for origin in cascade["origins"] for edge in origin["edges"]]
        assert all(isinstance(lag, int) and 0 <= lag < 1000 for lag in lags), lags
        assert cascade == {"node_id": "a", "edges": [], "origins": [
            {"event_id": event_id, "edges": [{"node_id": "b", "clients": 2}, {"node_id": "c", "clients": 1}]}]}, cascade
        cascade = http_json(b, "/api/cluster")["cascade"]
        assert cascade == {"node_id": "b", "origins": [], "edges": [
            {"event_id": event_id, "origin_node": "a", "linked": True, "clients": 2, "reconnects": 0}]}, cascade

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


def test_the_origin_reports_each_links_lag_in_metrics_and_the_cascade(start_server):
    """Issue 16: the origin reports how far behind it each edge's link is (the age of the oldest
    frame waiting in the link's send queue, sampled every second): the gauge
    `airwave_link_lag_seconds{edge,event_id}` while the link is open, gone once it closes, and
    `lag_ms` per edge in /api/cluster's cascade. An idle link over loopback is not behind."""
    a, b = fresh_nodes(start_server, "a", "b")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b)
        member, tap = await joined(b, event_id, host_tap, "lb")
        labels = f'{{edge="b",event_id="{event_id}"}}'

        def gauge():
            return metrics(a).get(("airwave_link_lag_seconds", labels))

        def cascade_lag():
            origins = http_json(a, "/api/cluster")["cascade"]["origins"]
            edges = [e for o in origins if o["event_id"] == event_id for e in o["edges"] if e["node_id"] == "b"]
            return edges[0]["lag_ms"] if edges else None

        await asyncio.to_thread(wait_for, lambda: gauge() is not None, 3, "the link's lag on the origin's /metrics")
        # Audio down the link, then every reading over more than one sampling interval is sane.
        frames = [media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960) for i in range(50)]
        for frame in frames:
            await host.send(frame)
        await sync_point(host, tap)
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5
        while loop.time() < until:
            seconds, ms = gauge(), cascade_lag()
            assert seconds is not None and 0 <= seconds < 1.0, seconds
            assert isinstance(ms, int) and 0 <= ms < 1000, ms
            await asyncio.sleep(0.1)
        assert not [key for key in metrics(b) if key[0] == "airwave_link_lag_seconds"], "b is the origin of no link"

        # The end closes the link: its series goes.
        await send(host, {"type": "stream_ended"})
        await tap.wait_text("stream_ended", timeout=5)
        await asyncio.to_thread(wait_for, lambda: gauge() is None, 5, "the closed link's lag series gone")
        await close_all(host, member.ws)
    run(scenario())


def test_screen_reaches_edge_viewers_keyframe_first_and_a_late_joiner_on_a_new_edge_gets_the_gop(start_server):
    a, b, c = fresh_nodes(start_server, "a", "b", "c")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c)
        _, viewer = await joined(b, event_id, host_tap, "vb")
        await send(host, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8", "width": 320, "height": 180})
        await viewer.wait_text("stream_mode_changed", pred=lambda m: m["mode"] == "screen")
        # A delta before any keyframe, the config frame, then frames 0-14 (keyframes at 0 and 10).
        await host.send(screen(5, 0))
        config = media(KIND_SCREEN, CONFIG_PAYLOAD, seq=1, flags=FLAG_CONFIG)
        await host.send(config)
        sent = [screen(i, 2 + i) for i in range(15)]
        for frame in sent:
            await host.send(frame)
        await viewer.wait_count(is_media(), 16, what="config and 15 frames")
        got = viewer.media()
        assert got[0].raw == as_relayed(config, HOST_SOURCE_ID), got[0]
        assert got[1].flags & FLAG_KEYFRAME and [f.raw for f in got[1:]] == [as_relayed(f, HOST_SOURCE_ID) for f in sent]

        # Node c has no edge for the event yet: its first viewer opens the link, which brings the
        # config frame and the GOP since the last keyframe; the viewer gets them first.
        late = await join(c, event_id, uid("late"))
        assert late.state["mode"] == "screen" and late.state["screen"]["codec"] == "vp8", late.state
        late_tap = Tap(late.ws, "late")
        gop = sent[10:]
        await late_tap.wait_count(is_media(), 1 + len(gop), what="config + GOP")
        got = late_tap.media()
        assert got[0].raw == as_relayed(config, HOST_SOURCE_ID), got[0]
        assert [f.raw for f in got[1:1 + len(gop)]] == [as_relayed(f, HOST_SOURCE_ID) for f in gop], [f.seq for f in got]
        # And the frames after it, as everyone else.
        more = [screen(i, 17 + i - 15) for i in range(15, 20)]
        for frame in more:
            await host.send(frame)
        for tap in (viewer, late_tap):
            await tap.wait(is_media(lambda f: f.raw == as_relayed(more[-1], HOST_SOURCE_ID)), what="the last frame")
        assert [f.raw for f in late_tap.media()[1 + len(gop):]] == [as_relayed(f, HOST_SOURCE_ID) for f in more]
        await close_all(host, viewer.ws, late_tap.ws)
    run(scenario())


def test_a_link_without_the_cluster_credential_is_refused(start_server):
    (a,) = fresh_nodes(start_server, "a")

    async def scenario():
        host, link = await go_live(a)
        event_id = link["event_id"]
        path = f"/ws/cluster/link/{event_id}/?node=b&session=s1"
        for query in ("", "&token=", "&token=1999999999.AAAA"):
            refusal = await expect_refusal(a.ws(path + query), "unauthorized", 4401)
            assert refusal["details"]["reason"] == "cluster_link", refusal
        await close_all(host)
    run(scenario())


class Proxy:
    """A TCP proxy in front of a node: the other nodes reach the node through it (its --node-url),
    so a test can break every link at once while both nodes stay up."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.pairs = []

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.pairs.append((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def break_all(self):
        """Resets every connection through the proxy (new ones are still accepted)."""
        for a, b in self.pairs:
            for w in (a, b):
                w.transport.abort()
        self.pairs = []


def test_a_broken_link_is_back_within_a_second_and_the_edges_listeners_stay(start_server):
    async def scenario():
        database = fresh_database(URL)
        a_port = free_port()
        proxy = Proxy(a_port)
        await proxy.start()
        a = await asyncio.to_thread(
            start_server, "--database", database, "--node-url", f"http://127.0.0.1:{proxy.port}", "--cluster-secret", CLUSTER_SECRET,
            "--node-id", "a", port_flag=str(a_port))
        b = (await asyncio.to_thread(start_nodes, start_server, database, ["b"]))["b"]
        host, event_id, host_tap = await live_on(a, b)
        member, tap = await joined(b, event_id, host_tap, "lb")
        await send(host, {"type": "broadcast_message", "message": "before"})
        await tap.wait_text("message_broadcast", pred=lambda m: m["message"] == "before")
        assert len(proxy.pairs) == 1, "one link for the event"

        mark, mark_host = len(tap), len(host_tap)
        broken = asyncio.get_running_loop().time()
        proxy.break_all()
        # The edge re-links and brings its members up to date: the list and count come again.
        await tap.wait_text("participant_count", start=mark, timeout=3)
        took = asyncio.get_running_loop().time() - broken
        assert took < 1.0, f"the link was back after {took:.2f} s"
        assert not tap.closed, "the edge's listener lost its socket"
        # Chat sent while the link was down reaches it once (missed chat is replayed on re-link).
        await send(host, {"type": "broadcast_message", "message": "after"})
        frames = [media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960) for i in range(10)]
        for frame in frames:
            await host.send(frame)
        await sync_point(host, tap)
        got = [f for _, f in tap.frames[mark:] if isinstance(f, dict) and f.get("type") == "message_broadcast"]
        assert [m["message"] for m in got if not m["message"].startswith("sync-")] == ["after"], got
        assert relayed_audio(tap, mark) == [as_relayed(f, HOST_SOURCE_ID) for f in frames]
        # The origin never counted the listener out.
        assert not [f for _, f in host_tap.frames[mark_host:] if isinstance(f, dict) and f.get("type") == "participant_left"]
        assert metric_sum(metrics(b), "airwave_link_reconnects_total") == 1
        await close_all(host, member.ws)
        proxy.server.close()
    run(scenario())


def test_the_origin_dies_the_host_resumes_on_another_node_and_edge_listeners_hear_it_again(start_server):
    """Kill the origin during speech: the host reconnects to node c within the grace period and
    the event resumes there (same id, chat kept); the listeners on b keep their sockets and hear
    the host again within 2 s of the reconnect. The co-hosts, promoted in another order than
    they joined, are co-hosts again with the source ids they had (PROTOCOL.md 2: a source id
    stays with its user for the whole event)."""
    a, b, c = fresh_nodes(start_server, "a", "b", "c")
    host_id = uid("host")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c, host_id=host_id)
        on_b, tap_b = await joined(b, event_id, host_tap, "lb")
        on_c, tap_c = await joined(c, event_id, host_tap, "lc")
        cohost_b, cohost_b_tap = await joined(b, event_id, host_tap, "cb")
        cohost_c, cohost_c_tap = await joined(c, event_id, host_tap, "cc")
        source_ids = {}
        for member, tap in ((cohost_c, cohost_c_tap), (cohost_b, cohost_b_tap)):
            source_ids[member.user_id] = (await make_cohost(host, host_tap, member, tap))["source_id"]
        assert len(set(source_ids.values())) == 2, source_ids
        await send(host, {"type": "broadcast_message", "message": "before the failover"})
        for tap in (tap_b, tap_c):
            await tap.wait_text("message_broadcast", pred=lambda m: m["message"] == "before the failover")
        for i in range(10):
            await host.send(media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960))
        await tap_b.wait_count(is_media(), 10, what="speech before the failover")

        before = {tap.name: len(tap) for tap in (tap_b, tap_c, cohost_b_tap, cohost_c_tap)}
        a.kill()
        host2, link2 = await resume_host(c, host_id)
        resumed_at = asyncio.get_running_loop().time()
        assert link2["event_id"] == event_id and link2["resumed"] is True, link2
        host2_tap = Tap(host2, "host on c")
        await host2_tap.wait_text("chat_history", pred=lambda m: [x["message"] for x in m["messages"]] == ["before the failover"])

        # The listeners kept their sockets, and hear the host again within 2 s of the reconnect.
        marks = [len(tap_b), len(tap_c)]
        spoken = []

        async def speak():
            seq = 100
            while True:
                frame = media(KIND_OPUS, SPEECH[seq % len(SPEECH)], seq=seq, ts=seq * 960)
                spoken.append(frame)
                await host2.send(frame)
                seq += 1
                await asyncio.sleep(0.02)
        speaker = asyncio.create_task(speak())
        for tap, mark in zip((tap_b, tap_c), marks):
            await tap.wait(is_media(), timeout=5, start=mark, what="the host's voice after the failover")
        heard = asyncio.get_running_loop().time() - resumed_at
        speaker.cancel()
        print(f"edge listeners heard the host {heard:.3f} s after it resumed")
        assert heard < 2.0, f"the edge listeners heard the host {heard:.2f} s after it resumed"
        for tap in (tap_b, tap_c):
            assert not tap.closed, (tap.name, tap.close_code)
        # One event: its directory entry names node c now, on every live node.
        for node in (b, c):
            assert http_json(node, f"/api/streams/{event_id}")["origin_node"] == "c"
        # Each co-host is one again with its own source id, as everyone sees it: the listeners and
        # the co-hosts themselves, on the edge and on the new origin. The edges re-announce their
        # clients one node after the other, so a client may miss another's `cohost_joined`; the
        # list names them all, and nothing after the death ever names another id.
        def cohost_ids(plist):
            return {p["user_id"]: p["source_id"] for p in plist["participants"] if p["role"] == "cohost"}
        for tap in (tap_b, tap_c, cohost_b_tap, cohost_c_tap):
            await tap.wait_text("participant_list", timeout=10, start=before[tap.name], pred=lambda m: cohost_ids(m) == source_ids)
            for m in tap.texts(before[tap.name]):
                if m["type"] == "cohost_joined":
                    assert m["source_id"] == source_ids[m["user_id"]], (tap.name, m, source_ids)
                if m["type"] == "participant_list":
                    assert cohost_ids(m).items() <= source_ids.items(), (tap.name, m, source_ids)
            assert any(m["user_id"] in source_ids for m in tap.texts(before[tap.name], type_="cohost_joined")), tap.name
        await close_all(host2, on_b.ws, on_c.ws, cohost_b.ws, cohost_c.ws)
    run(scenario(), 90)


def test_a_screen_share_resumes_on_another_node_with_its_codec_fields(start_server):
    """Kill the origin during a screen share: the event resumes on node c in screen mode with the
    same codec fields (`stream_state.screen`) for the host, a new joiner on the new origin and on
    an edge, and the edge's listener, who kept its socket, is never told of another screen, all
    before the host sends `switching_to_screen_sharing` again."""
    a, b, c = fresh_nodes(start_server, "a", "b", "c")
    host_id = uid("host")
    config = {"codec": "vp8", "width": 1280, "height": 720, "description": "AAECAw=="}

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c, host_id=host_id)
        on_b, tap_b = await joined(b, event_id, host_tap, "vb")
        await send(host, {"type": "switching_to_screen_sharing", "stream": "screen", **config})
        await tap_b.wait_text("stream_mode_changed", pred=lambda m: m["mode"] == "screen")
        early = await join(c, event_id, uid("early"))
        assert early.state["mode"] == "screen" and early.state["screen"] == config, early.state
        mark = len(tap_b)

        a.kill()
        host2, link2 = await resume_host(c, host_id)
        assert link2["event_id"] == event_id and link2["resumed"] is True and link2["mode"] == "screen", link2
        host2_tap = Tap(host2, "host on c")
        i = await host2_tap.wait_text("stream_state")
        assert host2_tap.frames[i][1]["mode"] == "screen" and host2_tap.frames[i][1]["screen"] == config, host2_tap.frames[i][1]
        # Once b's link is up again (a chat through it), its listener has the origin's state.
        await send(host2, {"type": "broadcast_message", "message": "after the failover"})
        await tap_b.wait_text("message_broadcast", timeout=10, start=mark, pred=lambda m: m["message"] == "after the failover")
        assert [s["screen"] for s in tap_b.texts(mark, type_="stream_state")] in ([], [config]), tap_b.texts(mark)
        assert not tap_b.texts(mark, type_="stream_mode_changed"), tap_b.texts(mark)
        for node in (c, b):
            late = await join(node, event_id, uid("late"))
            assert late.state["mode"] == "screen" and late.state["screen"] == config, (node.http, late.state)
            await close_all(late.ws)
        await close_all(host2, on_b.ws, early.ws)
    run(scenario(), 90)


def test_the_origin_dies_and_the_host_never_comes_back_every_nodes_listeners_get_stream_ended(start_server):
    """As on one node: after the host's grace period, `stream_ended` and 1000 for the listeners
    of every surviving node, and the event is recorded as ended."""
    database = fresh_database(URL)
    nodes = {}
    for name in ("a", "b"):
        port = free_port()
        nodes[name] = start_server("--database", database, "--node-url", f"http://127.0.0.1:{port}", "--cluster-secret",
                                   CLUSTER_SECRET, "--node-id", name, "--host-grace", "2", port_flag=str(port))
    a, b = nodes["a"], nodes["b"]

    async def scenario():
        host, event_id, host_tap = await live_on(a, b)
        on_b, tap_b = await joined(b, event_id, host_tap, "lb")
        a.kill()
        # Node a drops out after 7-9 s; the grace (2 s) runs from then.
        i = await tap_b.wait_text("stream_ended", timeout=20)
        assert tap_b.frames[i][1]["message"] == "The host disconnected and did not come back", tap_b.frames[i][1]
        assert await closed_code(tap_b) == 1000
        await asyncio.to_thread(wait_for, lambda: http_json(b, f"/api/streams/{event_id}")["status"] == "ended", 5,
                                "the event recorded as ended")
        await close_all(host)
    run(scenario(), 60)


def test_an_edge_node_dies_and_the_others_are_unaffected(start_server):
    a, b, c = fresh_nodes(start_server, "a", "b", "c")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c)
        on_a, tap_a = await joined(a, event_id, host_tap, "la")
        on_b, _ = await joined(b, event_id, host_tap, "lb")
        on_c, tap_c = await joined(c, event_id, host_tap, "lc")
        b.kill()
        # The origin counts b's listener out once the link's grace (5 s) is over.
        await host_tap.wait_text("participant_left", timeout=10, pred=lambda m: m["user_id"] == on_b.user_id)
        marks = [len(tap_a), len(tap_c)]
        frames = [media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960) for i in range(20)]
        for frame in frames:
            await host.send(frame)
        await sync_point(host, tap_a, tap_c)
        for tap, mark in zip((tap_a, tap_c), marks):
            assert relayed_audio(tap, mark) == [as_relayed(f, HOST_SOURCE_ID) for f in frames], tap.name
            assert not tap.closed
        await close_all(host, on_a.ws, on_c.ws)
    run(scenario(), 60)


def test_a_mixed_listener_on_an_edge_hears_the_origins_mix(start_server):
    """`?audio=mixed` on an edge: the origin's one encoding of the mix comes down the link once
    and reaches the edge's mixed listeners as source 0; its ordinary listeners get the host's own
    stream and no mix."""
    from test_mix import join_mixed
    a, b = fresh_nodes(start_server, "a", "b")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b)
        mixed = await join_mixed(b, event_id, uid("mixed"))
        mixed_tap = Tap(mixed.ws, "mixed on b")
        plain, plain_tap = await joined(b, event_id, host_tap, "plain")
        for i in range(100):
            await host.send(media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960))
            await asyncio.sleep(0.02)
        await mixed_tap.wait_count(is_media(lambda f: f.source == 0), 40, timeout=5, what="mix frames")
        await sync_point(host, mixed_tap, plain_tap)
        assert {f.source for f in mixed_tap.media()} == {0}, "a mixed listener got a speaker's own stream"
        assert {f.source for f in plain_tap.media()} == {HOST_SOURCE_ID}, "an ordinary listener got the mix"
        assert len(plain_tap.media()) == 100
        await close_all(host, mixed.ws, plain.ws)
    run(scenario())


def test_an_origin_that_never_answers_is_given_up_and_tried_again(start_server):
    """A link whose origin accepts the connection but never answers (a partition, a machine gone
    without a reset) is given up after 3 s and opened again, rather than holding the edge."""
    async def scenario():
        accepted = []

        async def hold(reader, writer):
            accepted.append(asyncio.get_running_loop().time())
            await reader.read()  # never answers; the edge gives up and closes
            writer.close()
        blackhole = await asyncio.start_server(hold, "127.0.0.1", 0)
        blackhole_port = blackhole.sockets[0].getsockname()[1]
        database = fresh_database(URL)
        a_port = free_port()
        a = await asyncio.to_thread(
            start_server, "--database", database, "--node-url", f"http://127.0.0.1:{blackhole_port}", "--cluster-secret",
            CLUSTER_SECRET, "--node-id", "a", port_flag=str(a_port))
        b = (await asyncio.to_thread(start_nodes, start_server, database, ["b"]))["b"]
        host, event_id, _ = await live_on(a, b)
        # The listener waits for its stream_state while b tries to reach a at its (silent) URL.
        listener = asyncio.ensure_future(join(b, event_id, uid("lb")))
        deadline = asyncio.get_running_loop().time() + 12
        while len(accepted) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert len(accepted) >= 3, f"{len(accepted)} attempts in 12 s"
        gaps = [later - earlier for earlier, later in zip(accepted, accepted[1:])]
        assert all(2.5 <= gap <= 5.0 for gap in gaps[:2]), gaps
        listener.cancel()
        blackhole.close()
        await close_all(host)
    run(scenario(), 60)


def test_the_origin_stops_and_hands_its_event_over(start_server):
    """PROTOCOL.md 8, "stops or dies": an origin stopped with SIGTERM does not end its event. Its
    own connections get `server_shutdown` and 1001; the listener on an edge keeps its socket and
    gets nothing of the kind; the host resumes on another node at once (the stopped node left the
    cluster), and the edge's listener hears it again."""
    a, b, c = fresh_nodes(start_server, "a", "b", "c")
    host_id = uid("host")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b, c, host_id=host_id)
        on_a, tap_a = await joined(a, event_id, host_tap, "la")
        on_b, tap_b = await joined(b, event_id, host_tap, "lb")
        await send(host, {"type": "broadcast_message", "message": "before the stop"})
        await tap_b.wait_text("message_broadcast", pred=lambda m: m["message"] == "before the stop")
        mark_b = len(tap_b)
        await asyncio.to_thread(a.stop)
        for tap in (host_tap, tap_a):
            await tap.wait_text("server_shutdown", timeout=5)
            assert await closed_code(tap) == 1001, tap.name
        # Until the host resumes it, a join on a node without an edge for it is told to retry.
        refusal = await expect_refusal(c.ws(join_path(event_id, uid("early"))), "server_busy", 1013)
        assert refusal["details"]["reason"] == "no_origin", refusal
        host2, link2 = await resume_host(c, host_id, within=5)
        assert link2["event_id"] == event_id and link2["resumed"] is True, link2
        await Tap(host2, "host on c").wait_text("chat_history", pred=lambda m: [x["message"] for x in m["messages"]] == ["before the stop"])
        for i in range(40):
            await host2.send(media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960))
            await asyncio.sleep(0.02)
        await tap_b.wait(is_media(lambda f: f.source == HOST_SOURCE_ID), timeout=5, start=mark_b, what="the host after the hand-over")
        assert not tap_b.closed
        assert not [f for f in tap_b.texts(mark_b) if f["type"] in ("server_shutdown", "stream_ended")], tap_b.texts(mark_b)
        assert http_json(b, f"/api/streams/{event_id}")["origin_node"] == "c"
        await close_all(host2, on_b.ws)
    run(scenario(), 60)


def test_every_node_knows_an_event_as_soon_as_its_host_does(start_server):
    """The origin row is written before the host hears `stream_link` (`ClusterNode.claim`): a
    join on another node with the id straight from `stream_link` is served, and that node names
    the origin, with no wait for the directory's coalesced publication."""
    a, b = fresh_nodes(start_server, "a", "b")

    async def scenario():
        for _ in range(3):
            host, link = await go_live(a, uid("host"), "Host")
            event_id = link["event_id"]
            assert http_json(b, f"/api/streams/{event_id}")["origin_node"] == "a"
            member = await join(b, event_id, uid("early"))
            assert member.state["event_id"] == event_id
            await send(host, {"type": "stream_ended"})
            await close_all(host, member.ws)
    run(scenario())


def test_http_players_on_an_edge_get_the_origins_one_encoding_are_counted_and_end_cleanly(start_server):
    """`GET /listen/` on an edge (PROTOCOL.md 8 and 9): the player is a listener of the event,
    counted and listed at the origin; its Ogg stream carries the very Opus packets the origin's
    own players get (one encoding of the mix, down the link once); it hears the host and ends
    cleanly with the event."""
    from test_http_listen import FFMPEG, listen, ogg_pages, send_pcm, tone_windows
    from test_mix import TONE_440
    a, b = fresh_nodes(start_server, "a", "b")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b)
        path = f"/listen/{event_id}"
        on_origin = await listen(a, path)
        on_edge = await listen(b, path)
        fan = uid("fan")
        verified_on_edge = await listen(b, f"{path}?token={token(fan, 'Fan')}")
        for stream in (on_origin, on_edge, verified_on_edge):
            assert stream.status == 200 and stream.headers["content-type"] == "audio/ogg", (stream.status, stream.headers)
        await host_tap.wait_text("participant_count", timeout=10, pred=lambda m: m["count"] == 3)
        index = await host_tap.wait_text("participant_list", timeout=10, pred=lambda m: len(m["participants"]) == 4)
        listed = {p["user_id"]: p for p in host_tap.frames[index][1]["participants"]}
        assert listed[fan]["role"] == "listener" and listed[fan]["verified"] is True, listed
        cascade = http_json(a, "/api/cluster")["cascade"]
        assert [(e["node_id"], e["clients"]) for o in cascade["origins"] for e in o["edges"]] == [("b", 2)], cascade

        await send_pcm(host, TONE_440, 100)
        have = len(on_edge.chunks)
        assert await asyncio.to_thread(on_edge.wait_chunks, have + 4, 5) >= have + 4, "the edge's pages stopped coming"
        await send(host, {"type": "stream_ended", "event_id": event_id})
        for stream in (on_origin, on_edge, verified_on_edge):
            assert await asyncio.to_thread(stream.eof.wait, 10), "a stream did not end"
            assert stream.error is None and stream.clean_end, (stream.error, stream.clean_end)
        await close_all(host)

        origin_pages, edge_pages = ogg_pages(on_origin.body), ogg_pages(on_edge.body)
        assert edge_pages[0].packets[0].startswith(b"OpusHead") and edge_pages[1].packets[0].startswith(b"OpusTags")
        assert edge_pages[-1].flags == 0x04, "no end-of-stream page on the edge"
        origin_packets = [p for page in origin_pages[2:] for p in page.packets]
        edge_packets = [p for page in edge_pages[2:] for p in page.packets]
        # One encoding: the edge's packets are a run of the origin's, byte for byte (the last few
        # may be cut where each stream ended).
        run_ = edge_packets[:-5]
        assert len(run_) > 100, len(edge_packets)
        starts = [i for i in range(len(origin_packets)) if origin_packets[i:i + len(run_)] == run_]
        assert starts, "the edge's Opus packets are not the origin's"
        # It heard the tone, as long as it was sent.
        decoded = await asyncio.to_thread(subprocess.run, [FFMPEG, "-v", "error", "-i", "pipe:", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                                          input=on_edge.body, capture_output=True, timeout=30)
        assert decoded.returncode == 0, decoded.stderr
        heard = tone_windows(np.frombuffer(decoded.stdout, dtype="<i2").astype(np.float64)).sum() * 0.02
        assert abs(heard - 2.0) <= 0.1, f"the edge's player heard the tone for {heard:.2f} s of 2.00 s"
        for stream in (on_origin, on_edge, verified_on_edge):
            stream.close()
    run(scenario(), 60)


def test_whep_players_on_an_edge_hear_the_host_and_a_cohost_by_track_and_are_counted(start_server):
    """WHEP on an edge: a mix player hears the origin's mix; a per-speaker player
    (`?audio=speakers`) hears the host and an edge co-host on two tracks named by their source
    ids; both are listeners at the origin, and a hang-up on the edge counts them out."""
    import webrtc_peer as wp
    from test_mix import TONE_440, TONE_660, PCMPacer
    from test_webrtc import check_answer, hears_two_speakers, tone_powers
    a, b = fresh_nodes(start_server, "a", "b")

    async def scenario():
        host, event_id, host_tap = await live_on(a, b)
        pacer = PCMPacer(host, TONE_440)
        mixed, speakers = wp.WhepListener(), wp.WhepSpeakersListener(2)
        cohost_pacer = None
        try:
            location = check_answer(await mixed.negotiate(b.port, f"/whep/{event_id}"), f"/whep/{event_id}/")
            check_answer(await speakers.negotiate(b.port, f"/whep/{event_id}?audio=speakers"), f"/whep/{event_id}/")
            await mixed.connected(10)
            await speakers.connected(10)
            await host_tap.wait_text("participant_count", timeout=10, pred=lambda m: m["count"] == 2)
            audio = await mixed.collector("audio")
            await audio.wait_count(100, timeout=10, what="decoded audio frames on the edge")
            p440, p660, off = tone_powers(np.concatenate([wp.mono_samples(f) for f in audio.frames[25:100]]))
            assert p440 > 100 * off, (p440, off)

            # A co-host on the edge: its audio goes up the link and comes back to the edge's player.
            member, member_tap = await joined(b, event_id, host_tap, "cohost")
            sid = (await make_cohost(host, host_tap, member, member_tap))["source_id"]
            cohost_pacer = PCMPacer(member.ws, TONE_660, stereo=True)
            await hears_two_speakers(speakers, HOST_SOURCE_ID, sid)

            mark = len(host_tap)
            resp = await wp.request(b.port, "DELETE", location)
            assert resp.status == 200, resp
            # Left: the per-speaker player and the co-host.
            await host_tap.wait_text("participant_count", start=mark, timeout=10, pred=lambda m: m["count"] == 2)
        finally:
            await pacer.stop()
            if cohost_pacer:
                await cohost_pacer.stop()
            await mixed.close()
            await speakers.close()
        await close_all(host)
    run(scenario(), 90)
