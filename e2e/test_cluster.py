"""PROTOCOL.md 8: several `airwave serve` processes on one PostgreSQL database form one service.
Nodes list each other in GET /api/cluster (a dead one drops out within 10 s), every node's
directory shows every node's events within 2 s of a change, GET /api/streams/{id} names the
origin, and the configuration errors of section 8 are one line and exit 2. tools/test starts the
PostgreSQL cluster (AIRWAVE_TEST_POSTGRES_URL)."""

import asyncio
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import websockets

from awtest import (close_all, connect, expect_refusal, go_live, host_path, http_get, http_json, join, join_path,
                    recv_until, run, send, token, uid)
from conftest import run_cli
from test_postgres import POSTGRES, URL, fresh_database, private_cluster, wait_for  # noqa: F401 (a fixture)
from test_rooms import enter, get_room

pytestmark = pytest.mark.skipif(not URL, reason="AIRWAVE_TEST_POSTGRES_URL is not set (tools/test sets it)")
CLUSTER_SECRET = "cluster-secret-of-the-e2e-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(start_server, database, names):
    """One node per name on `database`, each told its own URL (so its port is chosen first)."""
    nodes = {}
    for name in names:
        port = free_port()
        nodes[name] = start_server("--database", database, "--node-url", f"http://127.0.0.1:{port}",
                                   "--cluster-secret", CLUSTER_SECRET, "--node-id", name, port_flag=str(port))
    return nodes


def cluster_ids(node):
    return [n["node_id"] for n in http_json(node, "/api/cluster")["nodes"]]


