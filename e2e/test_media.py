"""PROTOCOL.md 2.4, 4 and 6: the binary media path end to end, with the real media fixtures.

Who may publish what (audio: host and co-hosts; screen: the host, in screen mode), byte-exact
relaying with the server's source id, demotion/mute/mode-switch ordering on each socket, PCM
encoded by the server to Opus (decoded here with libopus), malformed frames, the screen GOP
cache for late joiners, and a stuck listener that must not slow anyone else down.

Every socket a test reads is read by a `Tap`: a background task that records every frame
(text as parsed JSON, binary as bytes) with its arrival time, so that the order of text and
binary frames on one socket can be asserted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

import opus_ctypes
from awtest import (ConnectionClosed, close_all, close_code_of, go_live, join, join_path, metric_sum, metrics, run,
                    send, uid)

MEDIA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "media")

KIND_OPUS, KIND_PCM, KIND_SCREEN = 1, 2, 3
FLAG_KEYFRAME, FLAG_CONFIG, FLAG_MARKER, FLAG_STEREO = 0x01, 0x02, 0x04, 0x08
HOST_SOURCE_ID = 1
HEADER = struct.Struct(">BBBBIII")


# ---------------------------------------------------------------------------- media frames
def media(kind, payload=b"", seq=0, ts=0, flags=0, source=0, version=1, reserved=0) -> bytes:
    """One media frame as a client sends it (PROTOCOL.md 4)."""
    return HEADER.pack(version, kind, flags, reserved, source, seq & 0xFFFFFFFF, ts & 0xFFFFFFFF) + payload


@dataclass
class Frame:
    version: int
    kind: int
    flags: int
    reserved: int
    source: int
    seq: int
    ts: int
    payload: bytes
    raw: bytes


def parse(raw: bytes) -> Frame:
    assert len(raw) >= 16, f"a media frame from the server is shorter than 16 bytes: {raw!r}"
    v, kind, flags, reserved, source, seq, ts = HEADER.unpack_from(raw)
    return Frame(v, kind, flags, reserved, source, seq, ts, bytes(raw[16:]), bytes(raw))


def as_relayed(sent: bytes, source_id: int) -> bytes:
    """What a client's frame must look like on the way out: only the source id is set."""
    return sent[:4] + struct.pack(">I", source_id) + sent[8:]


# ---------------------------------------------------------------------------- fixtures
def _read(name) -> bytes:
    with open(os.path.join(MEDIA_DIR, name), "rb") as f:
        return f.read()


def opus_records(name) -> list[bytes]:
    """[u32 BE length][packet]… → packets."""
    data, out, i = _read(name), [], 0
    while i < len(data):
        (n,) = struct.unpack_from(">I", data, i)
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    assert i == len(data), f"{name}: trailing bytes"
    return out


def vp8_records() -> list[tuple[int, int, bytes]]:
    """[u32 BE length][u8 flags][u32 BE ts][payload]… → (flags, ts, payload)."""
    data, out, i = _read("screen-vp8.frames"), [], 0
    while i < len(data):
        n, flags, ts = struct.unpack_from(">IBI", data, i)
        out.append((flags, ts, data[i + 9:i + 9 + n]))
        i += 9 + n
    assert i == len(data), "screen-vp8.frames: trailing bytes"
    return out


SPEECH = opus_records("speech.opus-packets")
MALFORMED_OPUS = opus_records("malformed-opus.packets")
VP8 = vp8_records()
TONE_440 = _read("tone-440hz-mono.pcm")


def test_fixtures_are_what_the_readme_says():
    assert len(SPEECH) == 155 and all(40 <= len(p) <= 119 for p in SPEECH)
    assert len(MALFORMED_OPUS) == 16
    assert len(VP8) == 30 and [i for i, (f, _, _) in enumerate(VP8) if f & FLAG_KEYFRAME] == [0, 10, 20]
    assert [ts for _, ts, _ in VP8] == [6000 * i for i in range(30)]
    assert len(TONE_440) == 96000


