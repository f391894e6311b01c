"""aiortc peers for the WebRTC end-to-end tests (WHEP listeners, WHIP speakers) over 127.0.0.1.

Loopback only: aioice (aiortc's ICE agent) gathers its host candidates from every interface
address `ifaddr` reports, but skips 127.0.0.1 (and ::1) on purpose, so an aiortc offer never
carries a loopback candidate and could only reach the server through another interface. Importing
this module replaces `aioice.ice.get_host_addresses` (looked up as a module global by
`Connection.gather_candidates`) with one that returns exactly ["127.0.0.1"]: every offer then
carries one host candidate per component, `127.0.0.1 <port> typ host`, and nothing else (no STUN
servers are configured, so no server-reflexive candidates either).

Every wait is bounded by a timeout; nothing sleeps where an event can be awaited.
"""

from __future__ import annotations

import asyncio
import fractions
import http.client
import json
import time

import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.rtcdtlstransport import SRTP_PROFILES
from av import AudioFrame

LOOPBACK = "127.0.0.1"


def _loopback_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


aioice.ice.get_host_addresses = _loopback_host_addresses

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz


def config() -> RTCConfiguration:
    """No STUN/TURN servers: host candidates (127.0.0.1) only."""
    return RTCConfiguration(iceServers=[])


# ---------------------------------------------------------------------------- tracks
class SineTrack(AudioStreamTrack):
    """A mono sine at `frequency`, 20 ms frames of s16 at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self, frequency: float, gain: float = 0.5):
        super().__init__()
        self.frequency, self.gain = frequency, gain
        self.frames_sent = 0
        self._t0: float | None = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        else:
            delay = self._t0 + self.frames_sent * FRAME_SAMPLES / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        n0 = self.frames_sent * FRAME_SAMPLES
        t = np.arange(n0, n0 + FRAME_SAMPLES, dtype=np.float64)
        samples = np.round(self.gain * 32767 * np.sin(2 * np.pi * self.frequency * t / RATE)).astype("<i2")
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.pts = n0
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self.frames_sent += 1
        return frame


def mono_samples(frame) -> np.ndarray:
    """The first channel of a decoded aiortc AudioFrame (s16, packed or planar) as float64."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return data[0].astype(np.float64)
    return data.reshape(-1)[::channels].astype(np.float64)


# ---------------------------------------------------------------------------- HTTP
class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers.get('content-type')!r} {self.body[:300]!r}>"


def _request(port, method, path, body=None, headers=None, timeout=10.0) -> Response:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


async def request(port, method, path, body=None, headers=None, timeout=10.0) -> Response:
    """One HTTP request to 127.0.0.1:`port` off the event loop (aiortc keeps running meanwhile)."""
    return await asyncio.wait_for(asyncio.to_thread(_request, port, method, path, body, headers, timeout),
                                  timeout + 2)


async def post_offer(port, path, sdp, token=None, content_type="application/sdp") -> Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = sdp.encode() if isinstance(sdp, str) else sdp
    return await request(port, "POST", path, body, headers)


async def make_offer(kind: str) -> str:
    """An aiortc offer (ICE gathered), for requests that need a valid SDP but no connection:
    'whep' = audio recvonly, 'whep+video' = audio and video recvonly, 'video' = video recvonly only,
    'whip' = audio sendonly."""
    pc = RTCPeerConnection(config())
    try:
        if kind == "whip":
            pc.addTransceiver(SineTrack(440), direction="sendonly")
        elif kind == "video":
            pc.addTransceiver("video", direction="recvonly")
        else:
            pc.addTransceiver("audio", direction="recvonly")
            if kind == "whep+video":
                pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