async def streams_until(ws, pred, timeout):
    """Reads the directory until `pred(streams)` holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - started)
        assert left > 0, f"the directory did not change as expected within {timeout} s"
        msg, _ = await recv_until(ws, "active_streams", left)
        if pred(msg["streams"]):
            return time.monotonic() - started


def test_three_nodes_share_the_directory_and_name_the_origin(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b", "c"])
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    # Each node writes its heartbeat before it serves.
    assert cluster_ids(c) == ["a", "b", "c"]
    entry = next(n for n in http_json(a, "/api/cluster")["nodes"] if n["node_id"] == "b")
    assert entry["url"] == b.http and isinstance(entry["events"], int) and isinstance(entry["connections"], int)
    assert entry["last_seen"].endswith("Z")

    async def scenario():
        directory = await connect(c.ws("/ws/active-streams/"))
        first, _ = await recv_until(directory, "active_streams", 5)
        assert first["streams"] == []

        host, link = await go_live(a, username="Ada")
        event_id = link["event_id"]
        took = await streams_until(directory, lambda s: [e["event_id"] for e in s] == [event_id], 5)
        assert took < 2.0, f"the directory on node c showed the event after {took:.2f} s"

        wait_for(lambda: http_json(b, "/api/streams")["streams"] != [], 2, "the event in b's directory")
        listed = http_json(b, "/api/streams")["streams"]
        assert [(e["event_id"], e["host_username"], e["status"]) for e in listed] == [(event_id, "Ada", "active")]
        info = http_json(b, f"/api/streams/{event_id}")
        assert info["origin_node"] == "a" and info["status"] == "active", info
        assert http_json(a, f"/api/streams/{event_id}")["origin_node"] == "a"

        await send(host, {"type": "stream_ended"})
        took = await streams_until(directory, lambda s: s == [], 5)
        assert took < 2.0, f"the directory on node c dropped the event after {took:.2f} s"
        assert http_json(b, f"/api/streams/{event_id}")["status"] == "ended"
        await close_all(host, directory)
    run(scenario())

    # A node that dies without a word drops out of every node's list within 10 s.
    b.kill()
    killed = time.monotonic()
    wait_for(lambda: cluster_ids(a) == ["a", "c"], 12, "node b leaving /api/cluster")
    assert time.monotonic() - killed < 10.0
    # One that stops cleanly leaves at once.
    c.stop()
    assert cluster_ids(a) == ["a"]


def test_a_dead_nodes_events_leave_the_directory_and_a_restarted_node_ends_its_own(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b"])
    a, b = nodes["a"], nodes["b"]

    async def live_on_b():
        host, link = await go_live(b)
        return host, link["event_id"]
    host, event_id = run(live_on_b())
    wait_for(lambda: [e["event_id"] for e in http_json(a, "/api/streams")["streams"]] == [event_id], 3, "the event on node a")

    b.kill()
    wait_for(lambda: http_json(a, "/api/streams")["streams"] == [], 12, "the dead node's event leaving the directory")
    # Node b comes back with the same id: the event its crash left live is ended, a's are not.
    async def live_on_a():
        ws, link = await go_live(a)
        return ws, link["event_id"]
    a_host, a_event = run(live_on_a())
    start_server("--database", database, "--node-url", f"http://127.0.0.1:{b.port}", "--cluster-secret", CLUSTER_SECRET,
                 "--node-id", "b", port_flag=str(b.port), data_dir=b.data_dir)
    assert http_json(a, f"/api/streams/{event_id}")["status"] == "ended"
    assert http_json(a, f"/api/streams/{a_event}")["status"] == "active"
    run(close_all(a_host))


def test_a_node_keeps_its_id_in_the_data_folder(start_server):
    database = fresh_database(URL)
    port = free_port()
    args = ("--database", database, "--node-url", f"http://127.0.0.1:{port}", "--cluster-secret", CLUSTER_SECRET)
    first = start_server(*args, port_flag=str(port))
    (node_id,) = cluster_ids(first)
    assert node_id.startswith("node-")
    first.stop()
    again = start_server(*args, port_flag=str(port), data_dir=first.data_dir)
    assert cluster_ids(again) == [node_id]


@pytest.mark.parametrize("args, says", [
    (["--node-url", "http://127.0.0.1:9", "--cluster-secret", "short"], "--cluster-secret must be at least 32 bytes"),
    (["--node-url", "http://127.0.0.1:9"], "--node-url needs --cluster-secret"),
    (["--cluster-secret", CLUSTER_SECRET], "need --node-url"),
    (["--node-url", "not a url", "--cluster-secret", CLUSTER_SECRET], "--node-url must be"),
    (["--node-url", "http://127.0.0.1:9", "--cluster-secret", CLUSTER_SECRET, "--node-id", "no spaces"], "--node-id must be"),
], ids=["short-secret", "no-secret", "secret-alone", "bad-url", "bad-id"])
def test_cluster_configuration_errors_are_one_line_and_exit_2(args, says):
    with tempfile.TemporaryDirectory() as data:
        result = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", "x" * 32,
                          "--database", URL, *args], timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_node_url_with_sqlite_is_a_configuration_error():
    with tempfile.TemporaryDirectory() as data:
        result = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", "x" * 32,
                          "--node-url", "http://127.0.0.1:9", "--cluster-secret", CLUSTER_SECRET], timeout=60)
        assert not os.path.exists(os.path.join(data, "airwave.sqlite")), "nothing is created before the error"
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--node-url needs --database postgres://" in lines[0], result.stderr


def test_the_database_restarted_under_load(start_server, private_cluster):
    """Rooms busy on two nodes and an event chatting while PostgreSQL restarts: nobody crashes,
    what is sent meanwhile gets `server_busy` (rooms) or waits (event chat), every message a member
    saw is stored afterwards, in the order members saw it, and service resumes by itself."""
    folder, url = private_cluster
    nodes = start_nodes(start_server, url, ["a", "b"])
    a, b = nodes["a"], nodes["b"]
    room_id = uid("room")
    phase = {"name": "before"}

    async def scenario():
        ma = await enter(a, room_id, name="Ann")
        mb = await enter(b, room_id, name="Bob")
        host, link = await go_live(a)
        event_id = link["event_id"]
        listener = await join(a, event_id, uid("lis"))
        seen = {"ma": [], "mb": [], "listener": []}
        errors = []
        stop = asyncio.Event()

        async def read(name, ws, kind):
            while True:
                try:
                    msg = json.loads(await ws.recv())
                except websockets.ConnectionClosed:
                    return
                if msg["type"] == kind:
                    seen[name].append((msg["message"], phase["name"]))
                elif msg["type"] == "error":
                    errors.append((name, msg["code"], phase["name"]))

        last = {}

        async def chatter(ws, kind, prefix):
            i = 0
            while not stop.is_set():
                message = f"{prefix}-{phase['name']}-{i}"
                last[prefix] = message
                await send(ws, {"type": kind, "message": message} if kind == "broadcast_message"
                           else {"type": kind, "name": prefix, "message": message})
                i += 1
                await asyncio.sleep(0.25)  # within the chat rate (5/s)

        readers = [asyncio.create_task(read("ma", ma.ws, "chat_message")), asyncio.create_task(read("mb", mb.ws, "chat_message")),
                   asyncio.create_task(read("listener", listener.ws, "message_broadcast")),
                   asyncio.create_task(read("host", host, "none"))]
        senders = [asyncio.create_task(chatter(ma.ws, "chat_message", "ann")), asyncio.create_task(chatter(mb.ws, "chat_message", "bob")),
                   asyncio.create_task(chatter(host, "broadcast_message", "host"))]
        await asyncio.sleep(1.5)

        phase["name"] = "down"
        await asyncio.to_thread(subprocess.run, [POSTGRES, "pause", folder], check=True, capture_output=True, timeout=60)
        for node in (a, b):
            await asyncio.to_thread(wait_for, lambda: http_get(node, "/readyz")[0] == 503, 15, "readyz 503")
        await asyncio.sleep(3)

        phase["name"] = "back"
        await asyncio.to_thread(subprocess.run, [POSTGRES, "resume", folder], check=True, capture_output=True, timeout=60)
        for node in (a, b):
            await asyncio.to_thread(wait_for, lambda: http_get(node, "/readyz")[0] == 200, 30, "readyz 200")
        # Service resumes by itself: messages sent now reach members on both nodes.
        deadline = time.monotonic() + 30
        while not all(any(p == "back" for _, p in seen[name]) for name in ("ma", "mb", "listener")):
            assert time.monotonic() < deadline, f"no message after the restart reached everyone: {seen}"
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*senders)
        # Every member sees the last messages (sent after the restart, so none was refused).
        expected = {"ma": [last["ann"], last["bob"]], "mb": [last["ann"], last["bob"]], "listener": [last["host"]]}
        deadline = time.monotonic() + 20
        while not all(m in [x for x, _ in seen[name]] for name, ms in expected.items() for m in ms):
            assert time.monotonic() < deadline, f"the last messages did not reach everyone: {expected} {seen}"
            await asyncio.sleep(0.1)
        await close_all(ma, mb, listener, host)
        for task in readers:
            task.cancel()
        return event_id, seen, errors

    event_id, seen, errors = run(scenario(), timeout=180)
    assert a.alive() and b.alive()
    # One order on both nodes, and what was refused while the database was down said so:
    # `server_busy`, or `rate_limited` for what piled up in a room's inbox while a turn waited for
    # the database (at most the store's 10 s deadline when a statement went unanswered).
    assert [m for m, _ in seen["ma"]] == [m for m, _ in seen["mb"]]
    assert any(code == "server_busy" for _, code, _ in errors), errors
    assert all(code in ("server_busy", "rate_limited") and p != "before" for _, code, p in errors), errors
    # Everything a member saw is stored, in that order.
    stored_room = [m["message"] for m in get_room(a, room_id)["chat_history"]]
    assert stored_room[-len(seen["ma"]):] == [m for m, _ in seen["ma"]]
    stored_event = [m["message"] for m in http_json(b, f"/api/streams/{event_id}/chat?limit=500")["messages"]]
    assert [m for m, _ in seen["listener"]] == stored_event
    # The event's chat went on while the database was down (relayed after a short wait).
    assert any(p == "down" for _, p in seen["listener"]), seen["listener"]


def recordings_request(url, tok):
    """GET an absolute URL with the host's token; (status, headers, body), redirects not followed."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path, headers={"Authorization": f"Bearer {tok}"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_recordings_are_listed_from_any_node(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b"])
    a, b = nodes["a"], nodes["b"]
    host_id = uid("host")
    tok = token(host_id)

    async def record():
        ws, link = await go_live(a, host_id, tok=tok)
        await send(ws, {"type": "recording_start"})
        await recv_until(ws, "recording_started", 5)
        await send(ws, {"type": "recording_stop"})
        await recv_until(ws, "recording_stopped", 5)
        await send(ws, {"type": "stream_ended"})
        await close_all(ws)
        return link["event_id"]
    event_id = run(record())
    path = f"/api/streams/{event_id}/recordings"

    status, _, body = recordings_request(a.http + path, tok)
    assert status == 200, body
    local = json.loads(body)["recordings"]
    status, _, body = recordings_request(b.http + path, tok)
    assert status == 200, body
    remote = json.loads(body)["recordings"]
    # The same list, its urls naming the node that has the files.
    assert [(r["name"], r["size"]) for r in remote] == [(r["name"], r["size"]) for r in local] == [("1.opus", local[0]["size"])]
    assert remote[0]["url"] == a.http + local[0]["url"]
    status, headers, data = recordings_request(remote[0]["url"], tok)
    assert status == 200 and headers["content-type"] == "audio/ogg" and data[:4] == b"OggS"
    # A download asked of the other node is sent where the file is; the token is checked there too.
    status, headers, _ = recordings_request(b.http + local[0]["url"], tok)
    assert status == 307 and headers["location"] == a.http + local[0]["url"]
    assert recordings_request(b.http + path, token(uid("other")))[0] == 403

    a.stop()
    status, _, body = recordings_request(b.http + path, tok)
    error = json.loads(body)
    assert status == 503 and error["code"] == "server_busy" and error["details"]["origin_node"] == "a", (status, body)