# ---------------------------------------------------------------------------- socket recorder
class Tap:
    """Reads every frame of `ws` in the background: `frames` is [(monotonic time, frame)], a text
    frame as its parsed JSON object, a binary frame as bytes."""

    def __init__(self, ws, name=""):
        self.ws = getattr(ws, "ws", ws)
        self.name = name
        self.frames: list[tuple[float, object]] = []
        self.closed = False
        self.close_code = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        try:
            while True:
                raw = await self.ws.recv()
                now = time.monotonic()
                self.frames.append((now, json.loads(raw) if isinstance(raw, str) else bytes(raw)))
                self._changed.set()
        except ConnectionClosed as e:
            self.close_code = close_code_of(e)
        except Exception as e:  # noqa: BLE001 - recorded, the test decides
            self.close_code = repr(e)
        finally:
            self.closed = True
            self._changed.set()

    def __len__(self):
        return len(self.frames)

    async def wait(self, pred, timeout=5.0, start=0, what="a frame") -> int:
        """Index (≥ start) of the first frame matching `pred`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.frames):
                if pred(self.frames[i][1]):
                    return i
                i += 1
            if self.closed:
                raise AssertionError(f"{self.name}: closed ({self.close_code}) before {what}; {self.summary(start)}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {what} within {timeout} s; {self.summary(start)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_text(self, type_, timeout=5.0, start=0, pred=None) -> int:
        return await self.wait(lambda f: isinstance(f, dict) and f.get("type") == type_ and (pred is None or pred(f)),
                               timeout, start, what=repr(type_))

    async def wait_count(self, pred, count, timeout=5.0, start=0, what="frames") -> None:
        deadline = time.monotonic() + timeout
        while True:
            n = sum(1 for _, f in self.frames[start:] if pred(f))
            if n >= count:
                return
            left = deadline - time.monotonic()
            if self.closed or left <= 0:
                raise AssertionError(f"{self.name}: {n} of {count} {what} within {timeout} s "
                                     f"(closed={self.closed}, {self.close_code}); {self.summary(start)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def texts(self, start=0, end=None, type_=None):
        return [f for _, f in self.frames[start:end] if isinstance(f, dict) and (type_ is None or f["type"] == type_)]

    def media(self, start=0, end=None) -> list[Frame]:
        return [parse(f) for _, f in self.frames[start:end] if isinstance(f, bytes)]

    def errors(self, code, start=0, end=None):
        return [f for f in self.texts(start, end, "error") if f.get("code") == code]

    def summary(self, start=0):
        items = []
        for _, f in self.frames[start:][-12:]:
            if isinstance(f, dict):
                items.append(f.get("type") + (f":{f.get('code')}" if f.get("type") == "error" else ""))
            else:
                fr = parse(f) if len(f) >= 16 else None
                items.append(f"<kind {fr.kind} src {fr.source} seq {fr.seq}>" if fr else f"<{len(f)} bytes>")
        return f"{len(self.frames) - start} frames, last: {items}"

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


def is_media(pred=None):
    def check(f):
        return isinstance(f, bytes) and (pred is None or pred(parse(f)))
    return check


async def sync_point(host, *taps, timeout=5.0):
    """The host broadcasts a chat message and every tap waits for it: everything the server
    sent each socket before it has then arrived (one order per connection)."""
    marker = f"sync-{uid('m')}"
    await send(host, {"type": "broadcast_message", "message": marker})
    return [await t.wait_text("message_broadcast", timeout, pred=lambda m: m.get("message") == marker) for t in taps]


async def live_event(server, listeners=2, verified=True):
    """A host and `listeners` joined listeners; returns (host ws, host tap, event id, members, member taps)."""
    host_id = uid("host")
    ws, link = await go_live(server, host_id, "Host")
    host_tap = Tap(ws, "host")
    members = []
    for i in range(listeners):
        m = await join(server, link["event_id"], uid(f"l{i}"), verified=verified)
        await host_tap.wait_text("participant_joined", pred=lambda x, u=m.user_id: x["user_id"] == u)
        members.append(m)
    taps = [Tap(m.ws, f"listener{i}") for i, m in enumerate(members)]
    return ws, host_tap, link["event_id"], members, taps


async def make_cohost(ws, host_tap, member, member_tap):
    """Invite + accept; returns the cohost_joined message (with the co-host's source_id)."""
    start = len(host_tap)
    await send(ws, {"type": "invite_cohost", "user_id": member.user_id})
    await member_tap.wait_text("cohost_invite")
    await send(member.ws, {"type": "accept_cohost"})
    i = await host_tap.wait_text("cohost_joined", start=start, pred=lambda x: x["user_id"] == member.user_id)
    joined = host_tap.frames[i][1]
    assert isinstance(joined.get("source_id"), int) and joined["source_id"] != HOST_SOURCE_ID, joined
    return joined


class Pacer:
    """Sends speech packets from one socket at `rate` frames/s in the background until stopped."""

    def __init__(self, ws, rate=100.0, kind=KIND_OPUS, payloads=SPEECH, seq0=0):
        self.ws, self.rate, self.kind, self.payloads = ws, rate, kind, payloads
        self.sent: list[tuple[float, bytes]] = []
        self.seq = seq0
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            p = self.payloads[self.seq % len(self.payloads)]
            frame = media(self.kind, p, seq=self.seq, ts=self.seq * 960)
            await self.ws.send(frame)
            self.sent.append((time.monotonic(), frame))
            self.seq += 1
            delay = t0 + self.seq / self.rate - time.monotonic()
            try:
                await asyncio.wait_for(self._stop.wait(), max(delay, 0))
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        self._stop.set()
        await asyncio.wait_for(self.task, 5)


# ---------------------------------------------------------------------------- 1. host audio
def test_host_audio_reaches_every_listener_byte_exact(server):
    async def main():
        ws, host_tap, ev, members, (a, b) = await live_event(server, 2)
        sent = []
        for i, packet in enumerate(SPEECH):
            frame = media(KIND_OPUS, packet, seq=i, ts=i * 960, flags=FLAG_MARKER if i == 0 else 0)
            sent.append(frame)
            await ws.send(frame)
        for tap in (a, b):
            await tap.wait_count(is_media(), len(SPEECH), timeout=10, what="speech frames")
        await sync_point(ws, host_tap, a, b)
        for tap in (a, b):
            got = tap.media()
            assert len(got) == len(SPEECH), f"{tap.name}: {len(got)} frames for {len(SPEECH)} sent"
            for i, (frame, raw) in enumerate(zip(got, sent)):
                assert frame.kind == KIND_OPUS and frame.source == HOST_SOURCE_ID, (tap.name, i, frame)
                assert frame.seq == i and frame.ts == i * 960, (tap.name, i, frame.seq, frame.ts)
                assert frame.payload == SPEECH[i], f"{tap.name}: payload {i} differs"
                assert frame.raw == as_relayed(raw, HOST_SOURCE_ID), f"{tap.name}: frame {i} not relayed as sent"
        assert host_tap.media() == [], "the host received its own audio"
        await close_all(ws, *members)
    run(main(), 60)


# ---------------------------------------------------------------------------- 2. listener audio
def test_listener_audio_reaches_nobody_and_is_refused_once_a_second(server):
    async def main():
        ws, host_tap, ev, (ma, mb), (a, b) = await live_event(server, 2)
        before = metrics(server)
        t0 = time.monotonic()
        for i in range(20):
            await ma.ws.send(media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960))
        sending = time.monotonic() - t0
        assert sending < 0.5, f"sending 20 frames took {sending:.2f} s; the once-a-second check needs them quick"
        await a.wait_text("error", pred=lambda e: e["code"] == "not_allowed")
        # Past the window of the frames, the later control message arrives everywhere, no media before it.
        await asyncio.sleep(max(0.0, t0 + 0.95 - time.monotonic()))
        await sync_point(ws, host_tap, a, b)
        errors = a.errors("not_allowed")
        assert len(errors) == 1, f"20 refused frames within {sending:.2f} s gave {len(errors)} not_allowed errors"
        assert isinstance(errors[0]["message"], str) and errors[0]["message"] and isinstance(errors[0]["details"], dict)
        for tap in (host_tap, a, b):
            assert tap.media() == [], f"{tap.name} received media from a listener: {tap.summary()}"
        after = metrics(server)
        dropped = metric_sum(after, "airwave_media_frames_dropped_total") - metric_sum(before, "airwave_media_frames_dropped_total")
        assert dropped >= 20, f"20 refused frames, dropped counter grew by {dropped}"
        # A second later the gate opens again: one more error, still no media anywhere.
        await asyncio.sleep(max(0.0, t0 + 1.1 - time.monotonic()))
        mark = len(a)
        await ma.ws.send(media(KIND_OPUS, SPEECH[0], seq=20, ts=20 * 960))
        await a.wait_text("error", start=mark, pred=lambda e: e["code"] == "not_allowed")
        await sync_point(ws, host_tap, a, b)
        for tap in (host_tap, a, b):
            assert tap.media() == [], f"{tap.name} received media from a listener"
        assert not a.closed
        await close_all(ws, ma, mb)
    run(main(), 60)


