"""WebRTC end to end over 127.0.0.1 with aiortc (issue 8): WHEP listeners and WHIP speakers
against the real server, next to WebSocket hosts, co-hosts and listeners.

- A WHEP listener decodes the event mix (the host's 440 Hz tone), counts as a listener once
  connected (participant_count, participant_list), and hangs up with DELETE.
- A WHIP co-host's Opus reaches WebSocket listeners under its source id (every packet decodes
  with libopus, 660 Hz dominant) and is in the `?audio=mixed` mix; it never comes back to itself.
  The host may publish over WHIP too (source 1).
- When a WHIP co-host's role ends (`cohost_removed`, `cohost_left`) its audio stops at the notice
  and the server closes the session; a mute gates it without closing.
- A WHEP listener with a token hears the mix without its own (WHIP) voice.
- Per-speaker WHEP (`?audio=speakers`): three audio sections, the host (WebSocket PCM, 440 Hz)
  and a WHIP co-host (660 Hz) each on a track of their own, named by the RTP CSRC (source id);
  the co-host's own per-speaker listener never gets its voice.
- The HTTP errors of the routes (JSON bodies with `code`), including 503 over the session limit.
- Screen sharing to a WHEP listener as VP8 (keyframe first; a PLI becomes one throttled
  `keyframe_request`).

aiortc peers come from `webrtc_peer`, which makes aiortc gather 127.0.0.1 as its only host
candidate (see there). Audio is analysed by the power at a frequency (Goertzel, computed as one
DFT bin with numpy) compared with the power where no tone is, as in test_mix.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse

import numpy as np
import pytest

import opus_ctypes
import webrtc_peer as wp
from awtest import close_all, go_live, join, player_node, q, run, send, token, uid, wrong_signature_token
from test_media import HOST_SOURCE_ID, KIND_OPUS, KIND_SCREEN, VP8, Tap, is_media, make_cohost, media, sync_point
from test_mix import TONE_440, PCMPacer, join_mixed


# ---------------------------------------------------------------------------- analysis
def power(samples: np.ndarray, frequency: float, rate=48_000) -> float:
    """What test_mix's Goertzel filter computes (|DFT at `frequency`|²), vectorised."""
    n = np.arange(len(samples))
    return float(abs(np.dot(samples, np.exp(-2j * np.pi * frequency * n / rate))) ** 2)


def tone_powers(samples: np.ndarray):
    """Power at 440 Hz, 660 Hz and the louder of two frequencies where neither tone is."""
    return power(samples, 440), power(samples, 660), max(power(samples, 550), power(samples, 1000))


def decode_opus(frames) -> np.ndarray:
    """Decodes every payload in order on one libopus decoder; any packet libopus refuses fails."""
    decoder = opus_ctypes.Decoder(channels=1)
    out = []
    for i, f in enumerate(frames):
        try:
            out.append(np.asarray(decoder.decode(f.payload), dtype=np.float64))
        except opus_ctypes.OpusError as e:
            raise AssertionError(f"media frame {i} (seq {f.seq}, {len(f.payload)} bytes) is not valid Opus: {e}")
    return np.concatenate(out)


def location_path(resp, prefix) -> str:
    loc = resp.headers.get("location")
    assert loc, f"no Location header: {resp.headers}"
    path = urllib.parse.urlsplit(loc).path
    assert path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix):], (loc, prefix)
    return path


async def hears_two_speakers(listener, host_source, cohost_source):
    """A per-speaker listener hears the host (440 Hz) and the co-host (660 Hz) on two tracks, each
    named by its speaker's source id alone and free of the other's tone; returns the two tracks."""
    host_track, cohost_track = await listener.track_of(host_source), await listener.track_of(cohost_source)
    assert host_track != cohost_track, listener.csrcs
    for track, mine, other, source in ((host_track, 440, 660, host_source), (cohost_track, 660, 440, cohost_source)):
        collector = listener.collectors[track]
        mark = len(collector)
        await collector.wait_count(mark + 80, timeout=10, what=f"frames of the {mine} Hz track")
        samples = np.concatenate([wp.mono_samples(f) for f in collector.frames[mark + 20:mark + 80]])
        p_mine, p_other, off = power(samples, mine), power(samples, other), max(power(samples, 550), power(samples, 1000))
        assert p_mine > 100 * off and p_other < p_mine / 300, (track, mine, p_mine, p_other, off)
        assert listener.csrcs[track] == {source}, listener.csrcs
    return host_track, cohost_track


