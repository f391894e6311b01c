"""PROTOCOL.md 2.3 and 2.4: client messages, what they cause, and who may send them."""

import asyncio

import pytest

from awtest import (close_all, connect, expect_close, expect_refusal, expect_silence, go_live, http_json, join,
                    join_path, recv_error, recv_json, recv_until, roles, run, send, token, uid, wait_list)


async def event_with(server, listeners=1, verified=True, host_name="Host"):
    host_id = uid("host")
    ws, link = await go_live(server, host_id, host_name)
    members = [await join(server, link["event_id"], uid("l"), verified=verified) for _ in range(listeners)]
    for m in members:  # wait until the host knows everyone
        await recv_until(ws, "participant_joined", pred=lambda x, u=m.user_id: x["user_id"] == u)
    return host_id, ws, link["event_id"], members


async def make_cohost(ws, member):
    await send(ws, {"type": "invite_cohost", "user_id": member.user_id})
    inv, _ = await recv_until(member.ws, "cohost_invite")
    await send(member.ws, {"type": "accept_cohost"})
    joined, _ = await recv_until(ws, "cohost_joined", pred=lambda x: x["user_id"] == member.user_id)
    return joined


# ---------------------------------------------------------------------------- mode switches
def test_mode_switches(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        await send(ws, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "avc1.42E01E",
                        "width": 1280, "height": 720, "description": "AAECAw=="})
        for conn in (ws, a.ws):
            changed, _ = await recv_until(conn, "stream_mode_changed")
            assert changed["mode"] == "screen"
            assert changed["codec"] == "avc1.42E01E" and changed["width"] == 1280 and changed["height"] == 720
            assert changed["description"] == "AAECAw=="
            assert isinstance(changed["message"], str)
            legacy = await recv_json(conn)
            assert legacy["type"] == "screen_sharing_started", legacy
        # A joiner during screen mode sees it in stream_state.
        late = await join(server, ev)
        assert late.state["mode"] == "screen"
        assert late.state["screen"]["codec"] == "avc1.42E01E" and late.state["screen"]["width"] == 1280
        assert http_json(server, f"/api/streams/{ev}")["mode"] == "screen"
        await send(ws, {"type": "switching_to_audio", "stream": "audio"})
        for conn in (ws, a.ws, late.ws):
            changed, _ = await recv_until(conn, "stream_mode_changed")
            assert changed["mode"] == "audio"
            assert "codec" not in changed
            legacy = await recv_json(conn)
            assert legacy["type"] == "audio_streaming_started", legacy
        later = await join(server, ev)
        assert later.state["mode"] == "audio" and later.state["screen"] is None
        await close_all(a, late, later, ws)
    run(main())