# ---------------------------------------------------------------------------- 3. co-host
def test_cohost_audio_flows_until_removed(server):
    async def main():
        ws, host_tap, ev, (mc, mb), (c, b) = await live_event(server, 2)
        joined = await make_cohost(ws, host_tap, mc, c)
        sid = joined["source_id"]
        for tap in (c, b):
            i = await tap.wait_text("cohost_joined", pred=lambda x: x["user_id"] == mc.user_id)
            assert tap.frames[i][1]["source_id"] == sid
        # Its frames reach the host and the other listener byte-exact with its source id.
        sent = [media(KIND_OPUS, SPEECH[i], seq=i, ts=i * 960) for i in range(10)]
        for f in sent:
            await mc.ws.send(f)
        for tap in (host_tap, b):
            await tap.wait_count(is_media(), 10, what="co-host frames")
            assert [f.raw for f in tap.media()] == [as_relayed(f, sid) for f in sent], tap.name
        # Now it keeps talking while the host removes it.
        pacer = Pacer(mc.ws, rate=200, seq0=10)
        await b.wait_count(is_media(lambda f: f.source == sid and f.seq >= 30), 1, what="live co-host frames")
        await send(ws, {"type": "remove_cohost", "participant_id": mc.user_id, "username": mc.user_id})
        removed_at = {}
        for tap in (host_tap, b, c):
            removed_at[tap.name] = await tap.wait_text("cohost_removed", pred=lambda x: x["user_id"] == mc.user_id)
        await asyncio.sleep(0.4)
        await pacer.stop()
        await sync_point(ws, host_tap, b, c)
        for tap in (host_tap, b):
            idx = removed_at[tap.name]
            before = [f for f in tap.media(0, idx) if f.source == sid]
            after = [f for f in tap.media(idx + 1) if f.source == sid]
            assert len(before) >= 20, f"{tap.name}: only {len(before)} co-host frames before the removal"
            assert after == [], (f"{tap.name}: {len(after)} frames of the removed co-host after cohost_removed "
                                 f"(seqs {[f.seq for f in after[:10]]})")
            seqs = [f.seq for f in before]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{tap.name}: out of order"
        assert c.media() == [], "the co-host received its own audio back"
        # Demoted, its frames are refused like any listener's.
        assert c.errors("not_allowed", start=removed_at["listener0"]), c.summary()
        assert pacer.seq - 10 >= 80, "the co-host did not keep sending during the removal"
        await close_all(ws, mc, mb)
    run(main(), 60)