def check_answer(resp, prefix):
    assert resp.status == 201, f"expected 201 Created, got {resp}"
    assert resp.headers.get("content-type", "").split(";")[0].strip() == "application/sdp", resp.headers
    answer = resp.body.decode()
    assert "a=ice-lite" in answer, answer
    assert re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host", answer, re.I), answer
    return location_path(resp, prefix)


async def wait_count_msg(tap, count, start=0, timeout=5.0):
    """Index of the next participant_count with `count` (coalesced notices: bounded wait)."""
    return await tap.wait_text("participant_count", timeout=timeout, start=start, pred=lambda m: m["count"] == count)


async def cohost_event(server, mixed=False):
    """A WebSocket host, a verified listener B made co-host, a plain listener C (and optionally a
    `?audio=mixed` listener M). Returns (host ws, host tap, event id, B, B tap, C tap, M tap, source id)."""
    ws, link = await go_live(server, uid("host"), "Host")
    host_tap = Tap(ws, "host")
    ev = link["event_id"]
    b = await join(server, ev, uid("cohost"), verified=True)
    b_tap = Tap(b.ws, "cohost")
    c = await join(server, ev, uid("plain"))
    c_tap = Tap(c.ws, "plain")
    m_tap = None
    if mixed:
        m = await join_mixed(server, ev, uid("mixed"))
        m_tap = Tap(m.ws, "mixed")
    joined = await make_cohost(ws, host_tap, b, b_tap)
    sid = joined["source_id"]
    i = await c_tap.wait_text("cohost_joined", pred=lambda x: x["user_id"] == b.user_id)
    assert c_tap.frames[i][1]["source_id"] == sid
    return ws, host_tap, ev, b, b_tap, c_tap, m_tap, sid


async def stop_taps(*taps):
    for t in taps:
        if t is not None:
            await t.stop()


# ---------------------------------------------------------------------------- 1. WHEP listener
# Both SRTP profiles the server sends with OpenSSL: AEAD_AES_128_GCM (what aiortc and browsers
# pick first) and AES_CM_128_HMAC_SHA1_80 (peers that offer only that, as OBS does).
@pytest.mark.parametrize("srtp_profile", ["SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"])
def test_whep_listener_hears_the_host_and_counts_as_a_listener(server, srtp_profile):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host_tap = Tap(ws, "host")
        ev = link["event_id"]
        pacer = PCMPacer(ws, TONE_440)
        whep = wp.WhepListener(srtp_profile=srtp_profile)
        try:
            mark = len(host_tap)
            resp = await whep.negotiate(player_node(server).port, f"/whep/{q(ev)}")
            location = check_answer(resp, f"/whep/{ev}/")
            await whep.connected(10)
            assert whep.srtp_profiles() == [srtp_profile], whep.srtp_profiles()
            # Once ICE and DTLS are up it is a listener (host excluded from the count).
            await wait_count_msg(host_tap, 1, start=mark)
            i = await host_tap.wait_text("participant_list", start=mark, pred=lambda m: len(m["participants"]) == 2)
            whep_entry = host_tap.frames[i][1]["participants"][1]
            assert whep_entry["role"] == "listener", host_tap.frames[i][1]

            audio = await whep.collector("audio")
            await audio.wait_count(100, timeout=10, what="decoded audio frames")
            f0 = audio.frames[0]
            assert f0.sample_rate == 48_000 and f0.samples == 960, f0
            samples = np.concatenate([wp.mono_samples(f) for f in audio.frames[25:100]])
            p440, p660, off = tone_powers(samples)
            assert p440 > 100 * off and p440 > 100 * p660, (p440, p660, off)

            # Hang up: 200, and the listener is gone from the count.
            mark = len(host_tap)
            resp = await wp.request(player_node(server).port, "DELETE", location)
            assert resp.status == 200, resp
            await wait_count_msg(host_tap, 0, start=mark)
            await host_tap.wait_text("participant_list", start=mark, pred=lambda m: len(m["participants"]) == 1)
            resp = await wp.request(player_node(server).port, "DELETE", location)
            assert resp.status == 404, f"a second DELETE of the same session: {resp}"
        finally:
            await pacer.stop()
            await whep.close()
            await host_tap.stop()
            await close_all(ws)
    run(main(), 45)


