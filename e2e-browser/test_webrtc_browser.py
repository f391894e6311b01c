"""WebRTC in real Chromium, over the HTTP contract of docs/protocol.md ("WebRTC: WHEP and WHIP") (WHIP in, WHEP out).

- The host goes live over the WebSocket; a Chromium whose fake microphone plays 440 Hz publishes
  with WHIP as the host; another Chromium plays the event with WHEP. The player's received samples
  (AnalyserNode on the remote MediaStream, inbound-rtp getStats) must carry the tone; the player
  counts as a listener; a WHEP player with the host's own token gets the mix without the host.
- DELETE of the Location ends a session: the publisher's tone leaves the mix, the player stops
  receiving and the host's participant_count goes back down; a second DELETE is 404.
- A co-host invited over the WebSocket publishes 660 Hz with WHIP; removed, its audio stops and
  the server closes its WHIP session (Chromium's DTLS transport goes to 'closed').
- The web client's host page (WebSocket Opus and VP8 screen) reaches a WHEP player: tone and picture.
- The error answers (401, 403, 415, 400, 404, 410) to offers Chromium really makes.
- Per-speaker tracks (`POST /whep/{id}?audio=speakers`): a player with three audio sections hears
  the host (WHIP, 440 Hz) and a co-host (WHIP, 880 Hz) as two tracks, each named by its RTP CSRC
  (the speaker's source id); the host's own player gets only the co-host's track.

The pages are the server's own start page (so fetch is same-origin); the WebRTC code is injected
with page.evaluate. Chromium needs --allow-loopback-in-peer-connection (conftest.py) to offer its
127.0.0.1 candidates, the only address in the test's network namespace.
"""

from __future__ import annotations

import contextlib
import http.client as http_client
import json
import threading
import time
import urllib.parse

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import awtest, new_page

TONE_HZ = 440
COHOST_HZ = 660
WEB_HOST_HZ = 550
SPEAKER_HZ = 880