# ---------------------------------------------------------------------------- 4. mute
def test_muted_cohost_is_not_forwarded_until_unmuted(server):
    async def main():
        ws, host_tap, ev, (mc, mb), (c, b) = await live_event(server, 2)
        joined = await make_cohost(ws, host_tap, mc, c)
        sid = joined["source_id"]
        pacer = Pacer(mc.ws, rate=200)
        await b.wait_count(is_media(lambda f: f.source == sid), 20, what="co-host frames")
        await send(ws, {"type": "mute", "user_id": mc.user_id})
        muted_at = {}
        for tap in (host_tap, b, c):
            muted_at[tap.name] = await tap.wait_text("muted", pred=lambda x: x["user_id"] == mc.user_id)
        seq_at_mute = pacer.seq
        await asyncio.sleep(0.5)
        assert pacer.seq - seq_at_mute >= 50, "the co-host did not keep sending while muted"
        await send(ws, {"type": "unmute", "user_id": mc.user_id})
        unmuted_at = {}
        for tap in (host_tap, b, c):
            unmuted_at[tap.name] = await tap.wait_text("unmuted", start=muted_at[tap.name],
                                                       pred=lambda x: x["user_id"] == mc.user_id)
        for tap in (host_tap, b):
            await tap.wait_count(is_media(lambda f: f.source == sid), 20, start=unmuted_at[tap.name],
                                 what="frames after unmute")
        await pacer.stop()
        await sync_point(ws, host_tap, b, c)
        for tap in (host_tap, b):
            m, u = muted_at[tap.name], unmuted_at[tap.name]
            assert [f for f in tap.media(0, m) if f.source == sid], f"{tap.name}: nothing before mute"
            during = [f for f in tap.media(m + 1, u) if f.source == sid]
            assert during == [], f"{tap.name}: {len(during)} frames between muted and unmuted (seqs {[f.seq for f in during[:10]]})"
            resumed = [f for f in tap.media(u + 1) if f.source == sid]
            assert len(resumed) >= 20 and all(f.seq > seq_at_mute for f in resumed), tap.name
        assert c.media() == [], "the co-host received its own audio back"
        assert c.errors("not_allowed") == [], "a muted co-host's frames are dropped silently"
        await close_all(ws, mc, mb)
    run(main(), 60)


# ---------------------------------------------------------------------------- 5. PCM
def dominant_frequency(samples: np.ndarray, rate=48000) -> float:
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window))
    spectrum[0] = 0
    k = int(np.argmax(spectrum))
    if 0 < k < len(spectrum) - 1:  # parabolic interpolation of the peak
        a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * rate / len(samples)


def goertzel_power(samples: np.ndarray, freq, rate=48000) -> float:
    n = np.arange(len(samples))
    return float(np.abs(np.sum(samples * np.exp(-2j * np.pi * freq * n / rate))) ** 2)