# ---------------------------------------------------------------------------- 2. WHIP co-host
def test_whip_cohost_audio_reaches_websocket_listeners_as_opus(server):
    async def main():
        ws, host_tap, ev, b, b_tap, c_tap, m_tap, sid = await cohost_event(server, mixed=True)
        speaker = wp.WhipSpeaker(660)
        try:
            c_start, m_start, h_start = len(c_tap), len(m_tap), len(host_tap)
            resp = await speaker.negotiate(server.port, f"/whip/{q(ev)}", token=token(b.user_id))
            check_answer(resp, f"/whip/{ev}/")
            await speaker.connected(10)

            await c_tap.wait_count(is_media(lambda f: f.source == sid), 100, timeout=10, start=c_start,
                                   what="WHIP co-host frames")
            await m_tap.wait_count(is_media(), 100, timeout=10, start=m_start, what="mixed frames")
            await sync_point(ws, c_tap, m_tap, b_tap, host_tap)

            got = [f for f in c_tap.media(c_start) if f.source == sid]
            assert all(f.kind == KIND_OPUS for f in got), {f.kind for f in got}
            seqs = [f.seq for f in got]
            assert all(b_ > a for a, b_ in zip(seqs, seqs[1:])), f"sequence numbers not increasing: {seqs[:20]}"
            p440, p660, off = tone_powers(decode_opus(got)[960 * 20:])
            assert p660 > 100 * off and p660 > 100 * p440, (p440, p660, off)

            # The same audio is in the mix (the only speaker), source 0.
            mixed = m_tap.media(m_start)
            assert all(f.kind == KIND_OPUS and f.source == 0 for f in mixed), {(f.kind, f.source) for f in mixed}
            p440, p660, off = tone_powers(decode_opus(mixed)[-960 * 60:])
            assert p660 > 100 * off, (p440, p660, off)

            # The host hears it too; the co-host never gets its own voice back on its WebSocket.
            assert [f for f in host_tap.media(h_start) if f.source == sid], "the host received no WHIP audio"
            own = [f for f in b_tap.media() if f.source == sid or f.source == 0]
            assert own == [], f"the WHIP co-host received {len(own)} frames of its own audio on its WebSocket"
        finally:
            await speaker.close()
            await stop_taps(host_tap, b_tap, c_tap, m_tap)
            await close_all(ws, b.ws, c_tap.ws, m_tap.ws)
    run(main(), 45)


def test_whip_host_audio_reaches_listeners_under_the_host_source_id(server):
    """The host may publish over WHIP too (its WebSocket stays open for control): listeners get
    its audio as the host's source (1)."""
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        host_tap = Tap(ws, "host")
        ev = link["event_id"]
        c = await join(server, ev, uid("plain"))
        c_tap = Tap(c.ws, "plain")
        speaker = wp.WhipSpeaker(660)
        try:
            check_answer(await speaker.negotiate(server.port, f"/whip/{q(ev)}", token=token(host_id)), f"/whip/{ev}/")
            await speaker.connected(10)
            await c_tap.wait_count(is_media(), 60, timeout=10, what="host WHIP frames")
            await sync_point(ws, c_tap, host_tap)
            got = c_tap.media()
            assert {(f.kind, f.source) for f in got} == {(KIND_OPUS, HOST_SOURCE_ID)}, {(f.kind, f.source) for f in got}
            p440, p660, off = tone_powers(decode_opus(got)[960 * 20:])
            assert p660 > 100 * off, (p440, p660, off)
            assert host_tap.media() == [], "the host received its own WHIP audio on its WebSocket"
        finally:
            await speaker.close()
            await stop_taps(host_tap, c_tap)
            await close_all(ws, c.ws)
    run(main(), 45)