# ---------------------------------------------------------------------------- page code
# window.rtc.start(role, path, token): one RTCPeerConnection; role "whip" sends the microphone,
# "whep" receives audio (and video). Waits for ICE gathering to complete (no trickle ICE), POSTs
# the offer and applies the answer. Returns what the server answered (status, headers, body).
# On the player, the remote stream goes into an AnalyserNode (window.rtc.peak / rms).
RTC_JS = r"""
(() => {
  if (window.rtc) return;
  const rtc = window.rtc = {
    pc: null, offer: null, answer: null, response: null, location: null,
    states: [], events: [], stream: null, ctx: null, analyser: null, audio: null,
  };
  const t0 = performance.now();
  const note = (what) => rtc.events.push(`${Math.round(performance.now() - t0)}ms ${what}`);

  function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
      });
    });
  }

  function listen(stream) {
    // A remote track reaches Web Audio reliably only while a media element also plays it.
    rtc.audio = new Audio();
    rtc.audio.muted = true;
    rtc.audio.srcObject = stream;
    rtc.audio.play().catch((e) => note(`audio.play: ${e}`));
    const ctx = rtc.ctx = new AudioContext({ sampleRate: 48000 });
    const analyser = rtc.analyser = ctx.createAnalyser();
    analyser.fftSize = 32768;               // 1.46 Hz bins at 48 kHz, 0.68 s of samples
    analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(analyser);
    ctx.resume();
  }

  rtc.start = async (role, path, token, opts = {}) => {
    const pc = rtc.pc = new RTCPeerConnection({ iceServers: [] });
    pc.addEventListener('connectionstatechange', () => {
      rtc.states.push(pc.connectionState); note(`connection ${pc.connectionState}`);
    });
    pc.addEventListener('iceconnectionstatechange', () => note(`ice ${pc.iceConnectionState}`));
    if (role === 'whip') {
      const stream = rtc.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly', streams: [stream] });
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      if (opts.video) pc.addTransceiver('video', { direction: 'recvonly' });
      const remote = new MediaStream();
      pc.addEventListener('track', (e) => {
        note(`track ${e.track.kind}`);
        remote.addTrack(e.track);
        if (e.track.kind === 'audio') listen(remote);
        if (e.track.kind === 'video') {
          const video = rtc.video = document.createElement('video');
          video.muted = true;
          video.srcObject = new MediaStream([e.track]);
          document.body.append(video);
          video.play().catch((err) => note(`video.play: ${err}`));
        }
      });
      rtc.stream = remote;
    }
    await pc.setLocalDescription(await pc.createOffer());
    const complete = await gathered(pc, 5000);
    note(`gathering complete=${complete}`);
    rtc.offer = pc.localDescription.sdp;
    const headers = { 'Content-Type': 'application/sdp' };
    if (token) headers['Authorization'] = `Bearer ${token}`;
    const res = await fetch(path, { method: 'POST', headers, body: rtc.offer });
    const body = await res.text();
    rtc.response = {
      status: res.status, location: res.headers.get('Location'),
      contentType: res.headers.get('Content-Type'), body,
    };
    note(`POST ${path} -> ${res.status}`);
    if (res.status !== 201) return { ...rtc.response, offer: rtc.offer, gathered: complete };
    rtc.answer = body;
    rtc.location = new URL(rtc.response.location, location.href).pathname;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    const dtls = pc.getTransceivers()[0].sender.transport;
    if (dtls) dtls.addEventListener('statechange', () => note(`dtls ${dtls.state}`));
    return { ...rtc.response, offer: rtc.offer, gathered: complete };
  };

  // An offer (ICE gathered) that is never sent: for the refusal tests.
  rtc.makeOffer = async (role) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    if (role === 'whip') {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly', streams: [stream] });
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 5000);
    const sdp = pc.localDescription.sdp;
    pc.close();
    return sdp;
  };

  rtc.hangUp = async (path) => {
    const res = await fetch(path || rtc.location, { method: 'DELETE' });
    note(`DELETE ${path || rtc.location} -> ${res.status}`);
    return { status: res.status, body: await res.text() };
  };

  // The strongest spectral peak between lo and hi Hz (parabolic interpolation), in dBFS, with the
  // median level of 100-4000 Hz as the floor it stands out of.
  rtc.peak = (lo, hi) => {
    const a = rtc.analyser;
    if (!a) return null;
    const bins = new Float32Array(a.frequencyBinCount);
    a.getFloatFrequencyData(bins);
    const hz = rtc.ctx.sampleRate / a.fftSize;
    let best = -1;
    for (let i = Math.ceil(lo / hz); i <= Math.floor(hi / hz); i++) {
      if (best < 0 || bins[i] > bins[best]) best = i;
    }
    const [l, c, r] = [bins[best - 1], bins[best], bins[best + 1]];
    const d = (l - r) / (2 * (l - 2 * c + r)) || 0;
    const floor = Array.from(bins.slice(Math.round(100 / hz), Math.round(4000 / hz))).sort((x, y) => x - y);
    return { frequency: (best + d) * hz, level: c, floor: floor[floor.length >> 1] };
  };

  // RMS (dBFS) and the largest absolute value of the last fftSize samples.
  rtc.rms = () => {
    const a = rtc.analyser;
    if (!a) return null;
    const x = new Float32Array(a.fftSize);
    a.getFloatTimeDomainData(x);
    let sum = 0, max = 0;
    for (const v of x) { sum += v * v; max = Math.max(max, Math.abs(v)); }
    return { rms: 10 * Math.log10(sum / x.length + 1e-20), max };
  };

  // What chrome://webrtc-internals would show: RTP, transport, candidate pair, codecs.
  rtc.stats = async () => {
    if (!rtc.pc) return [];
    const keep = {
      'inbound-rtp': ['kind', 'ssrc', 'packetsReceived', 'bytesReceived', 'packetsLost', 'jitter',
        'totalSamplesReceived', 'concealedSamples', 'silentConcealedSamples', 'concealmentEvents',
        'audioLevel', 'totalAudioEnergy', 'framesDecoded', 'keyFramesDecoded', 'codecId', 'lastPacketReceivedTimestamp'],
      'outbound-rtp': ['kind', 'ssrc', 'packetsSent', 'bytesSent', 'retransmittedPacketsSent', 'codecId', 'active'],
      'remote-inbound-rtp': ['kind', 'packetsLost', 'jitter', 'roundTripTime'],
      'media-source': ['kind', 'audioLevel', 'totalAudioEnergy', 'totalSamplesDuration'],
      'transport': ['dtlsState', 'iceState', 'dtlsRole', 'srtpCipher', 'dtlsCipher', 'tlsVersion',
        'selectedCandidatePairId', 'bytesSent', 'bytesReceived', 'packetsSent', 'packetsReceived'],
      'candidate-pair': ['state', 'nominated', 'localCandidateId', 'remoteCandidateId', 'bytesSent',
        'bytesReceived', 'requestsSent', 'responsesReceived', 'requestsReceived', 'currentRoundTripTime'],
      'local-candidate': ['address', 'port', 'protocol', 'candidateType'],
      'remote-candidate': ['address', 'port', 'protocol', 'candidateType'],
      'codec': ['mimeType', 'payloadType', 'clockRate', 'channels', 'sdpFmtpLine'],
    };
    const out = [];
    (await rtc.pc.getStats()).forEach((s) => {
      const fields = keep[s.type];
      if (!fields) return;
      const row = { type: s.type, id: s.id };
      for (const f of fields) if (s[f] !== undefined) row[f] = s[f];
      out.push(row);
    });
    return out;
  };

  rtc.inbound = async (kind = 'audio') => {
    let found = null;
    if (rtc.pc) (await rtc.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === kind) found = s;
    });
    return found && { packetsReceived: found.packetsReceived, totalSamplesReceived: found.totalSamplesReceived,
      concealedSamples: found.concealedSamples, silentConcealedSamples: found.silentConcealedSamples,
      bytesReceived: found.bytesReceived, framesDecoded: found.framesDecoded,
      keyFramesDecoded: found.keyFramesDecoded, pliCount: found.pliCount, firCount: found.firCount };
  };

  // The received picture: its size and the mean brightness (0-255) of a 64x36 copy of it.
  rtc.picture = () => {
    const v = rtc.video;
    if (!v || !v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = 64; c.height = 36;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, 64, 36);
    const px = g.getImageData(0, 0, 64, 36).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
    return { width: v.videoWidth, height: v.videoHeight, brightness: sum / (px.length / 4) };
  };

  rtc.dtlsState = () => {
    const t = rtc.pc && rtc.pc.getTransceivers()[0].sender.transport;
    return t ? t.state : null;
  };

  rtc.outbound = async () => {
    let found = null;
    if (rtc.pc) (await rtc.pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'audio') found = s;
    });
    return found && { packetsSent: found.packetsSent, bytesSent: found.bytesSent };
  };
})();
"""

