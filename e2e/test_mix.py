"""The event mix end to end (docs/protocol.md "Event mix"): `?audio=mixed` listeners receive one
stream (source id 0) holding every speaker, a mixed co-host hears everyone but itself,
`active_speakers` orders speakers by loudness, and the host records the mix to an Ogg Opus file
that ffmpeg and opusinfo read, listed and downloaded over HTTP with the host's token only.

Speakers send the tone fixtures as PCM (the server encodes them, as for any PCM speaker); the
mixed stream is decoded here with libopus and analysed with a Goertzel filter.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

import opus_ctypes
from awtest import close_all, connect, go_live, host_path, join, join_path, q, recv_json, run, send, token, uid
from test_media import (FLAG_STEREO, KIND_OPUS, KIND_PCM, SPEECH, Tap, _read, is_media, make_cohost, media,
                        sync_point)

TONE_440 = _read("tone-440hz-mono.pcm")          # 1 s mono, −6 dBFS
TONE_660 = _read("tone-660hz-stereo.pcm")        # 0.5 s stereo
FFMPEG = shutil.which("ffmpeg")
OPUSINFO = shutil.which("opusinfo")


class Joined:
    def __init__(self, ws, user_id):
        self.ws, self.user_id = ws, user_id


async def join_mixed(srv, event_id, user_id, verified=True):
    """Joins with `?audio=mixed` (and a token when verified); checks the usual first frames."""
    path = join_path(event_id, user_id) + "?audio=mixed"
    if verified:
        path += "&token=" + q(token(user_id))
    # Across the cascade (conftest's AIRWAVE_E2E_LISTENERS_ON_EDGE) mixed listeners join the edge too.
    ws = await connect(getattr(srv, "listener_node", srv).ws(path))
    assert (await recv_json(ws, 10))["type"] == "stream_state"
    assert (await recv_json(ws, 10))["type"] == "chat_history"
    return Joined(ws, user_id)


class PCMPacer:
    """Sends a looped PCM fixture in 20 ms frames at real-time pace, in the background."""

    def __init__(self, ws, pcm: bytes, stereo=False, gain=1.0):
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * gain
        self.pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
        self.ws, self.stereo = ws, stereo
        self.frame_bytes = 1920 * (2 if stereo else 1)
        self.sent = 0
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        t0 = time.monotonic()
        offset = 0
        while not self._stop.is_set():
            chunk = self.pcm[offset:offset + self.frame_bytes]
            if len(chunk) < self.frame_bytes:
                offset = 0
                chunk = self.pcm[:self.frame_bytes]
            offset += self.frame_bytes
            await self.ws.send(media(KIND_PCM, chunk, seq=self.sent, ts=self.sent * 960,
                                     flags=FLAG_STEREO if self.stereo else 0))
            self.sent += 1
            delay = t0 + self.sent * 0.02 - time.monotonic()
            try:
                await asyncio.wait_for(self._stop.wait(), max(delay, 0))
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        self._stop.set()
        await asyncio.wait_for(self.task, 5)


def decode(frames) -> np.ndarray:
    decoder = opus_ctypes.Decoder(channels=1)
    return np.concatenate([np.asarray(decoder.decode(f.payload), dtype=np.float64) for f in frames])


def goertzel(samples: np.ndarray, frequency: float, rate=48_000) -> float:
    coefficient = 2 * np.cos(2 * np.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coefficient * s1 * s2


def tone_powers(samples: np.ndarray):
    """Power at 440 Hz, 660 Hz and the louder of two frequencies where neither tone is."""
    return goertzel(samples, 440), goertzel(samples, 660), max(goertzel(samples, 550), goertzel(samples, 1000))


# ---------------------------------------------------------------------------- mixed stream
def test_mixed_listener_gets_both_speakers_and_mixed_cohost_gets_mix_minus(server):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host_tap = Tap(ws, "host")
        event_id = link["event_id"]
        mixed = await join_mixed(server, event_id, uid("mixed"))
        cohost = await join_mixed(server, event_id, uid("cohost"))
        plain_id = uid("plain")
        plain_ws = await connect(server.ws(join_path(event_id, plain_id)))
        mixed_tap, cohost_tap, plain_tap = Tap(mixed.ws, "mixed"), Tap(cohost.ws, "cohost"), Tap(plain_ws, "plain")
        await make_cohost(ws, host_tap, cohost, cohost_tap)
        start = [len(t) for t in (mixed_tap, cohost_tap, plain_tap)]
        host_pacer = PCMPacer(ws, TONE_440)
        cohost_pacer = PCMPacer(cohost.ws, TONE_660, stereo=True)
        await mixed_tap.wait_count(is_media(), 100, timeout=15, start=start[0], what="mixed frames")
        await host_pacer.stop()
        await cohost_pacer.stop()
        await sync_point(ws, mixed_tap, cohost_tap, plain_tap)

        got = mixed_tap.media(start[0])
        assert all(f.kind == KIND_OPUS and f.source == 0 for f in got), {(f.kind, f.source) for f in got}
        seqs = [f.seq for f in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the mixed stream has gaps"
        assert [f.ts - got[0].ts for f in got] == [960 * i for i in range(len(got))]
        samples = decode(got)[960 * 20:960 * 90]
        p440, p660, off = tone_powers(samples)
        assert p440 > 100 * off and p660 > 100 * off, (p440, p660, off)

        # The co-host hears the mix without its own voice, and no separate stream at all.
        own = cohost_tap.media(start[1])
        assert own and all(f.source == 0 for f in own), {f.source for f in own}
        p440, p660, off = tone_powers(decode(own)[960 * 20:960 * 90])
        assert p440 > 100 * off, (p440, off)
        assert p660 < p440 / 300, (p440, p660)

        # A listener who did not ask for the mix gets one stream per speaker, never source 0.
        separate = plain_tap.media(start[2])
        assert {f.source for f in separate} == {1, 2}, {f.source for f in separate}
        await close_all(ws, mixed.ws, cohost.ws, plain_ws)
    run(main(), 90)


def test_muted_speaker_is_out_of_the_mix_after_the_notice(server):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host_tap = Tap(ws, "host")
        event_id = link["event_id"]
        cohost = await join_mixed(server, event_id, uid("cohost"), verified=True)
        cohost_tap = Tap(cohost.ws, "cohost")
        listener = await join_mixed(server, event_id, uid("mixed"))
        tap = Tap(listener.ws, "mixed")
        await make_cohost(ws, host_tap, cohost, cohost_tap)
        start = len(tap)
        host_pacer = PCMPacer(ws, TONE_440)
        cohost_pacer = PCMPacer(cohost.ws, TONE_660, stereo=True)
        await tap.wait_count(is_media(), 60, timeout=15, start=start, what="mixed frames")
        await send(ws, {"type": "mute", "user_id": cohost.user_id})
        muted_at = await tap.wait_text("muted", pred=lambda m: m["user_id"] == cohost.user_id)
        await tap.wait_count(is_media(), 60, timeout=15, start=muted_at, what="frames after muted")
        await host_pacer.stop()
        await cohost_pacer.stop()
        before = tap.media(start, muted_at)
        after = tap.media(muted_at)
        p440, p660, off = tone_powers(decode(before)[960 * 20:])
        assert p660 > 100 * off, "the co-host was not in the mix before the mute"
        # Every packet after the notice, decoded on its own decoder: no trace of the co-host.
        p440, p660, off = tone_powers(decode(after))
        assert p440 > 100 * off and p660 < p440 / 300, (p440, p660, off)
        await close_all(ws, cohost.ws, listener.ws)
    run(main(), 90)


# ---------------------------------------------------------------------------- active speakers
def test_active_speakers_loudest_first_at_most_four_a_second(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        host_tap = Tap(ws, "host")
        event_id = link["event_id"]
        cohost = await join_mixed(server, event_id, uid("cohost"))
        cohost_tap = Tap(cohost.ws, "cohost")
        listener = await join_mixed(server, event_id, uid("mixed"))
        tap = Tap(listener.ws, "mixed")
        await make_cohost(ws, host_tap, cohost, cohost_tap)
        start = len(tap)
        t0 = time.monotonic()
        # The host's client sends its own level (reserved byte 0x80 | 10: −10 dBov, level 117);
        # the co-host's quiet tone (−26 dBFS) is measured by the mixer (about level 98).
        cohost_pacer = PCMPacer(cohost.ws, TONE_440, gain=0.1)
        for i in range(100):
            await ws.send(media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960, reserved=0x80 | 10))
            await asyncio.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
        await cohost_pacer.stop()
        await sync_point(ws, tap)
        elapsed = time.monotonic() - t0
        lists = [m["speakers"] for m in tap.texts(start, type_="active_speakers")]
        both = [s for s in lists if len(s) == 2]
        assert both, lists
        assert [s["user_id"] for s in both[-1]] == [host_id, cohost.user_id], both[-1]
        host_level, cohost_level = both[-1][0]["level"], both[-1][1]["level"]
        assert host_level == 117, both[-1]
        assert 85 <= cohost_level <= 110, both[-1]
        # At most 4 a second, and never the same list twice in a row.
        assert len(lists) <= 4 * elapsed + 1, (len(lists), elapsed)
        assert all(a != b for a, b in zip(lists, lists[1:])), lists
        # The same bytes for everyone: the host saw the same sequence.
        assert [m["speakers"] for m in host_tap.texts(type_="active_speakers")][-len(lists):] == lists
        await close_all(ws, cohost.ws, listener.ws)
    run(main(), 90)


def test_active_speakers_without_mix_or_client_levels(server):
    """An ordinary event: nobody takes the mix, no client sends a level. The server decodes each
    speaker's audio for its level (the engine's `measure_level` route), so listeners still learn
    who is talking, loudest first, at most 4 a second, and an empty list once everyone stopped."""
    async def main():
        from test_media import live_event
        ws, host_tap, event_id, (listener, cohost), (tap, cohost_tap) = await live_event(server, listeners=2)
        await make_cohost(ws, host_tap, cohost, cohost_tap)
        start = len(tap)
        t0 = time.monotonic()
        # The host sends Opus speech without a level; the co-host sends a quiet tone as PCM (the
        # server encodes it, then measures the encoded Opus): about −26 dBFS, level ≈ 98.
        cohost_pacer = PCMPacer(cohost.ws, TONE_440, gain=0.1)
        for i in range(100):
            await ws.send(media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960))
            await asyncio.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
        await cohost_pacer.stop()
        elapsed = time.monotonic() - t0
        # Levels go stale 400 ms after the last packet: the list then empties.
        await tap.wait_text("active_speakers", 5, start=start, pred=lambda m: m["speakers"] == [])
        await sync_point(ws, tap)
        lists = [m["speakers"] for m in tap.texts(start, type_="active_speakers")]
        host_id = listener.state["host"]["user_id"]
        both = [s for s in lists if {e["user_id"] for e in s} == {host_id, cohost.user_id}]
        assert both, lists
        levels = {e["user_id"]: e["level"] for e in both[-1]}
        assert 85 <= levels[cohost.user_id] <= 110, both[-1]
        assert [e["level"] for e in both[-1]] == sorted(levels.values(), reverse=True), both[-1]
        assert lists[-1] == [], lists
        # At most 4 a second (250 ms apart, less the network's jitter), never the same list twice in a row.
        times = [t for t, f in tap.frames[start:] if isinstance(f, dict) and f.get("type") == "active_speakers"]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(gap >= 0.2 for gap in gaps), gaps
        assert times[-1] - t0 >= elapsed, (times[-1] - t0, elapsed)
        assert all(a != b for a, b in zip(lists, lists[1:])), lists
        # Separate streams still went out: the listener heard the host's packets.
        assert any(is_media()(f) for _, f in tap.frames[start:]), "no media reached the listener"
        await close_all(ws, listener.ws, cohost.ws)
    run(main(), 90)


def test_a_late_joiner_gets_the_current_speakers_at_once(server):
    """`active_speakers` goes out only on change: someone who joins while the host talks at a
    steady level gets the current list right after its catch-up, not after the next change."""
    async def main():
        from test_media import live_event
        ws, host_tap, event_id, members, (tap,) = await live_event(server, listeners=1)
        t0 = time.monotonic()

        async def speak():
            for i in range(150):  # 3 s of speech with a steady client level (RFC 6464 30 → 97)
                frame = bytearray(media(KIND_OPUS, SPEECH[i % len(SPEECH)], seq=i, ts=i * 960))
                frame[3] = 0x80 | 30
                await ws.send(bytes(frame))
                await asyncio.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
        speaking = asyncio.create_task(speak())
        await tap.wait_text("active_speakers", 5, pred=lambda m: m["speakers"] != [])
        late = await join(server, event_id, uid("late"))
        late_tap = Tap(late.ws, "late")
        i = await late_tap.wait_text("active_speakers", 2)
        host_id = late.state["host"]["user_id"]
        assert late_tap.frames[i][1]["speakers"] == [{"user_id": host_id, "level": 97}]
        assert not speaking.done(), "the host stopped before the late joiner's list arrived"
        await speaking
        await close_all(ws, late.ws, *members)
    run(main(), 60)


# ---------------------------------------------------------------------------- recording
def http_request(srv, path, tok=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {tok}"} if tok else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def ffmpeg_samples(path) -> int:
    """Decodes with ffmpeg (errors fail) and returns the 48 kHz mono sample count."""
    out = subprocess.run([FFMPEG, "-v", "error", "-xerror", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr.decode()[-2000:]
    return len(out.stdout) // 2


@pytest.mark.skipif(FFMPEG is None or OPUSINFO is None, reason="needs ffmpeg and opusinfo (tools/setup --tests)")
def test_recording_start_stop_list_download(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        host_tap = Tap(ws, "host")
        event_id = link["event_id"]
        listener_id = uid("lis")
        lis_ws = await connect(server.ws(join_path(event_id, listener_id, token(listener_id))))
        lis_tap = Tap(lis_ws, "listener")
        await lis_tap.wait_text("chat_history")

        await send(lis_ws, {"type": "recording_start"})
        await lis_tap.wait_text("error", pred=lambda m: m["code"] == "not_allowed")

        pacer = PCMPacer(ws, TONE_440)
        await send(ws, {"type": "recording_start"})
        i = await lis_tap.wait_text("recording_started")
        started = lis_tap.frames[i]
        assert started[1]["recording"] == "1.opus"
        await asyncio.sleep(2.0)
        await send(ws, {"type": "recording_stop"})
        j = await lis_tap.wait_text("recording_stopped")
        stopped = lis_tap.frames[j]
        assert stopped[1]["recording"] == "1.opus"
        await pacer.stop()
        await send(ws, {"type": "recording_stop"})
        await host_tap.wait_text("error", pred=lambda m: m["code"] == "not_recording")
        expected_seconds = stopped[0] - started[0]

        path = os.path.join(server.data_dir, "recordings", event_id, "1.opus")
        assert os.path.isfile(path), os.listdir(server.data_dir)
        samples = ffmpeg_samples(path)
        assert abs(samples / 48_000 - expected_seconds) <= 0.040, (samples / 48_000, expected_seconds)
        info = subprocess.run([OPUSINFO, path], capture_output=True, text=True, timeout=30)
        assert info.returncode == 0, info.stdout + info.stderr
        assert "error" not in (info.stdout + info.stderr).lower(), info.stdout + info.stderr
        assert "warning" not in (info.stdout + info.stderr).lower(), info.stdout + info.stderr

        # The mix that was recorded holds the host's tone.
        decoded = subprocess.run([FFMPEG, "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                                 capture_output=True, timeout=60).stdout
        pcm = np.frombuffer(decoded, dtype="<i2").astype(np.float64)[48_000 // 2:48_000 * 3 // 2]
        p440, _, off = tone_powers(pcm)
        assert p440 > 100 * off

        # Listing and download: the host's token only.
        base = f"/api/streams/{event_id}/recordings"
        assert http_request(server, base)[0] == 401
        assert http_request(server, base, "not-a-token")[0] == 401
        assert http_request(server, base, token(listener_id))[0] == 403
        status, ctype, body = http_request(server, base, token(host_id))
        assert status == 200 and "application/json" in ctype, (status, body[:200])
        listing = json.loads(body)
        assert listing["event_id"] == event_id
        [item] = listing["recordings"]
        assert item["name"] == "1.opus" and item["size"] == os.path.getsize(path)
        assert abs(item["duration_ms"] - samples / 48) <= 1, (item, samples)
        status, ctype, body = http_request(server, item["url"], token(host_id))
        assert status == 200 and ctype == "audio/ogg"
        with open(path, "rb") as f:
            assert body == f.read()
        assert http_request(server, item["url"], token(listener_id))[0] == 403
        assert http_request(server, f"{base}/2.opus", token(host_id))[0] == 404
        assert http_request(server, f"{base}/..%2Fairwave.sqlite", token(host_id))[0] in (400, 404)
        assert http_request(server, f"/api/streams/nope{uid('e')}/recordings", token(host_id))[0] == 404

        # Ending the event finishes a running recording.
        await send(ws, {"type": "recording_start"})
        await lis_tap.wait_text("recording_started", pred=lambda m: m["recording"] == "2.opus")
        await send(ws, {"type": "stream_ended"})
        k = await lis_tap.wait_text("recording_stopped", pred=lambda m: m["recording"] == "2.opus")
        e = await lis_tap.wait_text("stream_ended", start=k)
        assert [t["type"] for t in lis_tap.texts(k, e + 1)] == ["recording_stopped", "stream_ended"]
        second = os.path.join(server.data_dir, "recordings", event_id, "2.opus")
        ffmpeg_samples(second)
        info = subprocess.run([OPUSINFO, second], capture_output=True, text=True, timeout=30)
        assert info.returncode == 0 and "warning" not in (info.stdout + info.stderr).lower(), info.stdout + info.stderr
        await close_all(ws, lis_ws)
    run(main(), 90)


@pytest.mark.skipif(FFMPEG is None, reason="needs ffmpeg (tools/setup --tests)")
def test_recording_survives_sigkill_up_to_the_last_page(start_server):
    srv = start_server()

    async def main():
        host_id = uid("host")
        ws, link = await go_live(srv, host_id, "Host")
        tap = Tap(ws, "host")
        pacer = PCMPacer(ws, TONE_440)
        await send(ws, {"type": "recording_start"})
        i = await tap.wait_text("recording_started")
        await asyncio.sleep(1.5)
        killed_at = time.monotonic()
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        elapsed = killed_at - tap.frames[i][0]
        pacer.task.cancel()
        await asyncio.gather(pacer.task, tap._task, return_exceptions=True)
        return link["event_id"], elapsed

    event_id, elapsed = run(main(), 60)
    path = os.path.join(srv.data_dir, "recordings", event_id, "1.opus")
    samples = ffmpeg_samples(path)
    # Pages go to disk at least every 200 ms: at most that much (plus the held packet) is lost.
    assert elapsed - 0.26 <= samples / 48_000 <= elapsed + 0.04, (samples / 48_000, elapsed)
    if OPUSINFO:
        # Only the end-of-stream flag is missing ("normal for live streams"), nothing is broken.
        info = subprocess.run([OPUSINFO, path], capture_output=True, text=True, timeout=30)
        text = (info.stdout + info.stderr).lower()
        assert "error" not in text and "playback length" in text, info.stdout + info.stderr