# ---------------------------------------------------------------------------- 3. demoted WHIP co-host
async def publish_whip_cohost(server, ev, b, c_tap, sid, frames):
    """B publishes 660 Hz over WHIP; returns the speaker and where C's tap stood before, once C
    has `frames` frames of B's source."""
    speaker = wp.WhipSpeaker(660)
    c_start = len(c_tap)
    try:
        resp = await speaker.negotiate(server.port, f"/whip/{q(ev)}", token=token(b.user_id))
        check_answer(resp, f"/whip/{ev}/")
        await speaker.connected(10)
        await c_tap.wait_count(is_media(lambda f: f.source == sid), frames, timeout=10, start=c_start,
                               what="WHIP co-host frames")
    except BaseException:
        await speaker.close()
        raise
    return speaker, c_start


@pytest.mark.parametrize("how", ["remove_cohost", "cohost_leave"])
def test_whip_cohost_is_cut_when_its_role_ends_and_closed(server, how):
    """The host demotes B (`cohost_removed`), or B steps down over its WebSocket (`cohost_left`):
    from that notice on no frame of B's source reaches anyone, and the server hangs up the WHIP
    session (DTLS close_notify, which aiortc turns into connectionState "closed")."""
    notice = "cohost_removed" if how == "remove_cohost" else "cohost_left"

    async def main():
        ws, host_tap, ev, b, b_tap, c_tap, _, sid = await cohost_event(server)
        speaker = None
        try:
            speaker, c_start = await publish_whip_cohost(server, ev, b, c_tap, sid, 25)
            if how == "remove_cohost":
                await send(ws, {"type": "remove_cohost", "participant_id": b.user_id, "username": b.user_id})
            else:
                await send(b.ws, {"type": "cohost_leave", "participant_id": b.user_id})
            removed = {}
            for tap in (c_tap, host_tap):
                removed[tap.name] = await tap.wait_text(notice, pred=lambda x: x["user_id"] == b.user_id)
            removed_at = c_tap.frames[removed["plain"]][0]

            # The server hangs up the WHIP session.
            await speaker.wait_state({"closed", "failed"}, timeout=5)

            # A bounded window after the notice: nothing of B's source on either socket.
            await asyncio.sleep(max(0.0, removed_at + 1.5 - time.monotonic()))
            await sync_point(ws, c_tap, host_tap)
            for tap in (c_tap, host_tap):
                idx = removed[tap.name]
                before = [f for f in tap.media(c_start if tap is c_tap else 0, idx) if f.source == sid]
                after = [f for f in tap.media(idx + 1) if f.source == sid]
                assert len(before) >= 25, f"{tap.name}: only {len(before)} frames before {notice}"
                assert after == [], (f"{tap.name}: {len(after)} frames of the WHIP co-host after {notice} "
                                     f"(seqs {[f.seq for f in after[:10]]})")
        finally:
            if speaker:
                await speaker.close()
            await stop_taps(host_tap, b_tap, c_tap)
            await close_all(ws, b.ws, c_tap.ws)
    run(main(), 45)