# window.rtc.startSpeakers(path, token, n): a player with n recvonly audio sections (per-speaker
# WHEP, `?audio=speakers`); each remote track gets an AnalyserNode of its own. rtc.tracks() says
# what each track carries: its mid, SSRCs and CSRCs (getContributingSources: the speakers' source
# ids); rtc.trackPeak(i, lo, hi) is rtc.peak for track i.
SPEAKERS_JS = r"""
(() => {
  const rtc = window.rtc;
  rtc.perTrack = [];
  rtc.startSpeakers = async (path, token, n) => {
    const pc = rtc.pc = new RTCPeerConnection({ iceServers: [] });
    pc.addEventListener('connectionstatechange', () => rtc.states.push(pc.connectionState));
    for (let i = 0; i < n; i++) pc.addTransceiver('audio', { direction: 'recvonly' });
    const ctx = rtc.ctx = new AudioContext({ sampleRate: 48000 });
    pc.addEventListener('track', (e) => {
      const stream = new MediaStream([e.track]);
      const audio = new Audio();               // keeps the remote track flowing into Web Audio
      audio.muted = true;
      audio.srcObject = stream;
      audio.play().catch(() => {});
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 32768;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(stream).connect(analyser);
      ctx.resume();
      rtc.perTrack.push({ mid: e.transceiver.mid, receiver: e.receiver, analyser, audio });
    });
    await pc.setLocalDescription(await pc.createOffer());
    const complete = await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve(true);
      const timer = setTimeout(() => resolve(false), 5000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
      });
    });
    rtc.offer = pc.localDescription.sdp;
    const headers = { 'Content-Type': 'application/sdp' };
    if (token) headers['Authorization'] = `Bearer ${token}`;
    const res = await fetch(path, { method: 'POST', headers, body: rtc.offer });
    const body = await res.text();
    rtc.response = { status: res.status, location: res.headers.get('Location'),
      contentType: res.headers.get('Content-Type'), body };
    if (res.status === 201) {
      rtc.answer = body;
      rtc.location = new URL(rtc.response.location, location.href).pathname;
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
    }
    return { ...rtc.response, offer: rtc.offer, gathered: complete };
  };
  rtc.tracks = () => rtc.perTrack.map((t) => ({
    mid: t.mid,
    ssrcs: t.receiver.getSynchronizationSources().map((s) => s.source),
    csrcs: t.receiver.getContributingSources().map((s) => s.source),
  }));
  rtc.trackPeak = (i, lo, hi) => {
    const saved = rtc.analyser;
    rtc.analyser = rtc.perTrack[i] && rtc.perTrack[i].analyser;
    try { return rtc.peak(lo, hi); } finally { rtc.analyser = saved; }
  };
})();
"""