def test_pcm_is_encoded_to_opus_for_listeners(server):
    async def main():
        ws, host_tap, ev, members, (a,) = await live_event(server, 1)
        chunk = 1500  # 750 samples: not a multiple of the 960-sample Opus frame
        t0 = time.monotonic()
        for i, off in enumerate(range(0, len(TONE_440), chunk)):
            await ws.send(media(KIND_PCM, TONE_440[off:off + chunk], seq=i, ts=off // 2))
            await asyncio.sleep(max(0.0, t0 + (off + chunk) / 96000 - time.monotonic()))  # real time
        expected = len(TONE_440) // 2 // 960  # 50 packets of 20 ms
        await a.wait_count(is_media(), expected, timeout=10, what="encoded packets")
        await sync_point(ws, host_tap, a)
        got = a.media()
        assert len(got) == expected, f"1 s of PCM gave {len(got)} packets, expected {expected}"
        assert all(f.kind == KIND_OPUS for f in got), [f.kind for f in got]
        assert all(f.source == HOST_SOURCE_ID and f.version == 1 and f.reserved == 0 for f in got)
        assert all(f.flags == 0 for f in got), [f.flags for f in got]
        assert [f.seq for f in got] == list(range(expected)), [f.seq for f in got]
        assert [f.ts for f in got] == [960 * i for i in range(expected)], [f.ts for f in got]
        with opus_ctypes.Decoder(48000, 1) as dec:
            pcm = []
            for f in got:
                out = dec.decode(f.payload)
                assert len(out) == 960, f"packet {f.seq} decodes to {len(out)} samples, not 20 ms"
                pcm.extend(out)
        x = np.asarray(pcm[960 * 3:], dtype=np.float64) / 32768.0  # past the encoder's start-up
        freq = dominant_frequency(x)
        assert abs(freq - 440) <= 440 * 0.02, f"dominant frequency {freq:.1f} Hz, expected 440 Hz ±2 %"
        p440 = goertzel_power(x, 440)
        for other in (220, 330, 550, 660, 880, 1000, 1320, 2000):
            assert p440 > 100 * goertzel_power(x, other), f"440 Hz not dominant over {other} Hz"
        rms = float(np.sqrt(np.mean(x ** 2)))
        assert 0.2 < rms < 0.5, f"decoded RMS {rms:.3f}; the tone is a -6 dBFS sine (RMS 0.354)"
        assert host_tap.media() == [], "the host received its own audio"
        await close_all(ws, *members)
    run(main(), 60)


TONE_660_STEREO = _read("tone-660hz-stereo.pcm")


def test_stereo_pcm_is_encoded_with_both_channels(server):
    async def main():
        ws, host_tap, ev, members, (a,) = await live_event(server, 1)
        chunk = 1500  # 375 sample pairs: whole stereo frames (4 bytes each)
        for i, off in enumerate(range(0, len(TONE_660_STEREO), chunk)):
            await ws.send(media(KIND_PCM, TONE_660_STEREO[off:off + chunk], seq=i, ts=off // 4, flags=FLAG_STEREO))
        expected = len(TONE_660_STEREO) // 4 // 960  # 25 packets of 20 ms
        await a.wait_count(is_media(), expected, timeout=10, what="encoded packets")
        await sync_point(ws, host_tap, a)
        got = a.media()
        assert len(got) == expected, f"0.5 s of stereo PCM gave {len(got)} packets, expected {expected}"
        assert all(f.kind == KIND_OPUS and f.flags == 0 and f.source == HOST_SOURCE_ID for f in got), \
            [(f.kind, f.flags, f.source) for f in got]
        assert [f.seq for f in got] == list(range(expected)) and [f.ts for f in got] == [960 * i for i in range(expected)]
        with opus_ctypes.Decoder(48000, 2) as dec:
            pcm = []
            for f in got:
                out = dec.decode(f.payload)
                assert len(out) == 2 * 960, f"packet {f.seq}: {len(out) // 2} sample pairs, not 20 ms"
                pcm.extend(out)
        x = np.asarray(pcm, dtype=np.float64).reshape(-1, 2)[960 * 3:] / 32768.0
        left, right = x[:, 0], x[:, 1]
        for name, ch in (("left", left), ("right", right)):
            freq = dominant_frequency(ch)
            assert abs(freq - 660) <= 660 * 0.02, f"{name}: dominant frequency {freq:.1f} Hz, expected 660 Hz"
        ratio_db = 20 * np.log10(np.sqrt(np.mean(left ** 2)) / np.sqrt(np.mean(right ** 2)))
        assert 4.0 < ratio_db < 8.0, f"left is {ratio_db:.1f} dB over right, expected 6 dB (channels kept apart, in order)"
        assert host_tap.media() == []
        await close_all(ws, *members)
    run(main(), 60)


# ---------------------------------------------------------------------------- 6. malformed
def test_malformed_frames_are_dropped_and_answered_once_a_second(server):
    async def main():
        ws, host_tap, ev, members, (a, b) = await live_event(server, 2)
        good = media(KIND_OPUS, SPEECH[0])
        bad = [
            b"",                                         # empty binary frame
            good[:1],
            good[:15],                                   # one byte short of a header
            media(KIND_OPUS, SPEECH[0], version=2),      # unknown version
            media(KIND_OPUS, SPEECH[0], version=0),
            media(0, SPEECH[0]),                         # unknown kinds
            media(4, SPEECH[0]),
            media(255, SPEECH[0]),
            media(KIND_PCM, b"\x01\x02\x03"),            # not whole samples
            media(KIND_PCM, b"\x01\x02", flags=FLAG_STEREO),
            media(KIND_SCREEN, b""),                     # empty screen frame
        ] + [media(KIND_OPUS, p, seq=i) for i, p in enumerate(MALFORMED_OPUS)]
        before = metrics(server)
        t0 = time.monotonic()
        for f in bad:
            await ws.send(f)
        sending = time.monotonic() - t0
        assert sending < 0.5, f"sending took {sending:.2f} s"
        await host_tap.wait_text("error", pred=lambda e: e["code"] == "bad_message")
        await asyncio.sleep(max(0.0, t0 + 0.95 - time.monotonic()))
        await sync_point(ws, host_tap, a, b)
        errors = host_tap.errors("bad_message")
        assert len(errors) == 1, f"{len(bad)} malformed frames within {sending:.2f} s gave {len(errors)} bad_message errors"
        assert isinstance(errors[0]["details"], dict) and isinstance(errors[0]["message"], str)
        for tap in (a, b):
            assert tap.media() == [], f"{tap.name} received a malformed frame: {[f.raw[:20] for f in tap.media()]}"
        after = metrics(server)
        grew = (metric_sum(after, "airwave_media_frames_dropped_total", 'reason="malformed"')
                - metric_sum(before, "airwave_media_frames_dropped_total", 'reason="malformed"'))
        assert grew == len(bad), f"{len(bad)} malformed frames, malformed counter grew by {grew}"
        # The gate opens again after a second; the connection still works for media and control.
        await asyncio.sleep(max(0.0, t0 + 1.1 - time.monotonic()))
        mark = len(host_tap)
        await ws.send(media(7, SPEECH[1]))
        i = await host_tap.wait_text("error", start=mark, pred=lambda e: e["code"] == "bad_message")
        assert host_tap.frames[i][1]["details"].get("reason") == "unknown_kind", host_tap.frames[i][1]
        await ws.send(media(KIND_OPUS, SPEECH[2], seq=100, ts=96000))
        for tap in (a, b):
            await tap.wait_count(is_media(), 1, what="the valid frame after the malformed ones")
            assert [f.raw for f in tap.media()] == [as_relayed(media(KIND_OPUS, SPEECH[2], seq=100, ts=96000), 1)]
        assert not host_tap.closed
        await close_all(ws, *members)
    run(main(), 60)


# ---------------------------------------------------------------------------- 7. screen
CONFIG_PAYLOAD = b"vp8-config:320x180"


def screen(index, seq):
    flags, ts, payload = VP8[index % len(VP8)]
    return media(KIND_SCREEN, payload, seq=seq, ts=ts + 180000 * (index // len(VP8)), flags=flags)


def padded_screen(index, seq, size):
    """A frame of the VP8 clip (looped, a keyframe every 10) padded to `size` payload bytes:
    screen payloads are opaque to the server, and bigger frames fill a stuck queue sooner
    under the per-connection media rate limit (250 frames/s)."""
    flags, ts, payload = VP8[index % len(VP8)]
    payload = payload + bytes(max(0, size - len(payload)))
    return media(KIND_SCREEN, payload, seq=seq, ts=ts + 180000 * (index // len(VP8)), flags=flags)


def test_screen_keyframes_gop_cache_and_mode_gate(server):
    async def main():
        ws, host_tap, ev, (ma,), (a,) = await live_event(server, 1)
        await send(ws, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8", "width": 320, "height": 180})
        for tap in (host_tap, a):
            i = await tap.wait_text("stream_mode_changed")
            assert tap.frames[i][1]["mode"] == "screen" and tap.frames[i][1].get("codec") == "vp8", tap.frames[i][1]
        # A delta before any keyframe, then the config frame, then the first 15 frames (keyframes 0 and 10).
        sent = {}
        seq = 0
        early_delta = screen(5, seq)
        await ws.send(early_delta)
        seq += 1
        config = media(KIND_SCREEN, CONFIG_PAYLOAD, seq=seq, flags=FLAG_CONFIG)
        await ws.send(config)
        seq += 1
        for i in range(15):
            sent[seq] = screen(i, seq)
            await ws.send(sent[seq])
            seq += 1
        last_seq = seq - 1
        await a.wait_count(is_media(lambda f: f.seq == last_seq), 1, what="frame 14")
        got = a.media()
        assert got[0].raw == as_relayed(config, 1), f"first screen frame is not the config frame: {got[0]}"
        assert got[1].flags & FLAG_KEYFRAME, f"first screen frame after the config is not a keyframe: flags {got[1].flags}"
        assert early_delta[8:12] not in [f.raw[8:12] for f in got], "the delta sent before any keyframe reached the listener"
        assert [f.raw for f in got[1:]] == [as_relayed(sent[s], 1) for s in sorted(sent)], "screen frames not relayed as sent"

        # A listener joining mid-GOP: stream_state (screen), chat_history, then config and the GOP from frame 10.
        mb = await join(server, ev, uid("late"))
        assert mb.state["mode"] == "screen", mb.state
        assert isinstance(mb.state.get("screen"), dict) and mb.state["screen"].get("codec") == "vp8", mb.state
        b = Tap(mb.ws, "late")
        gop = [sent[s] for s in sorted(sent)][10:]
        await b.wait_count(is_media(), 1 + len(gop), what="config + GOP")
        got_b = b.media()
        assert got_b[0].raw == as_relayed(config, 1), f"late joiner: first frame is not the config frame ({got_b[0].flags})"
        assert [f.raw for f in got_b[1:1 + len(gop)]] == [as_relayed(f, 1) for f in gop], \
            f"late joiner: not the GOP from the last keyframe: seqs {[f.seq for f in got_b[1:]]}"
        assert got_b[1].flags & FLAG_KEYFRAME

        # The rest of the clip reaches both; a listener's screen frame reaches nobody.
        mark_a, mark_b = len(a), len(b)
        await ma.ws.send(media(KIND_SCREEN, VP8[0][2], seq=0, flags=FLAG_KEYFRAME))
        await a.wait_text("error", start=mark_a, pred=lambda e: e["code"] == "not_allowed")
        for i in range(15, 30):
            sent[seq] = screen(i, seq)
            await ws.send(sent[seq])
            seq += 1
        for tap, mark in ((a, mark_a), (b, mark_b)):
            await tap.wait_count(is_media(), 15, start=mark, what="frames 15-29")
        await sync_point(ws, host_tap, a, b)
        for tap, mark in ((a, mark_a), (b, mark_b)):
            assert [f.raw for f in tap.media(mark)] == [as_relayed(sent[s], 1) for s in sorted(sent)[15:]], tap.name
        assert host_tap.media() == [], "the host received screen frames (its own or a listener's)"

        # Back to audio while the host keeps sending screen frames: none after stream_mode_changed.
        mark_host = len(host_tap)
        stop = asyncio.Event()

        async def keep_sending():
            nonlocal seq
            k = 0
            while not stop.is_set():
                await ws.send(screen(k, seq))
                seq += 1
                k += 1
                await asyncio.sleep(0.005)
        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.3)
        await send(ws, {"type": "switching_to_audio", "stream": "audio"})
        changed = {}
        for tap in (a, b, host_tap):
            changed[tap.name] = await tap.wait_text(
                "stream_mode_changed", start=mark_host if tap is host_tap else 0, pred=lambda x: x["mode"] == "audio")
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(sender, 5)
        await sync_point(ws, host_tap, a, b)
        for tap in (a, b):
            idx = changed[tap.name]
            assert [f for f in tap.media(mark_a if tap is a else mark_b, idx) if f.seq > last_seq + 15], \
                f"{tap.name}: no screen frame before the switch back (test did not race)"
            late = [f for f in tap.media(idx + 1) if f.kind == KIND_SCREEN]
            assert late == [], f"{tap.name}: {len(late)} screen frames after stream_mode_changed to audio"
        # In audio mode the host's screen frames are dropped; not_allowed at most once a second.
        await asyncio.sleep(1.1)
        mark_host = len(host_tap)
        t0 = time.monotonic()
        for k in range(20):
            await ws.send(screen(k, seq))
            seq += 1
        assert time.monotonic() - t0 < 0.5
        await host_tap.wait_text("error", start=mark_host, pred=lambda e: e["code"] == "not_allowed")
        await asyncio.sleep(max(0.0, t0 + 0.95 - time.monotonic()))
        await sync_point(ws, host_tap, a, b)
        n = len(host_tap.errors("not_allowed", start=mark_host))
        assert n == 1, f"20 screen frames in audio mode gave {n} not_allowed errors"
        for tap in (a, b):
            assert [f for f in tap.media(changed[tap.name] + 1) if f.kind == KIND_SCREEN] == [], tap.name
        await close_all(ws, ma, mb)
    run(main(), 60)


def test_late_joiner_after_gop_cache_overflow_waits_for_next_keyframe(server):
    """PROTOCOL.md 2.4: the late-joiner replay is bounded (4 MiB); past that the server asks
    the host for a keyframe and the joiner's first screen frame is the next keyframe."""
    big = 200_000  # 21 deltas of this size overflow the 4 MiB cache

    async def main():
        ws, host_tap, ev, (ma,), (a,) = await live_event(server, 1)
        await send(ws, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8"})
        await a.wait_text("stream_mode_changed")
        config = media(KIND_SCREEN, CONFIG_PAYLOAD, seq=0, flags=FLAG_CONFIG)
        await ws.send(config)
        seq = 1
        await ws.send(padded_screen(0, seq, 0))
        seq += 1
        for k in range(21):
            await ws.send(padded_screen(1 + k % 9, seq, big))
            seq += 1
            await asyncio.sleep(0.02)  # let the reading listener keep up (its queue is 512 KiB)
        i = await host_tap.wait_text("keyframe_request", timeout=5)
        assert host_tap.frames[i][1].get("reason") == "cache", host_tap.frames[i][1]
        await a.wait_count(is_media(lambda f: f.seq == seq - 1), 1, timeout=10, what="the last delta")
        assert [f.seq for f in a.media()] == list(range(seq)), "the overflowing GOP must still be relayed in full"
        # A joiner now gets the config frame but no GOP, and the host is asked again (a second later).
        await asyncio.sleep(1.05)
        mark_host = len(host_tap)
        mb = await join(server, ev, uid("late"))
        b = Tap(mb.ws, "late")
        await b.wait_count(is_media(), 1, what="the config frame")
        await host_tap.wait_text("keyframe_request", start=mark_host, timeout=3)
        for k in range(2):
            await ws.send(padded_screen(11 + k, seq, 0))
            seq += 1
        key_seq = seq
        await ws.send(padded_screen(10, seq, 0))
        seq += 1
        await ws.send(padded_screen(13, seq, 0))
        seq += 1
        await b.wait_count(is_media(lambda f: f.seq == seq - 1), 1, what="the frame after the new keyframe")
        await sync_point(ws, host_tap, a, b)
        got = b.media()
        assert got[0].raw == as_relayed(config, 1), "late joiner: first frame is not the config frame"
        assert [f.seq for f in got[1:]] == [key_seq, key_seq + 1], \
            f"late joiner after a GOP overflow: expected the next keyframe first, got seqs {[f.seq for f in got[1:]]}"
        assert got[1].flags & FLAG_KEYFRAME
        await close_all(ws, ma, mb)
    run(main(), 60)


# ---------------------------------------------------------------------------- 8. slow listener
class RawListener:
    """A WebSocket client by hand on a plain socket with a tiny receive buffer, so that the
    server's writes to it back up as soon as it stops reading."""

    def __init__(self, port, path, rcvbuf=4096, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"closed during the handshake: {head!r}"
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status, f"handshake refused: {head!r}"
        self.buffer = bytearray()
        self.pos = 0

    def read_frames(self, timeout):
        """Reads until a close frame or EOF; returns [(opcode, payload)]."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            while True:
                frame = self._take()
                if frame is None:
                    break
                frames.append(frame)
                if frame[0] == 8:
                    return frames
            left = deadline - time.monotonic()
            if left <= 0:
                return frames
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, ConnectionResetError):
                return frames
            if not data:
                return frames
            if self.pos > (1 << 20):
                del self.buffer[:self.pos]
                self.pos = 0
            self.buffer += data

    def _take(self):
        buf, start = self.buffer, self.pos
        if len(buf) - start < 2:
            return None
        opcode, n, pos = buf[start] & 0x0F, buf[start + 1] & 0x7F, start + 2
        assert not buf[start + 1] & 0x80, "a server frame must not be masked"
        if n == 126:
            if len(buf) < pos + 2:
                return None
            (n,), pos = struct.unpack_from(">H", buf, pos), pos + 2
        elif n == 127:
            if len(buf) < pos + 8:
                return None
            (n,), pos = struct.unpack_from(">Q", buf, pos), pos + 8
        if len(buf) < pos + n:
            return None
        self.pos = pos + n
        return opcode, bytes(buf[pos:pos + n])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def test_stuck_listener_never_slows_the_others(server):
    rate = 240           # frames/s: under the per-connection media limit (250/s)
    frame_size = 10_000  # ≈ 2.4 MB/s: the stuck connection's buffers fill within a few seconds
    max_send = 20.0      # too_slow is due ~10 s after the stuck connection's queue went over its bound

    async def main():
        ws, host_tap, ev, (mn,), (n,) = await live_event(server, 1)
        await send(ws, {"type": "switching_to_screen_sharing", "stream": "screen", "codec": "vp8", "width": 320, "height": 180})
        await n.wait_text("stream_mode_changed")
        stuck_id = uid("stuck")
        stuck = await asyncio.to_thread(RawListener, server.port, join_path(ev, stuck_id), 4096)
        try:
            await host_tap.wait_text("participant_joined", pred=lambda x: x["user_id"] == stuck_id)
            await stuck_listener_run(ws, host_tap, n, stuck)
        finally:
            stuck.close()
        await close_all(ws, mn)

    async def stuck_listener_run(ws, host_tap, n, stuck):
        before = await asyncio.to_thread(metrics, server)
        too_slow_before = metric_sum(before, "airwave_errors_total", 'code="too_slow"')
        slow_before = metric_sum(before, "airwave_media_frames_dropped_total", 'reason="slow_listener"')
        # Each poll of /metrics reads the counters somewhere between its start and its answer,
        # so each change is bracketed: after the start of the last poll without it, before the
        # answer of the first poll with it.
        first_drop_at = None    # (start of the last poll without drops, answer of the first with)
        too_slow_at = None      # the same for the too_slow error
        polls_start = {"drop": None, "too_slow": None}

        async def watch_metrics():
            nonlocal first_drop_at, too_slow_at
            while too_slow_at is None:
                started = time.monotonic()
                m = await asyncio.to_thread(metrics, server)
                answered = time.monotonic()
                if first_drop_at is None:
                    if metric_sum(m, "airwave_media_frames_dropped_total", 'reason="slow_listener"') > slow_before:
                        first_drop_at = (polls_start["drop"] if polls_start["drop"] is not None else t0, answered)
                    else:
                        polls_start["drop"] = started
                if metric_sum(m, "airwave_errors_total", 'code="too_slow"') > too_slow_before:
                    too_slow_at = (polls_start["too_slow"] if polls_start["too_slow"] is not None else t0, answered)
                    return
                polls_start["too_slow"] = started
                await asyncio.sleep(0.2)
        t0 = time.monotonic()
        watcher = asyncio.create_task(watch_metrics())

        sent_at: dict[int, float] = {}
        sent_bytes = 0
        seq = 0
        try:
            while time.monotonic() - t0 < max_send and too_slow_at is None:
                frame = padded_screen(seq, seq, frame_size)
                await ws.send(frame)
                sent_at[seq] = time.monotonic()
                sent_bytes += len(frame)
                seq += 1
                delay = t0 + seq / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            watcher.cancel()
        elapsed = time.monotonic() - t0
        last = seq - 1
        await n.wait_count(is_media(lambda f: f.seq == last), 1, timeout=10, what="the last frame")
        after = await asyncio.to_thread(metrics, server)
        timeline = (f"{seq} frames / {sent_bytes / 1e6:.1f} MB in {elapsed:.1f} s; first slow_listener drop at "
                    f"{'-' if first_drop_at is None else f'{first_drop_at[0] - t0:.1f}–{first_drop_at[1] - t0:.1f} s'}, "
                    f"too_slow at {'-' if too_slow_at is None else f'{too_slow_at[0] - t0:.1f}–{too_slow_at[1] - t0:.1f} s'}")

        # The reading listener got every frame, in order, quickly.
        got = n.media()
        recv_at = {parse(f).seq: t for t, f in n.frames if isinstance(f, bytes)}
        assert [f.seq for f in got] == list(range(seq)), \
            f"the reading listener missed frames: {seq} sent, {len(got)} received; {timeline}"
        latencies = sorted((recv_at[s] - sent_at[s]) * 1000 for s in range(seq))
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        worst = latencies[-1]
        assert p99 < 200, f"p99 send→receive latency {p99:.0f} ms (worst {worst:.0f} ms); {timeline}"
        assert sent_bytes >= 4_000_000, f"only {sent_bytes} bytes sent; {timeline}"

        dropped = metric_sum(after, "airwave_media_frames_dropped_total", 'reason="slow_listener"') - slow_before
        assert dropped > 0, f"no slow_listener drops for a listener that never reads; {timeline}"

        # The stuck listener was closed with too_slow after ~10 s of congestion.
        assert too_slow_at is not None, f"no too_slow; {timeline}"
        longest = too_slow_at[1] - first_drop_at[0]
        shortest = too_slow_at[0] - first_drop_at[1]
        assert longest >= 9.5, f"too_slow at most {longest:.1f} s after congestion began, not 10 s; {timeline}"
        assert shortest <= 12.0, f"too_slow at least {shortest:.1f} s after congestion began, not ~10 s; {timeline}"
        frames = await asyncio.to_thread(stuck.read_frames, 8.0)
        texts = [json.loads(p) for op, p in frames if op == 1]
        assert [t["type"] for t in texts[:2]] == ["stream_state", "chat_history"], [t["type"] for t in texts[:5]]
        errors = [t for t in texts if t.get("type") == "error"]
        assert errors and errors[-1]["code"] == "too_slow", f"stuck listener's errors: {errors}"
        closes = [p for op, p in frames if op == 8]
        assert closes, f"no close frame for the stuck listener ({len(frames)} frames read)"
        assert struct.unpack(">H", closes[0][:2])[0] == 4408, closes[0]
        # Nobody else was dropped, and the reading listener still gets control messages.
        assert not n.closed and not host_tap.closed
        await sync_point(ws, host_tap, n)
        print(f"\nslow listener: {timeline}; reading listener p99 {p99:.1f} ms, worst {worst:.1f} ms, "
              f"{dropped:.0f} frames dropped for the stuck one")

    run(main(), 90)