def test_muted_whip_cohost_is_silent_until_unmuted_and_stays_connected(server):
    """Mute gates WHIP audio like WebSocket audio: nothing between `muted` and `unmuted` on a
    listener's socket, and the WHIP session is not closed by a mute."""
    async def main():
        ws, host_tap, ev, b, b_tap, c_tap, _, sid = await cohost_event(server)
        speaker = None
        try:
            speaker, c_start = await publish_whip_cohost(server, ev, b, c_tap, sid, 10)
            await send(ws, {"type": "mute", "user_id": b.user_id})
            muted = await c_tap.wait_text("muted", start=c_start, pred=lambda x: x["user_id"] == b.user_id)
            sent_at_mute = speaker.track.frames_sent
            # A bounded window while aiortc keeps sending.
            await asyncio.sleep(max(0.0, c_tap.frames[muted][0] + 0.6 - time.monotonic()))
            assert speaker.track.frames_sent - sent_at_mute >= 20, "aiortc did not keep sending while muted"
            await send(ws, {"type": "unmute", "user_id": b.user_id})
            unmuted = await c_tap.wait_text("unmuted", start=muted, pred=lambda x: x["user_id"] == b.user_id)
            await c_tap.wait_count(is_media(lambda f: f.source == sid), 10, timeout=5, start=unmuted,
                                   what="WHIP frames after unmute")
            during = [f for f in c_tap.media(muted + 1, unmuted) if f.source == sid]
            assert during == [], f"{len(during)} WHIP frames between muted and unmuted"
            assert speaker.pc.connectionState == "connected", speaker.states
        finally:
            if speaker:
                await speaker.close()
            await stop_taps(host_tap, b_tap, c_tap)
            await close_all(ws, b.ws, c_tap.ws)
    run(main(), 45)


def test_whep_listener_with_token_hears_the_mix_without_its_own_whip_voice(server):
    """The browser co-host shape: B publishes over WHIP (660 Hz) and listens over WHEP with its
    token; the host talks over its WebSocket (440 Hz). B's WHEP mix holds the host only, an
    anonymous WHEP listener's mix holds both."""
    async def main():
        ws, host_tap, ev, b, b_tap, c_tap, _, sid = await cohost_event(server)
        pacer = PCMPacer(ws, TONE_440)
        speaker = wp.WhipSpeaker(660)
        own, anon = wp.WhepListener(), wp.WhepListener()
        try:
            resp = await speaker.negotiate(server.port, f"/whip/{q(ev)}", token=token(b.user_id))
            check_answer(resp, f"/whip/{ev}/")
            check_answer(await own.negotiate(player_node(server).port, f"/whep/{q(ev)}", token=token(b.user_id)), f"/whep/{ev}/")
            check_answer(await anon.negotiate(player_node(server).port, f"/whep/{q(ev)}"), f"/whep/{ev}/")
            for peer in (speaker, own, anon):
                await peer.connected(10)
            await c_tap.wait_count(is_media(lambda f: f.source == sid), 5, timeout=10, what="WHIP co-host frames")
            collectors = [await own.collector("audio"), await anon.collector("audio")]
            marks = [len(c) for c in collectors]
            for c, mark in zip(collectors, marks):
                await c.wait_count(mark + 80, timeout=10, what="mixed frames with both speakers")
            own_samples, anon_samples = (np.concatenate([wp.mono_samples(f) for f in c.frames[mark + 20:mark + 80]])
                                         for c, mark in zip(collectors, marks))
            p440, p660, off = tone_powers(anon_samples)
            assert p440 > 100 * off and p660 > 100 * off, ("anonymous WHEP listener", p440, p660, off)
            p440, p660, off = tone_powers(own_samples)
            assert p440 > 100 * off, ("B's WHEP listener", p440, off)
            assert p660 < p440 / 300, f"B hears its own WHIP voice in its WHEP mix: {(p440, p660)}"
        finally:
            await pacer.stop()
            for peer in (speaker, own, anon):
                await peer.close()
            await stop_taps(host_tap, b_tap, c_tap)
            await close_all(ws, b.ws, c_tap.ws)
    run(main(), 45)


