"""PROTOCOL.md 10 on live events: PCM frames at most 120 ms, media budgets in frames, bytes and
PCM milliseconds, `verified` on chat and the ids of verified users, paged participants."""

import time

from awtest import (close_all, expect_refusal, go_live, http_get, http_json, join, join_path, metric_sum, metrics, recv_until, run, send,
                    uid)
from test_media import KIND_OPUS, KIND_PCM, SPEECH, TONE_440, is_media, live_event, media, sync_point

PCM_BYTES_PER_MS = 96  # 48 samples of s16le mono a millisecond


async def settle(host, host_tap, *taps, attempts=20):
    """Like `sync_point`, for a host that just went over a budget: a connection over its budget
    is not read for 100 ms and drops the rest of that read, so a marker may be lost; send
    markers until one gets through to everyone (bounded)."""
    for _ in range(attempts):
        try:
            return await sync_point(host, host_tap, *taps, timeout=0.5)
        except AssertionError:
            continue
    raise AssertionError("no chat marker got through")


def test_a_pcm_frame_over_120_ms_is_refused_and_120_ms_is_encoded(server):
    async def main():
        ws, host_tap, ev, members, (a,) = await live_event(server, 1)
        before = metrics(server)
        # 121 ms: refused before any encoding, with a reason the client can act on.
        await ws.send(media(KIND_PCM, TONE_440[:121 * PCM_BYTES_PER_MS]))
        err = host_tap.frames[await host_tap.wait_text("error", pred=lambda e: e["code"] == "bad_message")][1]
        assert err["details"] == {"reason": "too_long"}, err
        # 10.9 s in one frame (the finding): refused the same way, nothing reaches listeners.
        await ws.send(media(KIND_PCM, (TONE_440 * 11)[:10_900 * PCM_BYTES_PER_MS]))
        await sync_point(ws, host_tap, a)
        assert a.media() == [], "a refused PCM frame reached a listener"
        after = metrics(server)
        grew = (metric_sum(after, "airwave_media_frames_dropped_total", 'reason="malformed"')
                - metric_sum(before, "airwave_media_frames_dropped_total", 'reason="malformed"'))
        assert grew == 2
        # Exactly 120 ms is fine: six 20 ms Opus packets.
        await ws.send(media(KIND_PCM, TONE_440[:120 * PCM_BYTES_PER_MS], seq=1))
        await a.wait_count(is_media(), 6, timeout=10, what="encoded packets")
        await sync_point(ws, host_tap, a)
        assert [f.kind for f in a.media()] == [KIND_OPUS] * 6
        await close_all(*members, ws)
    run(main(), 60)


def test_pcm_budget_bounds_what_the_server_encodes(start_server):
    """1,000 ms of PCM per second (2,000 saved up): 5 s sent at once yields about 2 s of Opus."""
    srv = start_server("--pcm-rate-ms", "1000")

    async def main():
        ws, host_tap, ev, members, (a,) = await live_event(srv, 1)
        before = metrics(srv)
        t0 = time.monotonic()
        frames = 50  # 50 × 100 ms = 5 s of audio in one burst
        for i in range(frames):
            await ws.send(media(KIND_PCM, TONE_440[:100 * PCM_BYTES_PER_MS], seq=i))
        await settle(ws, host_tap, a)
        elapsed = time.monotonic() - t0
        after = metrics(srv)
        limited = (metric_sum(after, "airwave_media_frames_dropped_total", 'reason="pcm_rate_limited"')
                   - metric_sum(before, "airwave_media_frames_dropped_total", 'reason="pcm_rate_limited"'))
        # Every accepted 100 ms frame becomes five 20 ms packets.
        encoded_ms = len(a.media()) * 20
        assert limited >= 1
        assert 2000 - 20 <= encoded_ms <= 2000 + 1000 * elapsed + 100, (encoded_ms, elapsed)
        await close_all(*members, ws)
    run(main(), 60)