# ---------------------------------------------------------------------------- helpers
class Socket:
    """An Airwave WebSocket read on a thread (so it never backs up) that keeps the JSON frames:
    Socket.host(server, user) goes live, Socket.listener(server, event, user) joins verified."""

    def __init__(self, server, path, name):
        self.name = name
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(ws_connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=10,
                                                       close_timeout=3, max_size=8 * 1024 * 1024))
        self.first = json.loads(self.ws.recv(timeout=10))
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    @classmethod
    def host(cls, server, user_id, username="Hana"):
        token = awtest.token(user_id, username)
        sock = cls(server, awtest.host_path(user_id, token), "host")
        assert sock.first["type"] == "stream_link", sock.first
        sock.user_id, sock.token, sock.event_id = user_id, token, sock.first["event_id"]
        return sock

    @classmethod
    def listener(cls, server, event_id, user_id):
        token = awtest.token(user_id)
        sock = cls(server, awtest.join_path(event_id, user_id, token), user_id)
        assert sock.first["type"] == "stream_state", sock.first
        sock.user_id, sock.token, sock.event_id = user_id, token, event_id
        return sock

    def send(self, msg):
        self.ws.send(json.dumps(msg))

    def _read(self):
        try:
            for raw in self.ws:
                if isinstance(raw, str):
                    with self._cond:
                        self.messages.append(json.loads(raw))
                        self._cond.notify_all()
        except Exception:
            pass

    def wait_for(self, pred, timeout=10.0, what="a message"):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.messages:
                    if pred(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no {what} within {timeout} s; got {self.messages[-8:]}")
                self._cond.wait(left)

    def last_count(self):
        counts = [m["count"] for m in self.messages if m.get("type") == "participant_count"]
        return counts[-1] if counts else None

    def wait_count(self, n, timeout=10.0):
        """Until the latest participant_count says n (the host is not counted)."""
        deadline = time.monotonic() + timeout
        while self.last_count() != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: participant_count never became {n} within {timeout} s; "
                                     f"counts {[m['count'] for m in self.messages if m.get('type') == 'participant_count']}")
            time.sleep(0.05)

    def close(self):
        try:
            self._stack.close()
        except Exception:
            pass


@pytest.fixture
def host(server):
    sock = Socket.host(server, awtest.uid("host"))
    yield sock
    sock.close()


def rtc_page(browser, server, logs):
    page = new_page(browser, logs)
    page.goto(f"{server.http}/")
    page.evaluate(RTC_JS)
    return page


def diagnose(page, name):
    """getStats, connection events and SDP of one page, for a failure message."""
    try:
        info = page.evaluate("""async () => ({
            events: window.rtc.events, response: window.rtc.response,
            offer: window.rtc.offer, stats: await window.rtc.stats(),
        })""")
    except Exception as e:  # the page itself may be gone
        return f"--- {name}: no diagnostics ({e})"
    return f"--- {name}\n{json.dumps(info, indent=1)}"


def start(page, role, path, token=None, video=False):
    result = page.evaluate("([role, path, token, video]) => window.rtc.start(role, path, token, {video})",
                           [role, path, token, video])
    assert result["gathered"], f"{role}: ICE gathering did not complete\n{result['offer']}"
    assert "a=candidate:" in result["offer"] and "127.0.0.1" in result["offer"], \
        f"{role}: Chromium offered no loopback candidate (--allow-loopback-in-peer-connection?)\n{result['offer']}"
    assert result["status"] == 201, f"POST {path}: {result['status']} {result['body'][:500]}\n{result['offer']}"
    assert "application/sdp" in (result["contentType"] or ""), result
    assert result["location"], f"POST {path}: 201 without Location"
    answer = result["body"]
    assert answer.startswith("v=0"), answer[:200]
    assert "a=ice-lite" in answer and "a=fingerprint:" in answer and "a=candidate:" in answer, answer
    return result


def wait_connected(page, name, timeout=15000):
    try:
        page.wait_for_function("window.rtc.pc && window.rtc.pc.connectionState === 'connected'", timeout=timeout)
    except Exception:
        raise AssertionError(f"{name}: RTCPeerConnection not connected\n{diagnose(page, name)}") from None


def wait_for_samples(page, samples=48000, timeout=15.0):
    """Until inbound-rtp says `samples` audio samples were received and decoded; returns the stats."""
    deadline = time.monotonic() + timeout
    while True:
        inbound = page.evaluate("window.rtc.inbound('audio')")
        if inbound and inbound["totalSamplesReceived"] >= samples:
            return inbound
        if time.monotonic() > deadline:
            raise AssertionError(f"player: fewer than {samples} samples received in {timeout} s: {inbound}\n"
                                 f"{diagnose(page, 'player')}")
        page.wait_for_timeout(100)


def wait_for_tone(page, hz, timeout=15000):
    """Until the received audio has a clear peak within 3 Hz of hz, 30 dB over the spectrum's median."""
    try:
        page.wait_for_function(
            """([hz]) => {
                const p = window.rtc.peak(hz * 0.7, hz * 1.3);
                return p && p.level > -55 && p.level - p.floor > 30 && Math.abs(p.frequency - hz) <= 3;
            }""", arg=[hz], timeout=timeout, polling=100)
    except Exception:
        peak = page.evaluate(f"window.rtc.peak({hz * 0.7}, {hz * 1.3})")
        raise AssertionError(f"player: no {hz} Hz tone (peak {peak}, rms {page.evaluate('window.rtc.rms()')})\n"
                             f"{diagnose(page, 'player')}") from None