# ---------------------------------------------------------------------------- peers
class Peer:
    """One aiortc RTCPeerConnection that offers, POSTs its offer and applies the answer."""

    def __init__(self):
        self.pc = RTCPeerConnection(config())
        self.states: list[str] = []
        self._state_changed = asyncio.Event()
        self.offer_sdp: str | None = None
        self.answer: Response | None = None
        self.location: str | None = None

        @self.pc.on("connectionstatechange")
        def _on_state():
            self.states.append(self.pc.connectionState)
            self._state_changed.set()

    async def negotiate(self, port, path, token=None) -> Response:
        """Offer (after gathering), POST, and — on 201 — apply the answer. Returns the response."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_sdp = self.pc.localDescription.sdp
        assert f" {LOOPBACK} " in self.offer_sdp, "the offer carries no 127.0.0.1 candidate:\n" + self.offer_sdp
        resp = await post_offer(port, path, self.offer_sdp, token)
        self.answer = resp
        if resp.status == 201:
            self.location = resp.headers.get("location")
            await self.pc.setRemoteDescription(RTCSessionDescription(resp.body.decode(), "answer"))
        return resp

    async def wait_state(self, states, timeout=10.0) -> str:
        """Waits until connectionState is one of `states`; returns it."""
        states = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while self.pc.connectionState not in states:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connectionState {self.pc.connectionState!r} (history {self.states}), "
                                     f"not {sorted(states)} within {timeout} s")
            self._state_changed.clear()
            try:
                await asyncio.wait_for(self._state_changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.pc.connectionState

    async def connected(self, timeout=10.0):
        state = await self.wait_state({"connected", "failed", "closed"}, timeout)
        assert state == "connected", f"connectionState {state} (history {self.states})"

    def srtp_profiles(self) -> list[str]:
        """The SRTP protection profile each DTLS transport negotiated (OpenSSL's name)."""
        out = []
        for t in self.pc.getTransceivers():
            transport = t.sender.transport or t.receiver.transport
            if transport is not None and transport._ssl is not None:
                out.append(transport._ssl.get_selected_srtp_profile().decode())
        return out

    def dtls_states(self) -> list[str]:
        out = []
        for t in self.pc.getTransceivers():
            transport = t.sender.transport or t.receiver.transport
            if transport is not None:
                out.append(transport.state)
        return out

    async def close(self):
        try:
            await asyncio.wait_for(self.pc.close(), 5)
        except Exception:
            pass


class Collector:
    """Reads one remote track in the background: `frames` is [(monotonic time, frame)]."""

    def __init__(self, track):
        self.track = track
        self.frames: list = []
        self.times: list[float] = []
        self.ended = False
        self.error = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        try:
            while True:
                frame = await self.track.recv()
                self.frames.append(frame)
                self.times.append(time.monotonic())
                self._changed.set()
        except MediaStreamError:
            pass
        except Exception as e:  # noqa: BLE001 - recorded, the test decides
            self.error = repr(e)
        finally:
            self.ended = True
            self._changed.set()

    def __len__(self):
        return len(self.frames)

    async def wait_count(self, count, timeout=10.0, what="frames"):
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            left = deadline - time.monotonic()
            if self.ended or left <= 0:
                raise AssertionError(f"{self.track.kind}: {len(self.frames)} of {count} {what} within {timeout} s "
                                     f"(ended={self.ended}, error={self.error})")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


class WhepListener(Peer):
    """Receives audio (and optionally video) from POST /whep/{eventId}. `srtp_profile` (an
    OpenSSL name such as "SRTP_AES128_CM_SHA1_80") makes aiortc's DTLS offer only that SRTP
    protection profile, as OBS and many SDKs do; by default it offers all it has (GCM first)."""

    def __init__(self, video=False, srtp_profile: str | None = None):
        super().__init__()
        self.audio_transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        self.video_transceiver = self.pc.addTransceiver("video", direction="recvonly") if video else None
        if srtp_profile is not None:
            wanted = [p for p in SRTP_PROFILES if p.openssl_profile == srtp_profile.encode()]
            assert wanted, f"aiortc has no SRTP profile {srtp_profile}"
            for t in self.pc.getTransceivers():
                # aiortc has no public option for it; its DTLS transport reads this list when
                # it sets up the handshake (use_srtp) and when it keys SRTP.
                t.sender.transport._srtp_profiles = wanted
        self.tracks: dict[str, object] = {}
        self.collectors: dict[str, Collector] = {}
        self._track_added = asyncio.Event()

        @self.pc.on("track")
        def _on_track(track):
            self.tracks[track.kind] = track
            self.collectors[track.kind] = Collector(track)
            self._track_added.set()

    async def collector(self, kind, timeout=5.0) -> Collector:
        deadline = time.monotonic() + timeout
        while kind not in self.collectors:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no remote {kind} track within {timeout} s (tracks: {list(self.tracks)})")
            self._track_added.clear()
            try:
                await asyncio.wait_for(self._track_added.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.collectors[kind]

    async def send_pli(self):
        """Sends an RTCP PLI for the video stream (aiortc only does that on its own after loss or a
        decoder error)."""
        receiver = self.video_transceiver.receiver
        ssrcs = [s.source for s in receiver.getSynchronizationSources()]
        assert ssrcs, "no video RTP received yet: no SSRC to send a PLI for"
        await receiver._send_rtcp_pli(ssrcs[0])

    async def close(self):
        for c in self.collectors.values():
            await c.stop()
        await super().close()


class WhepSpeakersListener(Peer):
    """Per-speaker WHEP (`POST /whep/{eventId}?audio=speakers`): `tracks` recvonly audio
    sections, a Collector per track (by section index) and the CSRCs each track's packets carried
    (`csrcs[index]`; aiortc has no getContributingSources, so its receivers are wrapped)."""

    def __init__(self, tracks=3):
        super().__init__()
        self.transceivers = [self.pc.addTransceiver("audio", direction="recvonly") for _ in range(tracks)]
        self.csrcs: dict[int, set[int]] = {index: set() for index in range(tracks)}
        self.collectors: dict[int, Collector] = {}
        for index, transceiver in enumerate(self.transceivers):
            original = transceiver.receiver._handle_rtp_packet

            async def handle(packet, arrival_time_ms, original=original, index=index):
                self.csrcs[index].update(packet.csrc)
                await original(packet, arrival_time_ms)

            transceiver.receiver._handle_rtp_packet = handle

        @self.pc.on("track")
        def _on_track(track):
            for index, transceiver in enumerate(self.transceivers):
                if transceiver.receiver.track is track:
                    self.collectors[index] = Collector(track)

    async def track_of(self, source, timeout=10.0) -> int:
        """The index of the track whose packets name `source` as CSRC."""
        deadline = time.monotonic() + timeout
        while True:
            for index, seen in self.csrcs.items():
                if source in seen:
                    return index
            if time.monotonic() > deadline:
                raise AssertionError(f"no track carries source {source} within {timeout} s: {self.csrcs}")
            await asyncio.sleep(0.05)

    async def close(self):
        for c in self.collectors.values():
            await c.stop()
        await super().close()


class WhipSpeaker(Peer):
    """Publishes a sine to POST /whip/{eventId}."""

    def __init__(self, frequency: float, gain: float = 0.5):
        super().__init__()
        self.track = SineTrack(frequency, gain)
        self.transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
