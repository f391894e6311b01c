"""PROTOCOL.md 2.2: joining a live event, and the refusals of section 1."""

import asyncio

import pytest

from awtest import (close_all, connect, expect_close, expect_refusal, go_live, join, join_path, q, recv_json,
                    recv_until, run, send, token, uid, wait_list, roles, parse_iso, drain_until_close)


@pytest.mark.parametrize("with_name", [False, True])
@pytest.mark.parametrize("slash", [True, False])
def test_join_url_forms(server, with_name, slash):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "The Host")
        user = uid("lis")
        name = "Listener Name" if with_name else None
        m = await join(server, link["event_id"], user, username=name, slash=slash)
        st = m.state
        assert st["event_id"] == link["event_id"]
        assert st["mode"] == "audio"
        assert st["host"] == {"user_id": host_id, "username": "The Host"}
        assert st["screen"] is None
        parse_iso(st["started_at"])
        assert m.history["messages"] == []
        joined, _ = await recv_until(ws, "participant_joined")
        assert joined["user_id"] == user
        assert joined["username"] == (name or user)
        assert isinstance(joined["message"], str) and joined["message"]
        await close_all(m, ws)
    run(main())


def test_first_messages_order_and_everyone_notified(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "H")
        ev = link["event_id"]
        a = await join(server, ev, uid("a"), verified=True)
        # a: its own participant_joined, list, count.
        for conn in (ws, a.ws):
            j, _ = await recv_until(conn, "participant_joined", pred=lambda x: x["user_id"] == a.user_id)
            plist = await wait_list(conn, lambda p: a.user_id in roles(p))
            cnt, _ = await recv_until(conn, "participant_count", pred=lambda x: x["count"] == 1)
        b_id = uid("b")
        b_ws = await connect(server.ws(join_path(ev, b_id)))
        frames = [await recv_json(b_ws) for _ in range(5)]
        types = [f["type"] for f in frames]
        assert types[:2] == ["stream_state", "chat_history"], types
        assert types[2] == "participant_joined", types
        assert set(types[3:5]) == {"participant_list", "participant_count"}, types
        assert frames[2]["user_id"] == b_id
        plist = next(f for f in frames if f["type"] == "participant_list")
        entries = plist["participants"]
        assert entries[0]["user_id"] == host_id and entries[0]["role"] == "host", entries
        assert entries[0]["verified"] is True
        by_id = {e["user_id"]: e for e in entries}
        assert by_id[a.user_id]["verified"] is True and by_id[a.user_id]["role"] == "listener"
        assert by_id[b_id]["verified"] is False and by_id[b_id]["role"] == "listener"
        for e in entries:
            assert set(e) >= {"user_id", "username", "role", "verified", "source_id", "muted"}, e
            assert isinstance(e["muted"], bool)
        cnt = next(f for f in frames if f["type"] == "participant_count")
        assert cnt["count"] == 2, "participant_count excludes the host"
        # The host and the earlier listener learn of b as well.
        for conn in (ws, a.ws):
            j, _ = await recv_until(conn, "participant_joined", pred=lambda x: x["user_id"] == b_id)
            await wait_list(conn, lambda p: b_id in roles(p))
            await recv_until(conn, "participant_count", pred=lambda x: x["count"] == 2)
        await close_all(a, b_ws, ws)
    run(main())


def test_percent_encoded_path_segments(server):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        user = uid("a.b") + "@example.com"
        # event id with its first character percent-encoded, user id with '@' encoded, a name with a space.
        enc_event = "%%%02X" % ord(ev[0]) + ev[1:]
        path = f"/ws/stream/live/join/event/{enc_event}/J%C3%BCrgen%20M/{q(user)}/"
        assert "%40" in path
        lw = await connect(server.ws(path))
        st = await recv_json(lw)
        assert st["type"] == "stream_state" and st["event_id"] == ev
        joined, _ = await recv_until(ws, "participant_joined")
        assert joined["user_id"] == user
        assert joined["username"] == "Jürgen M"
        await close_all(lw, ws)
    run(main())


def test_numeric_user_id_claim_matches_path(server):
    async def main():
        ws, link = await go_live(server)
        numeric = int(uid("x").split("-")[1][:8], 16) + 10_000_000  # unique-ish number
        tok = token(numeric)  # {"user_id": <int>}
        m = await join(server, link["event_id"], str(numeric), tok=tok)
        joined, _ = await recv_until(ws, "participant_joined")
        assert joined["user_id"] == str(numeric)
        plist = await wait_list(ws, lambda p: str(numeric) in roles(p))
        entry = [p for p in plist["participants"] if p["user_id"] == str(numeric)][0]
        assert entry["verified"] is True
        await close_all(m, ws)
    run(main())