def wait_for_silence(page, hz, timeout=10000):
    """Until nothing near hz is left in the received audio."""
    try:
        page.wait_for_function(f"window.rtc.peak({hz * 0.7}, {hz * 1.3}).level < -90", timeout=timeout, polling=100)
    except Exception:
        raise AssertionError(f"player: the {hz} Hz tone did not stop: {page.evaluate(f'window.rtc.peak({hz * 0.7}, {hz * 1.3})')}\n"
                             f"{diagnose(page, 'player')}") from None


def publish_and_play(server, launch, host, logs):
    """A publisher page (WHIP, 440 Hz microphone) and a player page (WHEP), both connected."""
    publisher = rtc_page(launch(tone_hz=TONE_HZ), server, logs)
    player = rtc_page(launch(), server, logs)
    start(publisher, "whip", f"/whip/{host.event_id}", host.token)
    start(player, "whep", f"/whep/{host.event_id}", video=True)
    wait_connected(publisher, "publisher")
    wait_connected(player, "player")
    return publisher, player


def http(server, method, path, body=b"", headers=None):
    """(status, headers lower-case, body text) of one request to the server."""
    conn = http_client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


# ---------------------------------------------------------------------------- tests
def test_whip_publisher_is_heard_by_whep_player(server, launch, host):
    logs: list[str] = []
    publisher, player = publish_and_play(server, launch, host, logs)
    try:
        # Samples really arrive over RTP and are decoded (not concealment of nothing) ...
        inbound = wait_for_samples(player, 48000)
        assert inbound["packetsReceived"] >= 40, inbound
        assert inbound["concealedSamples"] < inbound["totalSamplesReceived"] * 0.25, inbound
        # ... and they carry the publisher's tone, read several times over a second.
        wait_for_tone(player, TONE_HZ)
        peaks = []
        for _ in range(4):
            peaks.append(player.evaluate(f"window.rtc.peak({TONE_HZ * 0.7}, {TONE_HZ * 1.3})"))
            player.wait_for_timeout(300)
        for heard in peaks:
            assert abs(heard["frequency"] - TONE_HZ) <= 3 and heard["level"] > -55, peaks
            assert heard["level"] - heard["floor"] > 30, peaks
        level = player.evaluate("window.rtc.rms()")
        assert level["max"] > 0.01, level

        outbound = publisher.evaluate("window.rtc.outbound()")
        assert outbound and outbound["packetsSent"] >= 40, outbound
        codecs = [s for s in player.evaluate("window.rtc.stats()") if s["type"] == "codec"]
        assert any(c["mimeType"].lower() == "audio/opus" and c["clockRate"] == 48000 for c in codecs), codecs

        # The WHEP player counts as a listener once connected; the publisher (the host) does not.
        host.wait_count(1)
        print(f"player hears {peaks[-1]['frequency']:.1f} Hz at {peaks[-1]['level']:.1f} dB "
              f"(median {peaks[-1]['floor']:.1f} dB, rms {level['rms']:.1f} dB); {inbound}; publisher {outbound}")

        # A WHEP player with the host's token gets the mix without the host's own voice: packets, no tone.
        own = rtc_page(player.context.browser, server, logs)
        start(own, "whep", f"/whep/{host.event_id}", host.token)
        wait_connected(own, "host's own player")
        own_inbound = wait_for_samples(own, 24000)
        assert own_inbound["packetsReceived"] >= 20, own_inbound
        own_peak = own.evaluate(f"window.rtc.peak({TONE_HZ * 0.7}, {TONE_HZ * 1.3})")
        assert own_peak["level"] < -90, f"the host hears itself over WHEP: {own_peak}"
        wait_for_tone(player, TONE_HZ)  # while the other player still hears it
        print(f"host's own WHEP player: {own_inbound}, {own_peak}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{diagnose(publisher, 'publisher')}") from None
    assert not [line for line in logs if "[pageerror]" in line], logs


