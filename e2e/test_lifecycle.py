"""Time-based and life-cycle behaviour: invite expiry, co-host grace, pings, fragments."""

import asyncio
import json
import time

from awtest import (close_all, connect, expect_close, expect_silence, go_live, http_json, join, recv_error, recv_json,
                    recv_until, roles, run, send, token, uid, wait_list)


def test_invite_expires(start_server):
    srv = start_server(env={"AIRWAVE_INVITE_LIFETIME": "1"})

    async def main():
        ws, link = await go_live(srv)
        a = await join(srv, link["event_id"], verified=True)
        await recv_until(ws, "participant_joined")
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        await recv_until(a.ws, "cohost_invite")
        # Bounded wait past the invite lifetime (nothing is expected to arrive meanwhile).
        await expect_silence(a.ws, 1.6)
        await send(a.ws, {"type": "accept_cohost"})
        await recv_error(a.ws, "no_pending_invite")
        # A fresh invite works.
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        await recv_until(a.ws, "cohost_invite")
        await send(a.ws, {"type": "accept_cohost"})
        await recv_until(ws, "cohost_joined")
        await close_all(a, ws)
    run(main())


def test_cohost_role_lapses_after_grace(start_server):
    srv = start_server("--host-grace", "1")

    async def main():
        ws, link = await go_live(srv)
        ev = link["event_id"]
        a = await join(srv, ev, verified=True)
        b = await join(srv, ev)
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == b.user_id)
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        await recv_until(a.ws, "cohost_invite")
        await send(a.ws, {"type": "accept_cohost"})
        await recv_until(ws, "cohost_joined")
        await a.ws.close()
        await recv_until(b.ws, "cohost_left", pred=lambda x: x["user_id"] == a.user_id)
        await expect_silence(b.ws, 1.8, ignore=("participant_list", "participant_count", "participant_left"))
        a2 = await join(srv, ev, a.user_id, verified=True)
        plist = await wait_list(ws, lambda p: a.user_id in roles(p))
        assert roles(plist)[a.user_id] == "listener"
        await send(a2.ws, {"type": "mute"})
        await recv_error(a2.ws, "not_allowed")
        await close_all(a2, b, ws)
    run(main())


def test_replaced_host_connection_does_not_start_grace(start_server):
    srv = start_server("--host-grace", "1")

    async def main():
        host = uid("host")
        ws1, link = await go_live(srv, host)
        m = await join(srv, link["event_id"])
        ws2, link2 = await go_live(srv, host)
        assert link2["resumed"] is True
        await expect_close(ws1, 4000)
        # Well past the grace period the event is still live.
        await expect_silence(m.ws, 2.5, ignore=("participant_list", "participant_count", "participant_joined"))
        assert http_json(srv, f"/api/streams/{link['event_id']}")["status"] == "active"
        await send(ws2, {"type": "broadcast_message", "message": "here"})
        await recv_until(m.ws, "message_broadcast")
        await close_all(m, ws2)
    run(main())


def test_cohost_replaced_in_place_keeps_role(server):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        a = await join(server, ev, verified=True)
        b = await join(server, ev)
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == b.user_id)
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        await recv_until(a.ws, "cohost_invite")
        await send(a.ws, {"type": "accept_cohost"})
        await recv_until(ws, "cohost_joined")
        a2 = await join(server, ev, a.user_id, verified=True)
        await expect_close(a.ws, 4000)
        plist = await wait_list(b.ws, lambda p: a.user_id in roles(p) and roles(p)[a.user_id] == "cohost")
        await send(a2.ws, {"type": "mute"})
        m, _ = await recv_until(b.ws, "muted")
        assert m["user_id"] == a.user_id
        await close_all(a2, b, ws)
    run(main())


def test_disconnect_announces_participant_left(server):
    async def main():
        ws, link = await go_live(server)
        a = await join(server, link["event_id"])
        b = await join(server, link["event_id"])
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == b.user_id)
        a.ws.transport.abort()
        for conn in (ws, b.ws):
            left, _ = await recv_until(conn, "participant_left", pred=lambda x: x["user_id"] == a.user_id)
            plist = await wait_list(conn, lambda p: a.user_id not in roles(p))
        await close_all(b, ws)
    run(main())


