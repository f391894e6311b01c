"""PROTOCOL.md 2.5: the active-streams directory socket."""

import asyncio
import time

import pytest

from awtest import (close_all, connect, expect_close, go_live, join, parse_iso, recv_error, recv_json, recv_until, run,
                    send, uid)


async def next_streams(ws, timeout=5.0):
    msg, before = await recv_until(ws, "active_streams", timeout)
    assert before == [], f"unexpected frames on the directory: {before}"
    return msg


async def until_streams(ws, pred, timeout=6.0):
    """Reads active_streams updates until `pred(streams)`; returns (message, arrival times)."""
    deadline = time.monotonic() + timeout
    arrivals = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the directory never reached the expected state"
        msg = await next_streams(ws, left)
        arrivals.append(time.monotonic())
        if pred(msg["streams"]):
            return msg, arrivals


def check_entry(s):
    assert set(s) >= {"event_id", "room_id", "host_user_id", "host_username", "mode", "total_participants",
                      "status", "start_timestamp", "type"}, s
    assert s["room_id"] == s["event_id"]
    assert s["status"] == "active" and s["type"] == "AUDIO"
    assert s["mode"] in ("audio", "screen")
    assert isinstance(s["total_participants"], int)
    parse_iso(s["start_timestamp"])


@pytest.mark.parametrize("slash", [True, False])
def test_directory_on_connect(server, slash):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Dir Host")
        m = await join(server, link["event_id"])
        await recv_until(ws, "participant_count", pred=lambda x: x["count"] == 1)
        d = await connect(server.ws("/ws/active-streams/" if slash else "/ws/active-streams"))
        first = await recv_json(d)
        assert first["type"] == "active_streams"
        mine = [s for s in first["streams"] if s["event_id"] == link["event_id"]]
        if not mine or mine[0]["total_participants"] != 1:
            # The directory is coalesced: the participant count may still be on its way.
            msg, _ = await until_streams(d, lambda ss: any(s["event_id"] == link["event_id"] and
                                                             s["total_participants"] == 1 for s in ss))
            mine = [s for s in msg["streams"] if s["event_id"] == link["event_id"]]
        s = mine[0]
        check_entry(s)
        assert s["host_user_id"] == host_id and s["host_username"] == "Dir Host"
        assert s["total_participants"] == 1, "the host is not counted"
        for other in first["streams"]:
            check_entry(other)
        await close_all(d, m, ws)
    run(main())


def test_directory_updates_coalesced(start_server):
    interval = 0.6
    srv = start_server(env={"AIRWAVE_DIRECTORY_INTERVAL_MS": str(int(interval * 1000))})

    async def main():
        d = await connect(srv.ws("/ws/active-streams/"))
        first = await next_streams(d)
        assert first["streams"] == []
        # One event starts: an update arrives promptly.
        t0 = time.monotonic()
        h1, l1 = await go_live(srv, uid("h1"))
        msg, arrivals = await until_streams(d, lambda ss: [s["event_id"] for s in ss] == [l1["event_id"]])
        assert arrivals[-1] - t0 < interval + 1.0
        # A burst of changes: three more events and joins, all within one window.
        hosts = []
        for i in range(3):
            hosts.append(await go_live(srv, uid(f"h{i + 2}")))
        m = await join(srv, l1["event_id"])
        want = {l1["event_id"]} | {link["event_id"] for _, link in hosts}
        msg, arrivals2 = await until_streams(
            d, lambda ss: {s["event_id"] for s in ss} == want and
            [s for s in ss if s["event_id"] == l1["event_id"]][0]["total_participants"] == 1)
        for s in msg["streams"]:
            check_entry(s)
        times = arrivals + arrivals2
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= interval * 0.8 for g in gaps), f"updates closer than the {interval} s interval: {gaps}"
        assert len(arrivals2) <= 3, f"{len(arrivals2)} updates for one burst: not coalesced"
        # An event ends: it leaves the directory.
        ws1, _ = h1, l1
        await send(ws1, {"type": "stream_ended"})
        await expect_close(ws1, 1000)
        msg, _ = await until_streams(d, lambda ss: l1["event_id"] not in [s["event_id"] for s in ss])
        assert {s["event_id"] for s in msg["streams"]} == want - {l1["event_id"]}
        # Nothing more while nothing changes.
        try:
            extra = await recv_json(d, interval * 2.5)
            raise AssertionError(f"update without a change: {extra}")
        except asyncio.TimeoutError:
            pass
        await close_all(d, *[w for w, _ in hosts])
    run(main())


def test_directory_default_interval_at_most_once_a_second(start_server):
    srv = start_server()

    async def main():
        d = await connect(srv.ws("/ws/active-streams/"))
        await next_streams(d)
        hosts = [await go_live(srv) for _ in range(6)]
        want = {link["event_id"] for _, link in hosts}
        msg, arrivals = await until_streams(d, lambda ss: {s["event_id"] for s in ss} == want, timeout=8)
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert all(g >= 0.8 for g in gaps), gaps
        await close_all(d, *[w for w, _ in hosts])
    run(main())


def test_directory_rejects_messages(server):
    async def main():
        d = await connect(server.ws("/ws/active-streams/"))
        await next_streams(d)
        await send(d, {"type": "broadcast_message", "message": "hi"})
        err = await recv_error(d, "unknown_type")
        await d.send("not json")
        await recv_error(d, "bad_message")
        # Still subscribed: a new event shows up.
        ws, link = await go_live(server)
        await until_streams(d, lambda ss: link["event_id"] in [s["event_id"] for s in ss])
        await close_all(d, ws)
    run(main())