def test_whip_cohost_is_heard_then_cut_when_removed(server, launch, host):
    """A co-host (invited over the WebSocket) publishes 660 Hz with WHIP; removed, its audio stops
    for the WHEP player and the server closes its WHIP session (DTLS close_notify)."""
    logs: list[str] = []
    cohost = Socket.listener(server, host.event_id, awtest.uid("cora"))
    try:
        host.wait_for(lambda m: m.get("type") == "participant_joined", what="participant_joined")
        host.send({"type": "invite_cohost", "user_id": cohost.user_id})
        cohost.wait_for(lambda m: m.get("type") == "cohost_invite", what="cohost_invite")
        cohost.send({"type": "accept_cohost"})
        host.wait_for(lambda m: m.get("type") == "cohost_joined", what="cohost_joined")

        publisher = rtc_page(launch(tone_hz=COHOST_HZ), server, logs)
        player = rtc_page(launch(), server, logs)
        start(publisher, "whip", f"/whip/{host.event_id}", cohost.token)
        start(player, "whep", f"/whep/{host.event_id}")
        wait_connected(publisher, "co-host publisher")
        wait_connected(player, "player")
        wait_for_tone(player, COHOST_HZ)
        location = publisher.evaluate("window.rtc.location")

        host.send({"type": "remove_cohost", "participant_id": cohost.user_id})
        cohost.wait_for(lambda m: m.get("type") == "cohost_removed", what="cohost_removed")
        wait_for_silence(player, COHOST_HZ)
        try:
            publisher.wait_for_function("window.rtc.dtlsState() === 'closed'", timeout=5000)
        except Exception:
            raise AssertionError(f"the removed co-host's WHIP session was not closed (DTLS {publisher.evaluate('window.rtc.dtlsState()')})\n"
                                 f"{diagnose(publisher, 'co-host publisher')}") from None
        assert publisher.evaluate(f"window.rtc.hangUp({location!r})")["status"] == 404
        assert player.evaluate("window.rtc.pc.connectionState") == "connected"
        print("co-host publisher:", publisher.evaluate("window.rtc.events"))
    finally:
        cohost.close()
    assert not [line for line in logs if "[pageerror]" in line], logs


def test_delete_ends_the_sessions(server, launch, host):
    logs: list[str] = []
    publisher, player = publish_and_play(server, launch, host, logs)
    wait_for_tone(player, TONE_HZ)
    host.wait_count(1)
    whep_location = player.evaluate("window.rtc.location")
    whip_location = publisher.evaluate("window.rtc.location")
    assert whep_location.startswith(f"/whep/{host.event_id}/") and len(whep_location.split("/")) == 4, whep_location
    assert whip_location.startswith(f"/whip/{host.event_id}/") and len(whip_location.split("/")) == 4, whip_location

    # The publisher hangs up: its tone leaves the mix the player still receives; again is 404.
    assert publisher.evaluate("window.rtc.hangUp()")["status"] == 200
    wait_for_silence(player, TONE_HZ)
    assert player.evaluate("window.rtc.pc.connectionState") == "connected"
    assert publisher.evaluate(f"window.rtc.hangUp({whip_location!r})")["status"] == 404

    # The player hangs up: the host's count goes back to 0, no more packets reach the player, its
    # connection ends (the server's DTLS close_notify, or ICE giving up when nothing answers); again is 404.
    assert player.evaluate("window.rtc.hangUp()")["status"] == 200
    host.wait_count(0)
    before = player.evaluate("window.rtc.inbound('audio')")["packetsReceived"]
    player.wait_for_timeout(1000)
    after = player.evaluate("window.rtc.inbound('audio')")["packetsReceived"]
    assert after - before <= 2, f"player still receives after DELETE: {before} -> {after}"
    assert player.evaluate(f"window.rtc.hangUp({whep_location!r})")["status"] == 404
    try:
        player.wait_for_function("window.rtc.dtlsState() === 'closed' || "
                                 "['disconnected', 'failed', 'closed'].includes(window.rtc.pc.connectionState)",
                                 timeout=10000)
    except Exception:
        raise AssertionError(f"player still connected 10 s after DELETE\n{diagnose(player, 'player')}") from None
    print("player:", player.evaluate("window.rtc.events"))
    print("publisher:", publisher.evaluate("window.rtc.events"))
    assert not [line for line in logs if "[pageerror]" in line], logs