def test_sub_claim_is_user_id(server):
    async def main():
        ws, link = await go_live(server)
        user = uid("sub")
        m = await join(server, link["event_id"], user, tok=token(user, claim="sub"))
        plist = await wait_list(ws, lambda p: user in roles(p))
        assert [p for p in plist["participants"] if p["user_id"] == user][0]["verified"] is True
        await close_all(m, ws)
    run(main())


def test_username_from_token_claims(server):
    async def main():
        ws, link = await go_live(server)
        for claim in ("username", "preferred_username", "name"):
            user = uid("n")
            tok = token(user, **{claim: f"Name via {claim}"})
            m = await join(server, link["event_id"], user, tok=tok)
            joined, _ = await recv_until(ws, "participant_joined", pred=lambda x: x["user_id"] == user)
            assert joined["username"] == f"Name via {claim}"
            await close_all(m)
    run(main())


def test_unverified_duplicate_refused(server):
    async def main():
        ws, link = await go_live(server)
        user = uid("dup")
        first = await join(server, link["event_id"], user)
        await expect_refusal(server.ws(join_path(link["event_id"], user)), "duplicate_user", 4409)
        # A verified first connection also blocks an unverified second one.
        v = uid("dupv")
        vfirst = await join(server, link["event_id"], v, verified=True)
        await expect_refusal(server.ws(join_path(link["event_id"], v)), "duplicate_user", 4409)
        # The first connections are unaffected.
        await send(first.ws, {"type": "broadcast_message", "message": "still in"})
        msg, _ = await recv_until(vfirst.ws, "message_broadcast")
        assert msg["user_id"] == user
        await close_all(first, vfirst, ws)
    run(main())


def test_host_cannot_join_own_event_as_listener(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id)
        err = await expect_refusal(server.ws(join_path(link["event_id"], host_id)), "duplicate_user", 4409)
        await close_all(ws)
    run(main())


def test_verified_second_connection_replaces_first(server):
    async def main():
        ws, link = await go_live(server)
        user = uid("v")
        first = await join(server, link["event_id"], user, verified=True)
        second = await join(server, link["event_id"], user, verified=True)
        frames = await expect_close(first.ws, 4000)
        assert frames and frames[-1]["type"] == "error" and frames[-1]["code"] == "replaced", frames
        # The new connection is the user's: chat from it carries the user.
        await send(second.ws, {"type": "broadcast_message", "message": "from the new one"})
        msg, _ = await recv_until(ws, "message_broadcast")
        assert msg["user_id"] == user
        plist = await wait_list(ws, lambda p: True)
        assert [p["user_id"] for p in plist["participants"]].count(user) <= 1
        await close_all(second, ws)
    run(main())


@pytest.mark.parametrize("kind", ["garbage", "expired", "nbf", "alg_none", "wrong_sig", "tampered", "no_exp"])
def test_invalid_token_refused_never_downgraded(server, kind):
    from awtest import alg_none_token, expired_token, future_nbf_token, wrong_signature_token, tampered_token

    async def main():
        ws, link = await go_live(server)
        user = uid("bad")
        tok = {
            "garbage": lambda: "not.a.jwt",
            "expired": lambda: expired_token(user),
            "nbf": lambda: future_nbf_token(user),
            "alg_none": lambda: alg_none_token(user),
            "wrong_sig": lambda: wrong_signature_token(user),
            "tampered": lambda: tampered_token(uid("o"), user),
            "no_exp": lambda: token(user, exp=False),
        }[kind]()
        await expect_refusal(server.ws(join_path(link["event_id"], user, tok)), "unauthorized", 4401)
        # The host side as well.
        await expect_refusal(server.ws(f"/ws/stream/start/live/{user}/?token={q(tok)}"), "unauthorized", 4401)
        # Nobody joined.
        await send(ws, {"type": "broadcast_message", "message": "ping"})
        msg, before = await recv_until(ws, "message_broadcast")
        assert "participant_joined" not in [f["type"] for f in before]
        await close_all(ws)
    run(main())


