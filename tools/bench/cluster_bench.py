#!/usr/bin/env python3
"""Several-nodes benchmark (PROTOCOL.md 8), on a PostgreSQL database you name:

- room change latency: two nodes on one database, a listening room with members on both; members
  on node A send `playback_changed` at a fixed rate, a member on node B watches. Per change it
  reports *stored → seen on B*: from the moment the sender's own node relays it back (a change is
  relayed only once stored) to its arrival on B, and *sent → seen on B*; p50/p99/max.
- chat throughput: one node, a live event whose host and listeners chat as fast as the store lets
  the server relay (chat waits until stored before it is relayed), on PostgreSQL and on SQLite.

    python3 tools/bench/cluster_bench.py --database postgres://postgres@127.0.0.1:5432/postgres \
        [--binary .build/release/airwave] [--rates 1 50] [--seconds 20] [--chat-messages 5000]

Every node gets a fresh database (CREATE DATABASE on the cluster of --database, dropped after).
"""
import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid

import websockets

SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
CLUSTER_SECRET = "benchmark-cluster-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(url):
    name = "airwave_bench_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return name, url.rsplit("/", 1)[0] + "/" + name


def drop_database(url, name):
    subprocess.run(["psql", url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


class Node:
    def __init__(self, binary, args, port=None):
        self.data = tempfile.mkdtemp(prefix="airwave-bench-")
        self.port = port or free_port()
        env = {**os.environ, "AIRWAVE_LOG_LEVEL": "info",
               # The sender is one client: lift the per-connection message rates.
               "AIRWAVE_CHAT_RATE": "100000", "AIRWAVE_CHAT_BURST": "100000",
               "AIRWAVE_CONTROL_RATE": "100000", "AIRWAVE_CONTROL_BURST": "100000"}
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", str(self.port), "--data-dir", self.data, "--jwt-secret", SECRET, *args],
            stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if re.search(r"address=http://", line):
                # Keep reading, or a full pipe would stall the node.
                threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
                return
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise SystemExit(f"node did not start: {binary} {' '.join(args)}")

    def ws(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def room_latency(a, b, rate, seconds):
    room = "bench-" + uuid.uuid4().hex[:8]
    sender = await websockets.connect(a.ws(f"/ws/session/{room}/?name=sender"), max_size=None)
    watcher = await websockets.connect(b.ws(f"/ws/session/{room}/?name=watcher"), max_size=None)
    for ws in (sender, watcher):
        assert json.loads(await ws.recv())["type"] == "room_state"
    sent, echoed, seen = {}, {}, {}
    total = int(rate * seconds)

    async def read(ws, into):
        while len(into) < total:
            msg = json.loads(await ws.recv())
            if msg["type"] == "playback_changed":
                into[msg["song_progress"]] = time.monotonic()

    readers = [asyncio.create_task(read(sender, echoed)), asyncio.create_task(read(watcher, seen))]
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[i] = time.monotonic()
        await sender.send(json.dumps({"type": "playback_changed", "song_progress": i, "paused": False}))
    await asyncio.wait_for(asyncio.gather(*readers), timeout=seconds + 30)
    await sender.close()
    await watcher.close()
    stored_to_seen = [(seen[i] - echoed[i]) * 1000 for i in range(total)]
    sent_to_seen = [(seen[i] - sent[i]) * 1000 for i in range(total)]
    return {
        "rate": rate, "changes": total,
        "stored_to_seen_ms": {p: round(percentile(stored_to_seen, p), 1) for p in (50, 99, 100)},
        "sent_to_seen_ms": {p: round(percentile(sent_to_seen, p), 1) for p in (50, 99, 100)},
    }


async def chat_throughput(node, messages, listeners):
    host = await websockets.connect(node.ws(f"/ws/stream/start/live/bench-host/?token={token(node)}"), max_size=None)
    link = json.loads(await host.recv())
    event_id = link["event_id"]
    members = []
    for n in range(listeners):
        ws = await websockets.connect(node.ws(f"/ws/stream/live/join/event/{event_id}/lis{n}/"), max_size=None)
        # Joined once the event said so: a message sent earlier would not be this listener's.
        assert json.loads(await ws.recv())["type"] == "stream_state"
        members.append(ws)
    received = 0

    async def count(ws):
        nonlocal received
        got = 0
        last = None
        while got < messages:
            try:
                msg = json.loads(await ws.recv())
            except websockets.ConnectionClosed as closed:
                raise SystemExit(f"a listener was closed after {got} of {messages} messages ({closed}); last frame: {last}")
            last = msg
            if msg["type"] == "message_broadcast":
                got += 1
                received += 1

    counters = [asyncio.create_task(count(ws)) for ws in members]
    start = time.monotonic()
    for i in range(messages):
        await host.send(json.dumps({"type": "broadcast_message", "message": f"m{i}"}))
    await asyncio.wait_for(asyncio.gather(*counters), timeout=300)
    took = time.monotonic() - start
    for ws in members + [host]:
        await ws.close()
    return {"messages": messages, "listeners": listeners, "seconds": round(took, 2),
            "stored_and_relayed_per_s": round(messages / took)}


def token(node):
    binary = node.proc.args[0]
    return subprocess.check_output([binary, "token", "--user-id", "bench-host", "--jwt-secret", SECRET], text=True).strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="postgres:// URL of a cluster where databases may be created")
    parser.add_argument("--binary", default=".build/release/airwave")
    parser.add_argument("--rates", type=float, nargs="*", default=[1, 50], help="room changes per second; none skips the rooms")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--chat-messages", type=int, default=3000)
    parser.add_argument("--chat-listeners", type=int, default=10)
    args = parser.parse_args()
    results = {"room_change_latency": [], "chat": {}}

    name, url = fresh_database(args.database)
    nodes = []
    try:
        for node_id in ("a", "b"):
            port = free_port()
            nodes.append(Node(args.binary, ["--database", url, "--node-url", f"http://127.0.0.1:{port}",
                                            "--cluster-secret", CLUSTER_SECRET, "--node-id", node_id], port=port))
        for rate in args.rates:
            results["room_change_latency"].append(asyncio.run(room_latency(nodes[0], nodes[1], rate, args.seconds)))
    finally:
        for node in nodes:
            node.stop()
        drop_database(args.database, name)

    for engine in ("sqlite", "postgresql"):
        name, url = fresh_database(args.database) if engine == "postgresql" else (None, None)
        node = Node(args.binary, ["--database", url] if url else [])
        try:
            results["chat"][engine] = asyncio.run(chat_throughput(node, args.chat_messages, args.chat_listeners))
        finally:
            node.stop()
            if name:
                drop_database(args.database, name)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