def test_whep_per_speaker_tracks_are_named_by_csrc(server):
    """`?audio=speakers`: the host (WebSocket PCM, 440 Hz) and co-host B (WHIP, 660 Hz) arrive on two
    of three tracks, each packet naming its speaker as CSRC, each track one tone; B's own
    per-speaker listener (its token) gets the host and never B."""
    async def main():
        ws, host_tap, ev, b, b_tap, c_tap, _, sid = await cohost_event(server)
        pacer = PCMPacer(ws, TONE_440)
        speaker = wp.WhipSpeaker(660)
        anon, own = wp.WhepSpeakersListener(3), wp.WhepSpeakersListener(3)
        try:
            check_answer(await speaker.negotiate(server.port, f"/whip/{q(ev)}", token=token(b.user_id)), f"/whip/{ev}/")
            resp = await anon.negotiate(player_node(server).port, f"/whep/{q(ev)}?audio=speakers")
            check_answer(resp, f"/whep/{ev}/")
            audio = [m for m in resp.body.decode().split("m=")[1:] if m.startswith("audio")]
            assert len(audio) == 3 and all(not m.startswith("audio 0 ") for m in audio), resp.body.decode()
            ssrcs = {re.search(r"a=ssrc:(\d+) cname:", m).group(1) for m in audio}
            assert len(ssrcs) == 3, resp.body.decode()
            check_answer(await own.negotiate(player_node(server).port, f"/whep/{q(ev)}?audio=speakers", token=token(b.user_id)),
                         f"/whep/{ev}/")
            for peer in (speaker, anon, own):
                await peer.connected(10)

            host_track, cohost_track = await hears_two_speakers(anon, 1, sid)
            # The third track carries nobody.
            assert [anon.csrcs[i] for i in range(3) if i not in (host_track, cohost_track)] == [set()], anon.csrcs

            own_host = await own.track_of(1)
            await own.collectors[own_host].wait_count(len(own.collectors[own_host]) + 50, timeout=10)
            assert all(sid not in seen for seen in own.csrcs.values()), f"B gets its own voice: {own.csrcs}"
        finally:
            await pacer.stop()
            for peer in (speaker, anon, own):
                await peer.close()
            await stop_taps(host_tap, b_tap, c_tap)
            await close_all(ws, b.ws, c_tap.ws)
    run(main(), 45)