def test_web_client_host_with_screen_reaches_whep_player(server, launch):
    """The web client's host page goes live (WebSocket media: Opus microphone, VP8 screen); a WHEP
    player hears the microphone and, with a video m-line, decodes the screen from a keyframe on."""
    logs: list[str] = []
    host_id = awtest.uid("host")
    web_host = new_page(launch(tone_hz=WEB_HOST_HZ), logs)
    query = urllib.parse.urlencode({"user": host_id, "name": "Hana", "token": awtest.token(host_id, "Hana"), "processing": "0"})
    web_host.goto(f"{server.http}/host.html?{query}")
    web_host.click("#go-live")
    web_host.wait_for_function("window.airwave.eventId")
    event_id = web_host.evaluate("window.airwave.eventId")

    player = rtc_page(launch(), server, logs)
    start(player, "whep", f"/whep/{event_id}", video=True)
    wait_connected(player, "player")
    wait_for_tone(player, WEB_HOST_HZ)

    web_host.click("#screen")
    web_host.wait_for_function("document.body.dataset.mode === 'screen'")
    deadline = time.monotonic() + 15
    while True:
        video = player.evaluate("window.rtc.inbound('video')")
        picture = player.evaluate("window.rtc.picture()")
        if video and video["framesDecoded"] >= 10 and video["keyFramesDecoded"] >= 1 and picture and picture["brightness"] > 20:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"player: no screen picture: {video} {picture}\n{diagnose(player, 'player')}")
        player.wait_for_timeout(200)
    video = player.evaluate("window.rtc.inbound('video')")
    picture = player.evaluate("window.rtc.picture()")
    wait_for_tone(player, WEB_HOST_HZ)  # the microphone goes on in screen mode
    print(f"player: screen {picture}, {video}")
    assert not [line for line in logs if "[pageerror]" in line], logs


def test_refusals(server, launch, host):
    """The contract's error answers, for offers Chromium really makes."""
    page = rtc_page(launch(tone_hz=TONE_HZ), server, [])
    whip_offer = page.evaluate("window.rtc.makeOffer('whip')").encode()
    whep_offer = page.evaluate("window.rtc.makeOffer('whep')").encode()
    sdp = {"Content-Type": "application/sdp"}
    listener = awtest.uid("lis")

    def expect(method, path, status, code, body=b"", headers=None):
        got, hdrs, text = http(server, method, path, body, headers)
        assert got == status, f"{method} {path}: expected {status} {code}, got {got} {hdrs} {text[:300]}"
        if code:
            err = json.loads(text)
            assert err.get("type") == "error" and err.get("code") == code and err.get("message"), err

    whip, whep = f"/whip/{host.event_id}", f"/whep/{host.event_id}"
    expect("POST", whip, 401, "unauthorized", whip_offer, sdp)
    expect("POST", whip, 401, "unauthorized", whip_offer,
           {**sdp, "Authorization": f"Bearer {awtest.wrong_signature_token(host.user_id)}"})
    expect("POST", whip, 403, "not_allowed", whip_offer, {**sdp, "Authorization": f"Bearer {awtest.token(listener)}"})
    expect("POST", whep, 415, "bad_request", whep_offer, {"Content-Type": "text/plain"})
    expect("POST", whep, 400, "bad_request", b"v=0\r\nthis is not SDP\r\n", sdp)
    expect("POST", "/whep/nosucheventxyz", 404, "event_not_found", whep_offer, sdp)
    expect("DELETE", f"{whep}/nosuchsession", 404, None)
    expect("DELETE", f"{whip}/nosuchsession", 404, None)

    # After the host ends the event (it has stream_ended already, so has everyone): 410, also in the
    # moment between the end and the registry forgetting the event (the routes ask the driver).
    host.send({"type": "stream_ended"})
    host.wait_for(lambda m: m.get("type") == "stream_ended", what="stream_ended")
    expect("POST", whep, 410, "event_ended", whep_offer, sdp)
    expect("POST", whip, 410, "event_ended", whip_offer, {**sdp, "Authorization": f"Bearer {host.token}"})