def test_mode_switch_bad_fields(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        for bad in ({"type": "switching_to_screen_sharing", "stream": "audio"},
                    {"type": "switching_to_screen_sharing", "width": "wide"},
                    {"type": "switching_to_screen_sharing", "width": 0},
                    {"type": "switching_to_screen_sharing", "description": "not base64 !!"},
                    {"type": "switching_to_audio", "stream": 7}):
            await send(ws, bad)
            err = await recv_error(ws, "bad_message")
        # Nothing changed.
        assert http_json(server, f"/api/streams/{ev}")["mode"] == "audio"
        await close_all(a, ws)
    run(main())


# ---------------------------------------------------------------------------- co-hosts
def test_invite_accept_cohost(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        inv, _ = await recv_until(a.ws, "cohost_invite")
        assert inv["from_user"] == "Host" and isinstance(inv["message"], str)
        await send(a.ws, {"type": "accept_cohost"})
        for conn in (ws, a.ws, b.ws):
            j, _ = await recv_until(conn, "cohost_joined")
            assert j["user_id"] == a.user_id and j["participant_id"] == a.user_id
            assert j["username"] == a.user_id
            assert isinstance(j["source_id"], int) and j["source_id"] > 1
            assert isinstance(j["message"], str)
            plist = await wait_list(conn, lambda p: roles(p).get(a.user_id) == "cohost")
            entry = [p for p in plist["participants"] if p["user_id"] == a.user_id][0]
            assert entry["source_id"] == j["source_id"] and entry["muted"] is False
            # Order: host first, co-hosts before listeners.
            assert [p["role"] for p in plist["participants"]][:2] == ["host", "cohost"]
        # b never got an invite.
        assert inv["type"] == "cohost_invite"
        await send(b.ws, {"type": "accept_cohost"})
        await recv_error(b.ws, "no_pending_invite")
        # A second accept by a is refused too: the invite is used up.
        await send(a.ws, {"type": "accept_cohost"})
        await recv_error(a.ws, "no_pending_invite")
        await close_all(a, b, ws)
    run(main())


def test_invite_reject(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        await recv_until(a.ws, "cohost_invite")
        await send(a.ws, {"type": "cohost_reject"})
        rej, _ = await recv_until(ws, "cohost_rejected")
        assert rej["user_id"] == a.user_id and rej["username"] == a.user_id
        # The invite is gone: accepting now is refused, and a is still a listener.
        await send(a.ws, {"type": "accept_cohost"})
        await recv_error(a.ws, "no_pending_invite")
        await send(a.ws, {"type": "cohost_reject"})
        await recv_error(a.ws, "no_pending_invite")
        await send(a.ws, {"type": "broadcast_message", "message": "x"})
        msg, before = await recv_until(a.ws, "message_broadcast")
        assert "cohost_joined" not in [f["type"] for f in before]
        await close_all(a, ws)
    run(main())


def test_cohost_rejected_goes_only_to_host(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await send(ws, {"type": "invite_cohost", "user_id": a.user_id})
        inv, _ = await recv_until(a.ws, "cohost_invite")
        await send(a.ws, {"type": "cohost_reject"})
        await recv_until(ws, "cohost_rejected")
        await send(ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(b.ws, "message_broadcast")
        assert not {"cohost_rejected", "cohost_invite"} & {f["type"] for f in before}, before
        await close_all(a, b, ws)
    run(main())


def test_cannot_invite_reasons(server):
    async def main():
        host_id, ws, ev, (v,) = await event_with(server, 1, verified=True)
        unverified = await join(server, ev, uid("unv"))
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == unverified.user_id)
        cases = [(uid("absent"), "not_present"), (unverified.user_id, "not_verified")]
        for user, reason in cases:
            await send(ws, {"type": "invite_cohost", "user_id": user})
            err = await recv_error(ws, "cannot_invite")
            assert err["details"]["reason"] == reason, err
        await make_cohost(ws, v)
        await send(ws, {"type": "invite_cohost", "user_id": v.user_id})
        err = await recv_error(ws, "cannot_invite")
        assert err["details"]["reason"] == "already_cohost", err
        # The unverified listener never received an invite.
        await send(ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(unverified.ws, "message_broadcast")
        assert "cohost_invite" not in [f["type"] for f in before]
        # ...and cannot accept one.
        await send(unverified.ws, {"type": "accept_cohost"})
        await recv_error(unverified.ws, "no_pending_invite")
        await close_all(v, unverified, ws)
    run(main())


def test_forged_accept_and_reject(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        # b was invited; a forges acceptance.
        await send(ws, {"type": "invite_cohost", "user_id": b.user_id})
        await recv_until(b.ws, "cohost_invite")
        await send(a.ws, {"type": "accept_cohost", "user_id": b.user_id})
        await recv_error(a.ws, "no_pending_invite")
        await send(a.ws, {"type": "cohost_reject", "user_id": b.user_id})
        await recv_error(a.ws, "no_pending_invite")
        # The host itself cannot accept or reject.
        await send(ws, {"type": "accept_cohost"})
        await recv_error(ws, "no_pending_invite")
        await send(ws, {"type": "cohost_reject"})
        await recv_error(ws, "no_pending_invite")
        # b's invite is still open.
        await send(b.ws, {"type": "accept_cohost"})
        j, _ = await recv_until(ws, "cohost_joined")
        assert j["user_id"] == b.user_id
        await close_all(a, b, ws)
    run(main())


def test_cohost_leave(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await make_cohost(ws, a)
        await send(a.ws, {"type": "cohost_leave", "participant_id": b.user_id})  # participant_id ignored
        for conn in (ws, a.ws, b.ws):
            left, _ = await recv_until(conn, "cohost_left")
            assert left["user_id"] == a.user_id and left["participant_id"] == a.user_id
            assert left["username"] == a.user_id and isinstance(left["message"], str)
            await wait_list(conn, lambda p: roles(p).get(a.user_id) == "listener")
        # Now a listener: stepping down again is not allowed.
        await send(a.ws, {"type": "cohost_leave"})
        await recv_error(a.ws, "not_allowed")
        await close_all(a, b, ws)
    run(main())


@pytest.mark.parametrize("by", ["participant_id", "username"])
def test_remove_cohost(server, by):
    async def main():
        host_id, ws, ev, _ = await event_with(server, 0)
        name = "Named " + uid("c")
        a = await join(server, ev, uid("c"), verified=True, username=name)
        b = await join(server, ev, uid("l"))
        await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == b.user_id)
        await make_cohost(ws, a)
        msg = {"type": "remove_cohost"}
        msg[by] = a.user_id if by == "participant_id" else name
        await send(ws, msg)
        for conn in (ws, a.ws, b.ws):
            rem, _ = await recv_until(conn, "cohost_removed")
            assert rem["user_id"] == a.user_id and rem["participant_id"] == a.user_id
            assert rem["username"] == name and isinstance(rem["message"], str)
            await wait_list(conn, lambda p: roles(p).get(a.user_id) == "listener")
        # Removing someone who is not a co-host is an error, not a crash; the event goes on.
        await send(ws, {"type": "remove_cohost", "participant_id": b.user_id})
        err, _ = await recv_until(ws, "error")
        assert err["code"] in ("not_cohost", "not_allowed", "bad_message"), err
        await send(ws, {"type": "broadcast_message", "message": "alive"})
        await recv_until(b.ws, "message_broadcast")
        await close_all(a, b, ws)
    run(main())


def test_cohost_role_kept_across_verified_reconnect(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        joined = await make_cohost(ws, a)
        await a.ws.close()
        left, _ = await recv_until(b.ws, "cohost_left")
        assert left["user_id"] == a.user_id
        a2 = await join(server, ev, a.user_id, verified=True)
        cj, _ = await recv_until(b.ws, "cohost_joined", pred=lambda x: x["user_id"] == a.user_id)
        assert cj["source_id"] == joined["source_id"]
        plist = await wait_list(ws, lambda p: a.user_id in roles(p))
        assert roles(plist)[a.user_id] == "cohost"
        # Co-host rights work: it may mute itself.
        await send(a2.ws, {"type": "mute"})
        m, _ = await recv_until(b.ws, "muted")
        assert m["user_id"] == a.user_id
        await close_all(a2, b, ws)
    run(main())


def test_unverified_reconnect_does_not_get_cohost_role(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await make_cohost(ws, a)
        await a.ws.close()
        await recv_until(b.ws, "cohost_left")
        # Same user id, no token: refused, the id belongs to a user who joined verified
        # (PROTOCOL.md 10), so nobody can take a co-host's place or name by guessing its id.
        await expect_refusal(server.ws(join_path(ev, a.user_id)), "duplicate_user", 4409)
        plist = await wait_list(ws, lambda p: a.user_id not in roles(p))
        assert a.user_id not in roles(plist)
        await close_all(b, ws)
    run(main())


# ---------------------------------------------------------------------------- chat
def test_chat_broadcast_to_all_including_sender(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await send(a.ws, {"type": "broadcast_message", "message": "héllo wörld", "extra": {"ignored": True}})
        for conn in (ws, a.ws, b.ws):
            msg, _ = await recv_until(conn, "message_broadcast")
            assert msg["message"] == "héllo wörld"
            assert msg["user_id"] == a.user_id and msg["username"] == a.user_id
            from awtest import parse_iso
            parse_iso(msg["sent_at"])
        await send(ws, {"type": "text", "message": "alias type"})
        for conn in (ws, a.ws, b.ws):
            msg, _ = await recv_until(conn, "message_broadcast")
            assert msg["message"] == "alias type" and msg["user_id"] == host_id and msg["username"] == "Host"
        await close_all(a, b, ws)
    run(main())


def test_chat_length_limits(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        await send(a.ws, {"type": "broadcast_message", "message": "x" * 2001})
        err = await recv_error(a.ws, "bad_message")
        for bad in ("", "   ", None, 5, ["x"]):
            await send(a.ws, {"type": "broadcast_message", "message": bad})
            await recv_error(a.ws, "bad_message")
        await send(a.ws, {"type": "broadcast_message"})
        await recv_error(a.ws, "bad_message")
        # Exactly 2000 characters (not bytes) is fine.
        text = "é" * 2000
        await send(a.ws, {"type": "broadcast_message", "message": text})
        msg, before = await recv_until(ws, "message_broadcast")
        assert msg["message"] == text
        assert "message_broadcast" not in [f["type"] for f in before]
        await close_all(a, ws)
    run(main())


def test_chat_history_replayed_last_100(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        first = await join(server, ev)
        for i in range(3):
            await send(a.ws, {"type": "broadcast_message", "message": f"early {i}"})
            await recv_until(a.ws, "message_broadcast")
        late = await join(server, ev)
        assert [m["message"] for m in late.history["messages"]] == ["early 0", "early 1", "early 2"]
        for m in late.history["messages"]:
            assert set(m) >= {"username", "user_id", "message", "sent_at"}
            assert m["user_id"] == a.user_id
        for i in range(3, 105):
            await send(a.ws, {"type": "broadcast_message", "message": f"m {i}"})
        got = 0
        while got < 102:
            msg, _ = await recv_until(a.ws, "message_broadcast", timeout=20)
            got += 1
        later = await join(server, ev)
        texts = [m["message"] for m in later.history["messages"]]
        assert len(texts) == 100, len(texts)
        assert texts[0] == "m 5" and texts[-1] == "m 104", (texts[0], texts[-1])
        await close_all(a, first, late, later, ws)
    run(main())


# ---------------------------------------------------------------------------- leave
def test_leave_room(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        for conn in (ws, a.ws, b.ws):
            await recv_until(conn, "participant_count", pred=lambda x: x["count"] == 2)
        await send(a.ws, {"type": "leave_room"})
        await expect_close(a.ws, 1000)
        for conn in (ws, b.ws):
            left, _ = await recv_until(conn, "participant_left", pred=lambda x: x["user_id"] == a.user_id)
            assert left["username"] == a.user_id and isinstance(left["message"], str)
            await recv_until(conn, "participant_count", pred=lambda x: x["count"] == 1)
        # The host cannot leave_room (it ends the event with stream_ended instead).
        await send(ws, {"type": "leave_room"})
        await recv_error(ws, "not_allowed")
        await send(b.ws, {"type": "broadcast_message", "message": "still live"})
        await recv_until(ws, "message_broadcast")
        await close_all(b, ws)
    run(main())


def test_cohost_leave_room_announces_cohost_left(server):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        await make_cohost(ws, a)
        await send(a.ws, {"type": "leave_room"})
        await expect_close(a.ws, 1000)
        await recv_until(b.ws, "cohost_left", pred=lambda x: x["user_id"] == a.user_id)
        await recv_until(b.ws, "participant_left", pred=lambda x: x["user_id"] == a.user_id)
        # Rejoining after leaving on purpose: the role is gone.
        a2 = await join(server, ev, a.user_id, verified=True)
        plist = await wait_list(ws, lambda p: a.user_id in roles(p))
        assert roles(plist)[a.user_id] == "listener"
        await close_all(a2, b, ws)
    run(main())


# ---------------------------------------------------------------------------- mute
def test_mute_unmute(server):
    async def main():
        host_id, ws, ev, (a, b, c) = await event_with(server, 3)
        await make_cohost(ws, a)
        await make_cohost(ws, c)
        # A co-host mutes itself.
        await send(a.ws, {"type": "mute"})
        for conn in (ws, a.ws, b.ws):
            m, _ = await recv_until(conn, "muted")
            assert m["user_id"] == a.user_id
        plist = await wait_list(b.ws, lambda p: any(e["user_id"] == a.user_id and e["muted"] for e in p["participants"]))
        await send(a.ws, {"type": "unmute"})
        for conn in (ws, a.ws, b.ws):
            m, _ = await recv_until(conn, "unmuted")
            assert m["user_id"] == a.user_id
        # The host mutes a co-host, then unmutes it.
        await send(ws, {"type": "mute", "user_id": c.user_id})
        for conn in (ws, b.ws, c.ws):
            await recv_until(conn, "muted", pred=lambda x: x["user_id"] == c.user_id)
        await send(ws, {"type": "unmute", "user_id": c.user_id})
        for conn in (ws, b.ws, c.ws):
            await recv_until(conn, "unmuted", pred=lambda x: x["user_id"] == c.user_id)
        # The host mutes itself.
        await send(ws, {"type": "mute"})
        m, _ = await recv_until(b.ws, "muted")
        assert m["user_id"] == host_id
        # A listener may not mute, not even itself; a co-host may not mute others.
        await send(b.ws, {"type": "mute"})
        await recv_error(b.ws, "not_allowed")
        await send(b.ws, {"type": "mute", "user_id": a.user_id})
        await recv_error(b.ws, "not_allowed")
        await send(a.ws, {"type": "mute", "user_id": c.user_id})
        await recv_error(a.ws, "not_allowed")
        await send(a.ws, {"type": "unmute", "user_id": host_id})
        await recv_error(a.ws, "not_allowed")
        # Nobody saw a mute from those refused attempts.
        await send(ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(c.ws, "message_broadcast")
        assert not [f for f in before if f["type"] in ("muted", "unmuted") and f["user_id"] != host_id], before
        await close_all(a, b, c, ws)
    run(main())


# ---------------------------------------------------------------------------- keyframe_request
def test_keyframe_request_reaches_host(server):
    async def main():
        host_id, ws, ev, (a,) = await event_with(server)
        await send(a.ws, {"type": "keyframe_request"})
        kf, _ = await recv_until(ws, "keyframe_request")
        assert kf["type"] == "keyframe_request"
        # Not to other listeners.
        await send(ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(a.ws, "message_broadcast")
        assert "keyframe_request" not in [f["type"] for f in before]
        await close_all(a, ws)
    run(main())


# ---------------------------------------------------------------------------- permissions
HOST_ONLY = [
    {"type": "switching_to_audio", "stream": "audio"},
    {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8"},
    {"type": "stream_ended"},
    {"type": "invite_cohost", "user_id": "someone"},
    {"type": "remove_cohost", "participant_id": "someone"},
]


@pytest.mark.parametrize("as_cohost", [False, True])
def test_non_host_cannot_do_host_actions(server, as_cohost):
    async def main():
        host_id, ws, ev, (a, b) = await event_with(server, 2)
        if as_cohost:
            await make_cohost(ws, a)
        for msg in HOST_ONLY:
            msg = dict(msg)
            if msg["type"] in ("invite_cohost", "remove_cohost"):
                msg[("user_id" if msg["type"] == "invite_cohost" else "participant_id")] = b.user_id
            await send(a.ws, msg)
            err = await recv_error(a.ws, "not_allowed")
        # The event is unaffected.
        info = http_json(server, f"/api/streams/{ev}")
        assert info["status"] == "active" and info["mode"] == "audio"
        await send(ws, {"type": "broadcast_message", "message": "marker"})
        msg, before = await recv_until(b.ws, "message_broadcast")
        types = [f["type"] for f in before]
        for t in ("stream_mode_changed", "stream_ended", "cohost_invite", "cohost_removed", "screen_sharing_started"):
            assert t not in types, before
        await close_all(a, b, ws)
    run(main())