def test_token_of_another_user_forbidden(server):
    async def main():
        ws, link = await go_live(server)
        await expect_refusal(server.ws(join_path(link["event_id"], uid("me"), token(uid("you")))), "forbidden", 4403)
        await close_all(ws)
    run(main())


def test_require_join_token(start_server):
    srv = start_server("--require-join-token")

    async def main():
        ws, link = await go_live(srv)
        err = await expect_refusal(srv.ws(join_path(link["event_id"], uid("anon"))), "unauthorized", 4401)
        user = uid("ok")
        m = await join(srv, link["event_id"], user, verified=True)
        await close_all(m, ws)
    run(main())


def test_unknown_event(server):
    async def main():
        await expect_refusal(server.ws(join_path("noSuchEvent123", uid("x"))), "event_not_found", 4404)
        await expect_refusal(server.ws(join_path("noSuchEvent123", uid("x"), username="Name")), "event_not_found", 4404)
    run(main())


def test_ended_event(server):
    async def main():
        ws, link = await go_live(server)
        await send(ws, {"type": "stream_ended"})
        await recv_until(ws, "stream_ended")
        await expect_close(ws, 1000)
        await expect_refusal(server.ws(join_path(link["event_id"], uid("x"))), "event_ended", 4410)
        await expect_refusal(server.ws(join_path(link["event_id"], uid("x"), token(uid("x")) and None)), "event_ended", 4410)
    run(main())


@pytest.mark.parametrize("bad", ["a" * 65, "bad!id", "sp%20ace", "sl%2Fash", "%00", "%FF", "üser"])
def test_bad_ids_bad_request(server, bad):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        raw = bad if "%" in bad else q(bad)
        await expect_refusal(server.ws(f"/ws/stream/live/join/event/{ev}/{raw}/"), "bad_request", 4400)
        await expect_refusal(server.ws(f"/ws/stream/live/join/event/{raw}/{uid('x')}/"), "bad_request", 4400)
        await expect_refusal(server.ws(f"/ws/stream/start/live/{raw}/?token={q(token('whoever'))}"), "bad_request", 4400)
        await close_all(ws)
    run(main())


def test_64_char_ids_are_fine(server):
    async def main():
        ws, link = await go_live(server)
        user = (uid("L") + "x" * 64)[:64]
        m = await join(server, link["event_id"], user)
        await close_all(m, ws)
    run(main())


def test_bad_username_segment(server):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        await expect_refusal(server.ws(f"/ws/stream/live/join/event/{ev}/{'n' * 65}/{uid('x')}/"), "bad_request", 4400)
        await expect_refusal(server.ws(f"/ws/stream/live/join/event/{ev}/%01ctl/{uid('x')}/"), "bad_request", 4400)
        await close_all(ws)
    run(main())


def test_joiner_always_receives_participant_count(server):
    """2.2: after a join, everyone (the joiner included) receives participant_count. A verified
    reconnect replaces the old connection, so the count does not change -- the new connection
    must still receive participant_count (and participant_list)."""
    async def main():
        ws, link = await go_live(server)
        user = uid("v")
        first = await join(server, link["event_id"], user, verified=True)
        await recv_until(first.ws, "participant_count", pred=lambda x: x["count"] == 1)
        await recv_until(ws, "participant_count", pred=lambda x: x["count"] == 1)
        second = await join(server, link["event_id"], user, verified=True)
        await expect_close(first.ws, 4000)
        await wait_list(second.ws, lambda p: user in roles(p), timeout=5)
        cnt, _ = await recv_until(second.ws, "participant_count", timeout=5)
        assert cnt["count"] == 1
        await close_all(second, ws)
    run(main())


def test_joiner_receives_count_when_count_unchanged_in_window(start_server):
    """b joins and a leaves within one coalescing window: the count is the same as the last one
    sent, but b has never received a participant_count."""
    srv = start_server(env={"AIRWAVE_NOTICE_INTERVAL_MS": "2000"})

    async def main():
        ws, link = await go_live(srv)
        a = await join(srv, link["event_id"])
        await recv_until(ws, "participant_count", pred=lambda x: x["count"] == 1)
        b = await join(srv, link["event_id"])
        await send(a.ws, {"type": "leave_room"})
        await expect_close(a.ws, 1000)
        plist = await wait_list(b.ws, lambda p: a.user_id not in roles(p), timeout=6)
        cnt, _ = await recv_until(b.ws, "participant_count", timeout=6)
        assert cnt["count"] == 1
        await close_all(b, ws)
    run(main())
