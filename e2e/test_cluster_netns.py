"""PROTOCOL.md 8 across real interfaces: three nodes, each in a network namespace of its own joined
to this one by a veth pair, share one PostgreSQL database that listens on the host side. Clients
reach every node at its own address; the nodes reach the database, and learn of each other's
changes, over the veths only. Needs root (`ip netns`); tools/test runs as root on CI."""

import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
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


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces():
    """NODES namespaces; node i is 10.N.i.2, its veth's host side 10.N.i.1 (N random per run)."""
    tag = uuid.uuid4().hex[:5]
    net = random.randint(100, 250)
    made = []
    try:
        for i in range(NODES):
            ns, host_side, node_side = f"aw{tag}{i}", f"awh{tag}{i}", f"awn{tag}{i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "add", host_side, "type", "veth", "peer", "name", node_side)
            sh("ip", "link", "set", node_side, "netns", ns)
            sh("ip", "addr", "add", f"10.{net}.{i}.1/24", "dev", host_side)
            sh("ip", "link", "set", host_side, "up")
            for command in (["ip", "addr", "add", f"10.{net}.{i}.2/24", "dev", node_side], ["ip", "link", "set", node_side, "up"],
                            ["ip", "link", "set", "lo", "up"]):
                sh("ip", "netns", "exec", ns, *command)
        yield net, made
    finally:
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


def test_nodes_in_their_own_namespaces_share_directory_and_rooms(namespaces, reachable_cluster):
    net, names = namespaces
    port = reachable_cluster.rsplit(":", 1)[1].split("/")[0]
    nodes = []
    try:
        for i, ns in enumerate(names):
            address = f"10.{net}.{i}.2"
            # Each node reaches the database at the host side of its own veth.
            database = f"postgres://postgres@10.{net}.{i}.1:{port}/postgres"
            nodes.append(make_server(
                args=("--host", "0.0.0.0", "--database", database, "--node-url", f"http://{address}:8000",
                      "--cluster-secret", CLUSTER_SECRET, "--node-id", f"n{i}"),
                port_flag="8000", command_prefix=("ip", "netns", "exec", ns), address=address))
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
