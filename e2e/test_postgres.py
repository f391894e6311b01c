"""PROTOCOL.md 7: `--database postgres://…` selects PostgreSQL. The same server on it: events,
chat and rooms stored and read back across a restart; a database that is unreachable at start is
a one-line configuration error; while it is down, requests get 503 `server_busy` and /readyz
503, and service resumes by itself. tools/test starts a throwaway cluster and passes its URL in
AIRWAVE_TEST_POSTGRES_URL (tools/postgres)."""

import os
import subprocess
import tempfile
import time

import pytest

from awtest import close_all, go_live, http_get, http_json, join, recv_until, run, send, uid
from conftest import ROOT, run_cli
from test_rooms import enter, get_room, relayed

URL = os.environ.get("AIRWAVE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="AIRWAVE_TEST_POSTGRES_URL is not set (tools/test sets it)")
POSTGRES = os.path.join(ROOT, "tools", "postgres")


def fresh_database(url: str) -> str:
    """A new, empty database on the cluster of `url`; returns its URL."""
    name = "airwave_" + uid("e2e").replace("-", "_")
    subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=30)
    return url.rsplit("/", 1)[0] + "/" + name


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def test_events_chat_and_rooms_are_stored_in_postgres_across_a_restart(start_server):
    database = fresh_database(URL)
    first = start_server("--database", database)

    async def live():
        ws, link = await go_live(first)
        listener = await join(first, link["event_id"], uid("lis"), verified=True)
        await send(ws, {"type": "broadcast_message", "message": "stored in postgres"})
        await recv_until(listener.ws, "message_broadcast")
        room_id = uid("room")
        member = await enter(first, room_id, name="Gus")
        await send(member.ws, {"type": "song_queued", "song_id": "track-1"})
        await relayed([member], "song_queued")
        await send(member.ws, {"type": "chat_message", "message": "room chat"})
        await relayed([member], "chat_message")
        await close_all(listener, member, ws)
        return link["event_id"], room_id
    event_id, room_id = run(live())
    first.stop()

    second = start_server("--database", database)
    info = http_json(second, f"/api/streams/{event_id}")
    assert info["status"] == "ended", info
    assert [p["role"] for p in info["participants"]][:1] == ["host"]
    chat = http_json(second, f"/api/streams/{event_id}/chat")["messages"]
    assert [(m["message"], m["verified"]) for m in chat] == [("stored in postgres", True)]
    room = get_room(second, room_id)
    assert [s["song_id"] for s in room["queue"]] == ["track-1"]
    assert [m["message"] for m in room["chat_history"]] == ["room chat"]


def test_an_unreachable_database_at_start_is_one_line_and_exit_2():
    # A port where nothing listens, and a password that must not be printed.
    with tempfile.TemporaryDirectory() as data:
        started = time.monotonic()
        result = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", "x" * 32,
                          "--database", "postgres://airwave:s3cret-pw@127.0.0.1:1/airwave"], timeout=60)
        took = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PostgreSQL" in lines[0], result.stderr
    assert "s3cret-pw" not in result.stderr
    assert took < 30, took


def test_an_unknown_database_scheme_is_one_line_and_exit_2():
    with tempfile.TemporaryDirectory() as data:
        result = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", "x" * 32, "--database", "mysql://db/airwave"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--database" in lines[0], result.stderr


@pytest.fixture
def private_cluster():
    """A cluster of this test's own, so that stopping it disturbs no other test."""
    folder = tempfile.mkdtemp(prefix="airwave-pg-")
    url = subprocess.run([POSTGRES, "start", folder], check=True, capture_output=True, text=True, timeout=180).stdout.strip()
    yield folder, url
    subprocess.run([POSTGRES, "stop", folder], capture_output=True, timeout=60)


def test_while_the_database_is_down_requests_get_503_and_service_resumes(start_server, private_cluster):
    folder, url = private_cluster
    srv = start_server("--database", url)

    async def live():
        ws, link = await go_live(srv)
        return ws, link["event_id"]
    ws, event_id = run(live())
    assert http_get(srv, "/readyz")[0] == 200
    assert http_get(srv, f"/api/streams/{event_id}")[0] == 200

    subprocess.run([POSTGRES, "pause", folder], check=True, capture_output=True, timeout=60)
    wait_for(lambda: http_get(srv, "/readyz")[0] == 503, 15, "readyz 503 while the database is down")
    status, headers, body = http_get(srv, f"/api/streams/{event_id}")
    assert status == 503 and b'"server_busy"' in body, (status, body)
    assert srv.alive()

    subprocess.run([POSTGRES, "resume", folder], check=True, capture_output=True, timeout=60)
    wait_for(lambda: http_get(srv, "/readyz")[0] == 200, 30, "readyz 200 once the database is back")
    assert http_json(srv, f"/api/streams/{event_id}")["status"] == "active"
    run(close_all(ws))