def test_per_speaker_tracks_carry_each_speaker_named_by_csrc(server, launch, host):
    """`?audio=speakers`: the host (WHIP, 440 Hz) and a co-host (WHIP, 880 Hz) reach a player with
    three audio sections as two tracks. Each track's CSRC is its speaker's source id (host 1, the
    co-host's from cohost_joined), and each carries that speaker's tone alone; the third is silent.
    The host's own per-speaker player gets the co-host's track only."""
    logs: list[str] = []
    cohost = Socket.listener(server, host.event_id, awtest.uid("cora"))
    try:
        host.wait_for(lambda m: m.get("type") == "participant_joined", what="participant_joined")
        host.send({"type": "invite_cohost", "user_id": cohost.user_id})
        cohost.wait_for(lambda m: m.get("type") == "cohost_invite", what="cohost_invite")
        cohost.send({"type": "accept_cohost"})
        joined = host.wait_for(lambda m: m.get("type") == "cohost_joined", what="cohost_joined")
        cohost_source = joined["source_id"]
        assert cohost_source != 1, joined

        host_publisher = rtc_page(launch(tone_hz=TONE_HZ), server, logs)
        cohost_publisher = rtc_page(launch(tone_hz=SPEAKER_HZ), server, logs)
        start(host_publisher, "whip", f"/whip/{host.event_id}", host.token)
        start(cohost_publisher, "whip", f"/whip/{host.event_id}", cohost.token)
        wait_connected(host_publisher, "host publisher")
        wait_connected(cohost_publisher, "co-host publisher")

        def play(token, name):
            page = rtc_page(launch(), server, logs)
            page.evaluate(SPEAKERS_JS)
            result = page.evaluate("([path, token]) => window.rtc.startSpeakers(path, token, 3)",
                                   [f"/whep/{host.event_id}?audio=speakers", token])
            assert result["gathered"], result["offer"]
            assert result["status"] == 201, f"{name}: {result['status']} {result['body'][:500]}"
            answer = result["body"]
            audio = [section for section in answer.split("m=")[1:] if section.startswith("audio")]
            assert len(audio) == 3 and all(" 0 UDP" not in section.split("\r\n")[0] for section in audio), answer
            ssrcs = [line.split()[0].split(":")[1] for section in audio for line in section.split("\r\n")
                     if line.startswith("a=ssrc:") and "cname:" in line]
            assert len(set(ssrcs)) == 3, answer
            wait_connected(page, name)
            return page

        def tracks_by_speaker(page, name, want, timeout=15.0):
            """{source id: track index} once every wanted source is on a track whose tone is heard."""
            deadline = time.monotonic() + timeout
            while True:
                tracks = page.evaluate("window.rtc.tracks()")
                found = {}
                for index, track in enumerate(tracks):
                    for source in track["csrcs"]:
                        found.setdefault(source, index)
                heard = {}
                for source, hz in want.items():
                    if source in found:
                        peak = page.evaluate(f"window.rtc.trackPeak({found[source]}, {hz * 0.7}, {hz * 1.3})")
                        if peak and peak["level"] > -55 and peak["level"] - peak["floor"] > 30 and abs(peak["frequency"] - hz) <= 3:
                            heard[source] = found[source]
                if set(heard) == set(want):
                    return heard, tracks
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name}: speakers {sorted(want)} not each heard on a track; tracks {tracks}, "
                                         f"heard {heard}\n{diagnose(page, name)}")
                page.wait_for_timeout(200)

        player = play(None, "per-speaker player")
        heard, tracks = tracks_by_speaker(player, "per-speaker player", {1: TONE_HZ, cohost_source: SPEAKER_HZ})
        assert heard[1] != heard[cohost_source], tracks
        # One speaker per track, and its tone alone: the host's track has no 880 Hz, the co-host's no 440 Hz.
        assert tracks[heard[1]]["csrcs"] == [1] and tracks[heard[cohost_source]]["csrcs"] == [cohost_source], tracks
        for track, own_hz, other_hz in ((heard[1], TONE_HZ, SPEAKER_HZ), (heard[cohost_source], SPEAKER_HZ, TONE_HZ)):
            mine = player.evaluate(f"window.rtc.trackPeak({track}, {own_hz - 15}, {own_hz + 15})")
            other = player.evaluate(f"window.rtc.trackPeak({track}, {other_hz - 15}, {other_hz + 15})")
            print(f"track {track}: {own_hz} Hz {mine}, {other_hz} Hz {other}")
            # The other speaker's tone is at most coding noise there (measured ≈ 41 dB under the
            # track's own); mixed in, it would be about as loud.
            assert other["level"] < mine["level"] - 30, f"track {track} ({own_hz} Hz) carries {other_hz} Hz too: {mine} {other}"
        idle = [i for i, track in enumerate(tracks) if i not in heard.values()]
        assert len(idle) == 1 and tracks[idle[0]]["csrcs"] == [], tracks
        host.wait_count(2)  # the co-host's WebSocket and the player
        print(f"per-speaker player: {tracks}")

        # The host's own per-speaker player: the co-host only, never the host's own voice.
        own = play(host.token, "host's per-speaker player")
        heard_own, own_tracks = tracks_by_speaker(own, "host's per-speaker player", {cohost_source: SPEAKER_HZ})
        own.wait_for_timeout(1000)
        own_tracks = own.evaluate("window.rtc.tracks()")
        assert all(1 not in track["csrcs"] for track in own_tracks), own_tracks
        for index in range(len(own_tracks)):
            mine = own.evaluate(f"window.rtc.trackPeak({index}, {TONE_HZ - 15}, {TONE_HZ + 15})")
            if index == heard_own[cohost_source]:
                cohost_tone = own.evaluate(f"window.rtc.trackPeak({index}, {SPEAKER_HZ - 15}, {SPEAKER_HZ + 15})")
                assert mine["level"] < cohost_tone["level"] - 30, f"the host hears itself on the co-host's track: {mine} {cohost_tone}"
            else:
                assert mine is None or mine["level"] < -90, f"the host hears itself on track {index}: {mine}"
        print(f"host's own per-speaker player: {own_tracks}")
    finally:
        cohost.close()
    assert not [line for line in logs if "[pageerror]" in line], logs