def test_a_node_stops_within_10_s_while_the_database_is_down(start_server, private_cluster):
    folder, url = private_cluster
    node = start_nodes(start_server, url, ["a"])["a"]
    subprocess.run([POSTGRES, "pause", folder], check=True, capture_output=True, timeout=60)
    wait_for(lambda: http_get(node, "/readyz")[0] == 503, 15, "readyz 503")
    started = time.monotonic()
    assert node.terminate(timeout=15) == 0, node.stderr[-2000:]
    assert time.monotonic() - started < 10.0


def test_a_host_live_on_one_node_is_sent_back_there_by_another(start_server):
    database = fresh_database(URL)
    nodes = start_nodes(start_server, database, ["a", "b"])
    a, b = nodes["a"], nodes["b"]
    host_id = uid("host")

    async def scenario():
        ws, link = await go_live(a, host_id)
        # A host has one live event: once the event is in b's directory (PROTOCOL.md 8: within
        # 2 s), going live on b is refused, naming where it is.
        await asyncio.to_thread(wait_for, lambda: [e["event_id"] for e in http_json(b, "/api/streams")["streams"]] == [link["event_id"]],
                                3, "the event in b's directory")
        refusal = await expect_refusal(b.ws(host_path(host_id, token(host_id))), "server_busy", 1013)
        assert refusal["details"]["event_id"] == link["event_id"], refusal
        assert refusal["details"]["origin_node"] == "a" and refusal["details"]["origin_url"] == a.http, refusal
        await send(ws, {"type": "stream_ended"})
        await recv_until(ws, "stream_ended", 5)
        await close_all(ws)
        # Once it ended (and a published that, at most 0.5 s later), b takes the host.
        deadline = time.monotonic() + 5
        while True:
            try:
                again, _ = await go_live(b, host_id)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the host could not go live on b after its event ended on a"
                await asyncio.sleep(0.2)
        await close_all(again)
    run(scenario())


def test_a_server_that_is_not_a_node_lists_no_nodes_and_names_no_origin(start_server):
    srv = start_server()

    async def live():
        ws, link = await go_live(srv)
        return ws, link["event_id"]
    ws, event_id = run(live())
    assert http_json(srv, "/api/cluster") == {"nodes": []}
    assert "origin_node" not in http_json(srv, f"/api/streams/{event_id}")
    run(close_all(ws))