def test_user_claim_setting(start_server):
    srv = start_server("--user-claim", "sub")

    async def main():
        user = uid("h")
        ws, link = await go_live(srv, user, tok=token(uid("other"), claim="user_id", sub=user))
        v = uid("v")
        from awtest import expect_refusal, join_path
        # user_id claim is not looked at any more: the token's user is its sub.
        await expect_refusal(srv.ws(join_path(link["event_id"], v, token(v, claim="user_id"))), "unauthorized", 4401)
        await close_all(ws)
    run(main())


def test_fragmented_text_message(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        text = json.dumps({"type": "broadcast_message", "message": "fragmented hello"})
        await m.ws.send([text[:10], text[10:25], text[25:]])
        msg, _ = await recv_until(ws, "message_broadcast")
        assert msg["message"] == "fragmented hello"
        # Fragments adding up to more than 64 KiB: 1009.
        big = json.dumps({"type": "broadcast_message", "message": "z" * 80000})
        codes = []
        for attempt in range(6):
            if attempt:
                m = await join(server, link["event_id"])
            await m.ws.send([big[i:i + 16000] for i in range(0, len(big), 16000)])
            from awtest import drain_until_close
            frames, code = await drain_until_close(m.ws, 10)
            codes.append(code)
        assert codes == [1009] * len(codes), f"close codes after 80 kB in fragments: {codes}"
        await close_all(ws)
    run(main())


def test_listener_media_frames_refused_once_a_second(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        frame = bytes([1, 1, 0, 0]) + bytes(12) + b"\xf8\xff\xfe"
        for _ in range(20):
            await m.ws.send(frame)
        await recv_error(m.ws, "not_allowed")
        await expect_silence(m.ws, 0.5)
        # Nothing was relayed to the host.
        await send(m.ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(ws, "message_broadcast")
        assert before == [] or all(isinstance(f, dict) for f in before)
        await close_all(m, ws)
    run(main())


def test_unanswered_pings_close_connection(start_server):
    srv = start_server(env={"AIRWAVE_PING_INTERVAL": "1"})

    async def main():
        ws, link = await go_live(srv)
        quiet = await join(srv, link["event_id"])
        alive = await join(srv, link["event_id"])
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == alive.user_id)
        quiet.ws.transport.pause_reading()  # never sees (nor answers) the server's pings
        t0 = time.monotonic()
        left, _ = await recv_until(ws, "participant_left", timeout=8, pred=lambda x: x["user_id"] == quiet.user_id)
        waited = time.monotonic() - t0
        assert waited >= 1.0, f"dropped after {waited:.1f} s: too early for two missed pings"
        # A client that answers pings stays, well past two intervals.
        await send(alive.ws, {"type": "broadcast_message", "message": "still here"})
        msg, _ = await recv_until(ws, "message_broadcast")
        assert msg["user_id"] == alive.user_id
        quiet.ws.transport.abort()
        await close_all(alive, ws)
    run(main())


def test_sigterm_ends_event_as_stored(start_server):
    srv = start_server()

    async def main():
        ws, link = await go_live(srv)
        m = await join(srv, link["event_id"])
        await send(m.ws, {"type": "broadcast_message", "message": "before shutdown"})
        await recv_until(m.ws, "message_broadcast")
        t0 = time.monotonic()
        srv.proc.terminate()
        await recv_until(m.ws, "server_shutdown", timeout=10)
        await recv_until(ws, "server_shutdown", timeout=10)
        from awtest import drain_until_close
        await drain_until_close(m.ws, 10)
        await drain_until_close(ws, 10)
        rc = await asyncio.get_running_loop().run_in_executor(None, lambda: srv.proc.wait(10))
        assert rc == 0
        assert time.monotonic() - t0 < 10
        return link["event_id"]

    ev = run(main())
    srv2 = start_server(data_dir=srv.data_dir)
    info = http_json(srv2, f"/api/streams/{ev}")
    assert info["status"] == "ended"
    chat = http_json(srv2, f"/api/streams/{ev}/chat")["messages"]
    assert [c["message"] for c in chat] == ["before shutdown"]