def test_media_byte_budget_drops_what_is_over(start_server):
    srv = start_server("--media-byte-rate", "1000", "--media-byte-burst", "3000")

    async def main():
        ws, host_tap, ev, members, (a,) = await live_event(srv, 1)
        before = metrics(srv)
        t0 = time.monotonic()
        sent = [media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i) for i in range(60)]
        for frame in sent:
            await ws.send(frame)
        await settle(ws, host_tap, a)
        elapsed = time.monotonic() - t0
        after = metrics(srv)
        limited = (metric_sum(after, "airwave_media_frames_dropped_total", 'reason="byte_rate_limited"')
                   - metric_sum(before, "airwave_media_frames_dropped_total", 'reason="byte_rate_limited"'))
        assert sum(len(f) for f in sent) > 6000
        received = sum(len(f.raw) for f in a.media())
        assert limited >= 1
        assert 3000 - max(len(f) for f in sent) <= received <= 3000 + 1000 * elapsed, (received, elapsed)
        await close_all(*members, ws)
    run(main(), 60)


def test_a_guest_cannot_take_a_verified_users_id_and_chat_says_who_was_verified(server):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        victim = uid("vic")
        verified = await join(server, ev, victim, verified=True, username="Vic")
        await send(verified.ws, {"type": "broadcast_message", "message": "from the real one"})
        msg, _ = await recv_until(verified.ws, "message_broadcast")
        assert msg["verified"] is True and msg["user_id"] == victim
        # Present or gone, the id stays the verified user's: a tokenless join is refused.
        await expect_refusal(server.ws(join_path(ev, victim, username="Vic")), "duplicate_user", 4409)
        await send(verified.ws, {"type": "leave_room"})
        await verified.ws.wait_closed()
        await expect_refusal(server.ws(join_path(ev, victim, username="Vic")), "duplicate_user", 4409)
        guest = await join(server, ev, uid("guest"), username="Gus")
        await send(guest.ws, {"type": "broadcast_message", "message": "from a guest"})
        msg, _ = await recv_until(guest.ws, "message_broadcast", pred=lambda m: m["message"] == "from a guest")
        assert msg["verified"] is False
        # The same flags in the stored history, and for a later joiner.
        stored = http_json(server, f"/api/streams/{ev}/chat")["messages"]
        assert [(m["message"], m["verified"]) for m in stored] == [("from the real one", True), ("from a guest", False)]
        later = await join(server, ev, uid("late"))
        assert [(m["message"], m["verified"]) for m in later.history["messages"]] == [("from the real one", True), ("from a guest", False)]
        await close_all(guest, later, ws)
    run(main(), 60)


def test_participants_are_paged(server):
    """The host first (as in participant_list), then the sessions in join order, a page at a time;
    the host takes a place on the first page and counts in participants_total."""
    async def main():
        host_id = uid("phost")
        ws, link = await go_live(server, host_id)
        ev = link["event_id"]
        members = [await join(server, ev, uid(f"p{i}")) for i in range(25)]
        ids = [host_id] + [m.user_id for m in members]
        info = http_json(server, f"/api/streams/{ev}")
        assert info["participants_total"] == 26 and info["next_after"] is None
        assert [p["user_id"] for p in info["participants"]] == ids
        assert info["participants"][0]["role"] == "host"

        def walk(limit):
            seen, after, pages = [], None, 0
            while True:
                page = http_json(server, f"/api/streams/{ev}?limit={limit}" + (f"&after={after}" if after is not None else ""))
                pages += 1
                assert page["participants_total"] == 26
                assert 1 <= len(page["participants"]) <= limit
                seen += [p["user_id"] for p in page["participants"]]
                after = page["next_after"]
                if after is None:
                    return seen, pages

        assert walk(10) == (ids, 3)
        assert walk(1) == (ids, 26)  # a first page of one is the host alone; next_after 0 continues
        assert walk(26) == (ids, 1)
        for bad in ("limit=0", "limit=1001", "limit=x", "after=-1", "after=abc"):
            status, _, body = http_get(server, f"/api/streams/{ev}?{bad}")
            assert status == 400 and b"bad_request" in body, bad
        await close_all(*members, ws)
    run(main(), 60)
