"""PROTOCOL.md 2.1: going live, resuming, the host's grace period."""

import asyncio
import re
import time

from awtest import (close_all, connect, drain_until_close, expect_close, expect_refusal, go_live, host_path, join,
                    join_path, recv_json, recv_until, run, send, token, uid, http_json)


def test_going_live_sends_stream_link(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Hosty")
        try:
            assert set(link) >= {"type", "event_id", "join_url", "mode", "resumed"}
            assert link["mode"] == "audio"
            assert link["resumed"] is False
            assert re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", link["event_id"]), link
            m = re.fullmatch(r"ws://([^/]+)/ws/stream/live/join/event/([^/]+)/", link["join_url"])
            assert m, link["join_url"]
            assert m.group(2) == link["event_id"]
            assert m.group(1) == f"127.0.0.1:{server.port}", link["join_url"]
            # The join URL works as given (plus the user id).
            member = await join(server, link["event_id"], uid("lis"))
            assert member.state["event_id"] == link["event_id"]
            assert member.state["host"] == {"user_id": host_id, "username": "Hosty"}
            await close_all(member)
        finally:
            await close_all(ws)
    run(main())


def test_host_url_without_trailing_slash(server):
    async def main():
        ws, link = await go_live(server, slash=False)
        assert link["resumed"] is False
        await close_all(ws)
    run(main())


def test_host_needs_a_token(server):
    async def main():
        await expect_refusal(server.ws(host_path(uid("host"))), "unauthorized", 4401)
        await expect_refusal(server.ws(host_path(uid("host"), "")), "unauthorized", 4401)
    run(main())


def test_host_token_of_other_user_forbidden(server):
    async def main():
        await expect_refusal(server.ws(host_path(uid("host"), token(uid("other")))), "forbidden", 4403)
    run(main())


def test_host_resume_within_grace_replaces_old_connection(server):
    async def main():
        host_id = uid("host")
        ws1, link1 = await go_live(server, host_id, "H")
        listener = await join(server, link1["event_id"])
        await recv_until(ws1, "participant_joined")
        ws2, link2 = await go_live(server, host_id, "H")
        assert link2["resumed"] is True
        assert link2["event_id"] == link1["event_id"]
        assert link2["join_url"] == link1["join_url"]
        # The older connection: the `replaced` error, then close 4000.
        frames = await expect_close(ws1, 4000)
        errors = [f for f in frames if f.get("type") == "error"]
        assert errors and errors[-1]["code"] == "replaced", frames
        assert frames[-1]["type"] == "error", f"the error must be the last frame before the close: {frames}"
        # The new connection is the host: it receives what the event sends the host.
        await send(listener.ws, {"type": "keyframe_request"})
        kf, _ = await recv_until(ws2, "keyframe_request")
        assert kf["type"] == "keyframe_request"
        await send(ws2, {"type": "broadcast_message", "message": "still here"})
        msg, _ = await recv_until(listener.ws, "message_broadcast")
        assert msg["message"] == "still here" and msg["user_id"] == host_id
        await close_all(listener, ws2)
    run(main())


def test_host_connection_closed_counts_as_dropped_and_resumes(server):
    """Closing without stream_ended keeps the event live (default grace 30 s); the host resumes it."""
    async def main():
        host_id = uid("host")
        ws1, link1 = await go_live(server, host_id)
        listener = await join(server, link1["event_id"])
        await ws1.close()
        # Still live: listeners stay, new listeners can join, the directory still lists it.
        late = await join(server, link1["event_id"])
        streams = http_json(server, "/api/streams")["streams"]
        assert link1["event_id"] in [s["event_id"] for s in streams]
        ws2, link2 = await go_live(server, host_id)
        assert link2["resumed"] is True and link2["event_id"] == link1["event_id"]
        await send(ws2, {"type": "broadcast_message", "message": "back"})
        for m in (listener, late):
            msg, before = await recv_until(m.ws, "message_broadcast")
            assert msg["message"] == "back"
            assert "stream_ended" not in [f["type"] for f in before]
        await close_all(listener, late, ws2)
    run(main())


def test_resumed_host_gets_state_it_missed(server):
    async def main():
        host_id = uid("host")
        ws1, link = await go_live(server, host_id)
        listener = await join(server, link["event_id"])
        await send(listener.ws, {"type": "broadcast_message", "message": "while you were away"})
        await recv_until(listener.ws, "message_broadcast")
        await ws1.close()
        ws2, link2 = await go_live(server, host_id)
        assert link2["resumed"] is True
        state = await recv_json(ws2)
        assert state["type"] == "stream_state" and state["event_id"] == link["event_id"]
        hist, _ = await recv_until(ws2, "chat_history")
        assert [m["message"] for m in hist["messages"]] == ["while you were away"]
        plist, _ = await recv_until(ws2, "participant_list")
        assert listener.user_id in [p["user_id"] for p in plist["participants"]]
        await close_all(listener, ws2)
    run(main())


def test_host_drop_then_grace_expiry_ends_event(start_server):
    srv = start_server("--host-grace", "2")

    async def main():
        host_id = uid("host")
        ws, link = await go_live(srv, host_id)
        event_id = link["event_id"]
        a = await join(srv, event_id)
        b = await join(srv, event_id, verified=True)
        await ws.close()
        dropped_at = time.monotonic()
        for m in (a, b):
            msg, before = await recv_until(m.ws, "stream_ended", timeout=15)
            assert msg["event_id"] == event_id
            assert isinstance(msg.get("message"), str)
            frames = await expect_close(m.ws, 1000)
            assert frames == [], f"nothing may follow stream_ended: {frames}"
        waited = time.monotonic() - dropped_at
        assert waited >= 1.5, f"event ended {waited:.2f} s after the drop, before the 2 s grace"
        assert waited < 10, f"event ended only {waited:.2f} s after the drop"
        await expect_refusal(srv.ws(join_path(event_id, uid("late"))), "event_ended", 4410)
        # The host coming back afterwards starts a new event.
        ws2, link2 = await go_live(srv, host_id)
        assert link2["resumed"] is False and link2["event_id"] != event_id
        info = http_json(srv, f"/api/streams/{event_id}")
        assert info["status"] == "ended"
        await close_all(ws2)
    run(main())


def test_host_abrupt_tcp_drop_ends_event_after_grace(start_server):
    srv = start_server("--host-grace", "1")

    async def main():
        ws, link = await go_live(srv)
        m = await join(srv, link["event_id"])
        ws.transport.abort()  # no close frame at all
        msg, _ = await recv_until(m.ws, "stream_ended", timeout=15)
        assert msg["event_id"] == link["event_id"]
        await expect_close(m.ws, 1000)
        await expect_refusal(srv.ws(join_path(link["event_id"], uid("late"))), "event_ended", 4410)
    run(main())


def test_host_stream_ended_ends_event_for_everyone(server):
    async def main():
        ws, link = await go_live(server)
        event_id = link["event_id"]
        members = [await join(server, event_id), await join(server, event_id, verified=True)]
        await send(ws, {"type": "stream_ended", "event_id": event_id})
        for conn in [ws] + [m.ws for m in members]:
            msg, _ = await recv_until(conn, "stream_ended")
            assert msg["event_id"] == event_id and isinstance(msg["message"], str)
            assert await expect_close(conn, 1000) == []
        await expect_refusal(server.ws(join_path(event_id, uid("late"))), "event_ended", 4410)
        info = http_json(server, f"/api/streams/{event_id}")
        assert info["status"] == "ended"
        assert event_id not in [s["event_id"] for s in http_json(server, "/api/streams")["streams"]]
    run(main())