def test_whep_sessions_beyond_the_limit_get_503(start_server):
    srv = start_server("--webrtc-max-sessions", "1", env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        path = f"/whep/{q(link['event_id'])}"
        offer = await wp.make_offer("whep")
        first = await wp.post_offer(srv.port, path, offer)
        location = check_answer(first, path + "/")
        problem = error_problem(await wp.post_offer(srv.port, path, await wp.make_offer("whep")), 503, "server_busy")
        assert problem is None, f"a second session over --webrtc-max-sessions 1: {problem}"
        assert (await wp.request(srv.port, "DELETE", location)).status == 200
        check_answer(await wp.post_offer(srv.port, path, await wp.make_offer("whep")), path + "/")
        await close_all(ws)
    run(main(), 30)


def test_webrtc_settings_announce_and_disable(start_server):
    """--webrtc-announce puts that address into the answer's candidates (NAT, containers);
    --disable-webrtc binds no UDP port and the routes answer 503."""
    announced = start_server("--webrtc-announce", "203.0.113.9", env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})
    disabled = start_server("--disable-webrtc", env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        ws, link = await go_live(announced, uid("host"), "Host")
        resp = await wp.post_offer(announced.port, f"/whep/{q(link['event_id'])}", await wp.make_offer("whep"))
        assert resp.status == 201, resp
        candidates = re.findall(r"a=candidate:\S+ 1 udp \d+ (\S+) \d+ typ host", resp.body.decode())
        assert candidates and set(candidates) == {"203.0.113.9"}, candidates
        await close_all(ws)

        ws, link = await go_live(disabled, uid("host"), "Host")
        for route in ("whep", "whip"):
            resp = await wp.post_offer(disabled.port, f"/{route}/{q(link['event_id'])}", await wp.make_offer(route),
                                       token=token(uid("someone")) if route == "whip" else None)
            problem = error_problem(resp, 503, "server_busy")
            assert problem is None, f"{route} with --disable-webrtc: {problem}"
        await close_all(ws)
    run(main(), 30)


# ---------------------------------------------------------------------------- 4. HTTP errors
def test_whep_whip_http_errors(server):
    async def main():
        whep_offer = await wp.make_offer("whep")
        whip_offer = await wp.make_offer("whip")
        video_only = await wp.make_offer("video")
        no_fingerprint = "".join(l for l in whep_offer.splitlines(keepends=True) if not l.startswith("a=fingerprint"))
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        ev = link["event_id"]
        listener = await join(server, ev, uid("lis"), verified=True)
        # An event that has ended.
        ws2, link2 = await go_live(server, uid("host"), "Host")
        ended = link2["event_id"]
        await send(ws2, {"type": "stream_ended", "event_id": ended})
        try:
            await asyncio.wait_for(ws2.wait_closed(), 5)
        finally:
            await close_all(ws2)

        port = server.port
        cases = [
            ("malformed SDP", f"/whep/{q(ev)}", "v=0\r\nthis is not an SDP offer\r\n", None, "application/sdp",
             400, "bad_request"),
            ("offer without audio", f"/whep/{q(ev)}", video_only, None, "application/sdp", 400, "bad_request"),
            ("offer without fingerprint", f"/whep/{q(ev)}", no_fingerprint, None, "application/sdp", 400,
             "bad_request"),
            ("WHIP without token", f"/whip/{q(ev)}", whip_offer, None, "application/sdp", 401, "unauthorized"),
            ("WHIP with a bad token", f"/whip/{q(ev)}", whip_offer, wrong_signature_token(host_id),
             "application/sdp", 401, "unauthorized"),
            ("WHEP with a bad token", f"/whep/{q(ev)}", whep_offer, "not-a-token", "application/sdp", 401,
             "unauthorized"),
            ("WHIP as a listener", f"/whip/{q(ev)}", whip_offer, token(listener.user_id), "application/sdp", 403,
             "not_allowed"),
            ("WHIP as a stranger", f"/whip/{q(ev)}", whip_offer, token(uid("stranger")), "application/sdp", 403,
             "not_allowed"),
            ("WHEP unknown event", f"/whep/{q(uid('nope'))}", whep_offer, None, "application/sdp", 404,
             "event_not_found"),
            ("WHEP ended event", f"/whep/{q(ended)}", whep_offer, None, "application/sdp", 410, "event_ended"),
            ("WHEP text/plain", f"/whep/{q(ev)}", whep_offer, None, "text/plain", 415, "bad_request"),
            ("WHEP audio=other", f"/whep/{q(ev)}?audio=separate", whep_offer, None, "application/sdp", 400,
             "bad_request"),
            ("WHEP audio=speakers with one audio section", f"/whep/{q(ev)}?audio=speakers", whep_offer, None,
             "application/sdp", 400, "bad_request"),
        ]
        failures = []
        for name, path, body, tok, ctype, status, code in cases:
            resp = await wp.post_offer(port, path, body, tok, content_type=ctype)
            problem = error_problem(resp, status, code)
            if problem:
                failures.append(f"{name}: POST {path}: {problem}")
        for path in (f"/whep/{q(ev)}/{uid('session')}", f"/whip/{q(ev)}/{uid('session')}"):
            resp = await wp.request(port, "DELETE", path)
            problem = error_problem(resp, 404, None)
            if problem:
                failures.append(f"DELETE unknown session {path}: {problem}")
        await close_all(ws, listener)
        assert not failures, "\n".join(failures)
    run(main(), 45)


def error_problem(resp, status, code):
    """What is wrong with an error response (None if it is right): the status and a JSON body
    {"type":"error","code":…,"message":…}."""
    if resp.status != status:
        return f"expected {status}, got {resp}"
    try:
        body = resp.json()
    except ValueError:
        return f"body is not JSON: {resp}"
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return f"no `code` in {body}"
    if code is not None and body["code"] != code:
        return f"expected code {code!r}, got {body}"
    if body.get("type") != "error" or not isinstance(body.get("message"), str):
        return f"not an error object: {body}"
    return None


# ---------------------------------------------------------------------------- 5. screen via WHEP
def vp8_start(payload: bytes):
    """For one VP8 RTP payload (RFC 7741): (S bit, partition id, keyframe or None when the VP8
    payload header is not in this packet)."""
    b0 = payload[0]
    i = 1
    if b0 & 0x80:  # X
        x = payload[i]
        i += 1
        if x & 0x80:  # I
            i += 2 if payload[i] & 0x80 else 1
        if x & 0x40:  # L
            i += 1
        if x & 0x30:  # T or K
            i += 1
    start, pid = bool(b0 & 0x10), b0 & 0x07
    key = (payload[i] & 0x01) == 0 if start and pid == 0 else None
    return start, pid, key


def test_screen_reaches_a_whep_listener_as_vp8_keyframe_first(server):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host_tap = Tap(ws, "host")
        ev = link["event_id"]
        await send(ws, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8",
                        "width": 320, "height": 180})
        await host_tap.wait_text("stream_mode_changed", pred=lambda m: m["mode"] == "screen")
        stop = asyncio.Event()

        async def share():
            """The clip, looped at 15 fps (a keyframe every 10 frames)."""
            t0, k = time.monotonic(), 0
            while not stop.is_set():
                flags, ts, payload = VP8[k % len(VP8)]
                await ws.send(media(KIND_SCREEN, payload, seq=k, ts=ts + 180_000 * (k // len(VP8)), flags=flags))
                k += 1
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, t0 + k / 15 - time.monotonic()))
                except asyncio.TimeoutError:
                    pass
        sharer = asyncio.create_task(share())

        whep = wp.WhepListener(video=True)
        packets, plis = [], []
        receiver = whep.video_transceiver.receiver
        handle_rtp, send_pli = receiver._handle_rtp_packet, receiver._send_rtcp_pli

        async def recording_handle_rtp(packet, *args, **kwargs):
            packets.append(packet)
            await handle_rtp(packet, *args, **kwargs)

        async def recording_send_pli(media_ssrc):
            plis.append(time.monotonic())
            await send_pli(media_ssrc)
        receiver._handle_rtp_packet, receiver._send_rtcp_pli = recording_handle_rtp, recording_send_pli
        try:
            resp = await whep.negotiate(player_node(server).port, f"/whep/{q(ev)}")
            check_answer(resp, f"/whep/{ev}/")
            m = re.search(r"a=rtpmap:(\d+) VP8/90000", resp.body.decode())
            assert m and "m=video" in resp.body.decode(), f"no VP8 video in the answer:\n{resp.body.decode()}"
            vp8_pt = int(m.group(1))
            await whep.connected(10)
            video = await whep.collector("video")
            await video.wait_count(5, timeout=10, what="decoded VP8 frames")
            assert (video.frames[0].width, video.frames[0].height) == (320, 180), video.frames[0]

            # The first VP8 packet starts a frame, and that frame is a keyframe; aiortc never had to ask.
            vp8 = [p for p in packets if p.payload_type == vp8_pt and p.payload]
            assert vp8, f"no VP8 RTP (payload types {sorted({p.payload_type for p in packets})})"
            start, pid, key = vp8_start(vp8[0].payload)
            assert start and pid == 0 and key, f"first VP8 packet: S={start} PID={pid} keyframe={key}"
            assert plis == [], f"aiortc sent {len(plis)} PLIs (it could not decode what it got)"

            # A PLI from the WHEP listener reaches the host as keyframe_request (one a second at most:
            # wait out the window of any earlier request).
            earlier = [t for t, f in host_tap.frames if isinstance(f, dict) and f.get("type") == "keyframe_request"]
            if earlier:
                await asyncio.sleep(max(0.0, earlier[-1] + 1.1 - time.monotonic()))
            mark = len(host_tap)
            await whep.send_pli()
            i = await host_tap.wait_text("keyframe_request", start=mark, timeout=3)
            # Throttled: more PLIs right away give no second request within the second.
            for _ in range(3):
                await whep.send_pli()
            await asyncio.sleep(max(0.0, host_tap.frames[i][0] + 0.7 - time.monotonic()))
            more = host_tap.texts(i + 1, type_="keyframe_request")
            assert more == [], f"{len(more)} more keyframe_requests within 0.7 s of the first: {more}"
        finally:
            stop.set()
            await asyncio.wait_for(sharer, 5)
            await whep.close()
            await host_tap.stop()
            await close_all(ws)
    run(main(), 45)
