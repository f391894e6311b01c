"""PROTOCOL.md 8 across real interfaces: three nodes, each in a network namespace of its own joined
to this one by a veth pair, share one PostgreSQL database that listens on the host side. Clients
reach every node at its own address; the nodes reach the database, and learn of each other's
changes, over the veths only; the nodes' links to each other (the cascade) are routed through this
namespace. Needs root (`ip netns`); tools/test runs as root on CI."""

import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import uuid

import pytest

from airwave_server import make_server, stop_all
from awtest import close_all, connect, go_live, http_json, recv_until, run, send, uid
from test_cluster import CLUSTER_SECRET, streams_until
from test_postgres import POSTGRES

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
]
NODES = 3
# Forwarding between the veths is on while the namespaces exist (and put back after).
FORWARDING = "/proc/sys/net/ipv4/ip_forward"


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces():
    """NODES namespaces; node i is 10.N.i.2, its veth's host side 10.N.i.1 (N random per run)."""
    tag = uuid.uuid4().hex[:5]
    net = random.randint(100, 250)
    made = []
    forwarding = None
    try:
        for i in range(NODES):
            ns, host_side, node_side = f"aw{tag}{i}", f"awh{tag}{i}", f"awn{tag}{i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "add", host_side, "type", "veth", "peer", "name", node_side)
            sh("ip", "link", "set", node_side, "netns", ns)
            sh("ip", "addr", "add", f"10.{net}.{i}.1/24", "dev", host_side)
            sh("ip", "link", "set", host_side, "up")
            # A default route through this side, so that the nodes reach each other (edge links)
            # through it, as across a router.
            for command in (["ip", "addr", "add", f"10.{net}.{i}.2/24", "dev", node_side], ["ip", "link", "set", node_side, "up"],
                            ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", f"10.{net}.{i}.1"]):
                sh("ip", "netns", "exec", ns, *command)
        with open(FORWARDING) as f:
            forwarding = f.read().strip()
        with open(FORWARDING, "w") as f:
            f.write("1")
        yield net, made
    finally:
        if forwarding is not None:
            with open(FORWARDING, "w") as f:
                f.write(forwarding)
        for ns in made:
            # Deleting a namespace deletes its end of the veth, and with it the pair.
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def reachable_cluster(namespaces):
    """A PostgreSQL of this test's own that listens on every address and trusts 10.N.0.0/16."""
    net, _ = namespaces
    folder = tempfile.mkdtemp(prefix="airwave-pg-")
    env = {**os.environ, "AIRWAVE_POSTGRES_TRUST": f"10.{net}.0.0/16"}
    url = subprocess.run([POSTGRES, "start", folder], check=True, capture_output=True, text=True, timeout=180, env=env).stdout.strip()
    yield url
    subprocess.run([POSTGRES, "stop", folder], capture_output=True, timeout=60)


def start_in_namespaces(nodes, net, names, database_url):
    """Node i in namespace i at 10.N.i.2:8000, reaching the database at the host side of its own
    veth; appended to `nodes` as each starts (so a failed start still stops the others)."""
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    for i, ns in enumerate(names):
        address = f"10.{net}.{i}.2"
        database = f"postgres://postgres@10.{net}.{i}.1:{port}/postgres"
        nodes.append(make_server(
            args=("--host", "0.0.0.0", "--database", database, "--node-url", f"http://{address}:8000",
                  "--cluster-secret", CLUSTER_SECRET, "--node-id", f"n{i}"),
            port_flag="8000", command_prefix=("ip", "netns", "exec", ns), address=address))


def test_nodes_in_their_own_namespaces_share_directory_and_rooms(namespaces, reachable_cluster):
    net, names = namespaces
    nodes = []
    try:
        start_in_namespaces(nodes, net, names, reachable_cluster)
        listed = http_json(nodes[2], "/api/cluster")["nodes"]
        assert [(n["node_id"], n["url"]) for n in listed] == [(f"n{i}", f"http://10.{net}.{i}.2:8000") for i in range(NODES)]

        async def scenario():
            directory = await connect(nodes[2].ws("/ws/active-streams/"))
            await recv_until(directory, "active_streams", 5)
            host, link = await go_live(nodes[0])
            took = await streams_until(directory, lambda s: [e["event_id"] for e in s] == [link["event_id"]], 5)
            assert took < 2.0, f"node n2's directory showed n0's event after {took:.2f} s"

            room = uid("room")
            members = []
            for node in nodes:
                ws = await connect(node.ws(f"/ws/session/{room}/?name=m"))
                await recv_until(ws, "room_state", 5)
                members.append(ws)
            for i, ws in enumerate(members):
                await send(ws, {"type": "song_queued", "song_id": f"song-{i}"})
            seen = []
            for ws in members:
                order = []
                while len(order) < NODES:
                    msg, _ = await recv_until(ws, "song_queued", 5)
                    order.append(msg["song_id"])
                seen.append(order)
            assert seen[0] == seen[1] == seen[2] and sorted(seen[0]) == [f"song-{i}" for i in range(NODES)], seen

            await send(host, {"type": "stream_ended"})
            took = await streams_until(directory, lambda s: s == [], 5)
            assert took < 2.0
            await close_all(directory, host, *members)
        run(scenario())
    finally:
        stop_all(nodes)


def test_one_event_across_nodes_in_their_own_namespaces_and_its_origin_dies(namespaces, reachable_cluster):
    """The cascade over real interfaces (issue 16): host on n0, listeners on n0, n1 and n2 get every
    frame in order; a co-host on n2 is heard on n0 and n1; chat from n1 reaches everyone once. Then
    n0 dies during speech: the host resumes on n2 and n1's listener, still connected, hears it
    again within 2 s of the resume."""
    from test_cascade import joined, live_on, relayed_audio, resume_host
    from test_media import HOST_SOURCE_ID, KIND_OPUS, SPEECH, as_relayed, is_media, make_cohost, media, sync_point
    net, names = namespaces
    nodes = []
    try:
        start_in_namespaces(nodes, net, names, reachable_cluster)
        n0, n1, n2 = nodes
        host_id = uid("host")

        async def scenario():
            host, event_id, host_tap = await live_on(n0, n1, n2, host_id=host_id)
            on0, tap0 = await joined(n0, event_id, host_tap, "l0")
            on1, tap1 = await joined(n1, event_id, host_tap, "l1")
            on2, tap2 = await joined(n2, event_id, host_tap, "l2")
            taps = [tap0, tap1, tap2]
            sent = [media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960) for i in range(50)]
            for frame in sent:
                await host.send(frame)
            await sync_point(host, *taps)
            for tap in taps:
                assert relayed_audio(tap) == [as_relayed(f, HOST_SOURCE_ID) for f in sent], tap.name

            marks = [len(t) for t in [host_tap] + taps]
            await send(on1.ws, {"type": "broadcast_message", "message": "from n1"})
            for tap, start in zip([host_tap] + taps, marks):
                await tap.wait_text("message_broadcast", start=start, pred=lambda m: m["message"] == "from n1")
            await sync_point(host, *taps)
            for tap, start in zip([host_tap] + taps, marks):
                assert len([f for f in tap.texts(start, type_="message_broadcast") if f["message"] == "from n1"]) == 1, tap.name

            source = (await make_cohost(host, host_tap, on2, tap2))["source_id"]
            marks = [len(t) for t in taps]
            spoken = [media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960) for i in range(20)]
            for frame in spoken:
                await on2.ws.send(frame)
            for tap, mark in zip((tap0, tap1), marks):
                await tap.wait(lambda f: f == as_relayed(spoken[-1], source), timeout=5, start=mark, what="the co-host's last frame")
                assert relayed_audio(tap, mark) == [as_relayed(f, source) for f in spoken], tap.name

            n0.kill()
            host2, link2 = await resume_host(n2, host_id)
            resumed = asyncio.get_running_loop().time()
            assert link2["event_id"] == event_id and link2["resumed"] is True, link2
            mark = len(tap1)

            async def speak():
                seq = 100
                while True:
                    await host2.send(media(KIND_OPUS, SPEECH[seq % len(SPEECH)], seq=seq, ts=seq * 960))
                    seq += 1
                    await asyncio.sleep(0.02)
            speaker = asyncio.create_task(speak())
            await tap1.wait(is_media(lambda f: f.source == HOST_SOURCE_ID), timeout=5, start=mark, what="the host after the failover")
            heard = asyncio.get_running_loop().time() - resumed
            speaker.cancel()
            assert heard < 2.0, f"n1's listener heard the host {heard:.2f} s after the resume"
            assert not tap1.closed
            await close_all(host2, on1.ws, on2.ws, on0.ws)
        run(scenario(), 120)
    finally:
        stop_all(nodes)
