"""Listening over plain HTTP (docs/protocol.md "Listening over plain HTTP", PROTOCOL.md 9):
`GET /listen/{eventId}` is the event's mix as a live Ogg Opus stream.

A plain socket reads the chunked body (so every chunk, page and the final empty chunk are seen
as sent), ffmpeg plays the same URL as a player would and ffprobe reads the captured stream;
the host sends the 440 Hz tone fixture as PCM at real-time pace and the tone is found again in
what ffmpeg decoded (a Goertzel filter per 20 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest

from awtest import close_all, go_live, http_get, join, metric_sum, metrics, player_node, q, recv_until, run, send, token, uid
from test_media import KIND_PCM, TONE_440, Tap, make_cohost, media

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
RATE = 48_000
PRE_SKIP = 312

pytestmark = pytest.mark.skipif(not (FFMPEG and FFPROBE), reason="needs ffmpeg and ffprobe")


# ---------------------------------------------------------------------------- Ogg pages
def _crc_table():
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


class Page:
    def __init__(self, flags, granule, serial, sequence, packets, raw):
        self.flags, self.granule, self.serial, self.sequence = flags, granule, serial, sequence
        self.packets, self.raw = packets, raw


def ogg_pages(data: bytes) -> list[Page]:
    """Whole pages only; every CRC checked."""
    pages, offset = [], 0
    while offset < len(data):
        assert data[offset:offset + 4] == b"OggS", f"no page at {offset}"
        flags = data[offset + 5]
        granule, serial, sequence, crc = struct.unpack_from("<qIII", data, offset + 6)
        count = data[offset + 26]
        lacing = data[offset + 27:offset + 27 + count]
        body = offset + 27 + count
        end = body + sum(lacing)
        raw = data[offset:end]
        assert len(raw) == end - offset, "a page cut short"
        assert ogg_crc(raw[:22] + b"\0\0\0\0" + raw[26:]) == crc, f"bad CRC on page {sequence}"
        packets, start, size = [], body, 0
        for value in lacing:
            size += value
            if value < 255:
                packets.append(data[start:start + size])
                start, size = start + size, 0
        pages.append(Page(flags, granule, serial, sequence, packets, raw))
        offset = end
    return pages


# ---------------------------------------------------------------------------- an HTTP reader by hand
class ListenStream:
    """`GET path` on a plain socket, read in a thread: the head, then the chunked body chunk by
    chunk ((monotonic time, bytes) each), until the final empty chunk (`clean_end`) or EOF.
    `read=False` sends the request and never reads again (a stuck player)."""

    def __init__(self, port, path, read=True, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: e2e\r\n\r\n".encode())
        self.status = None
        self.headers: dict[str, str] = {}
        self.chunks: list[tuple[float, bytes]] = []
        self.clean_end = False
        self.eof = threading.Event()
        self.head_read = threading.Event()
        self.changed = threading.Condition()
        self.error = None
        self.buffer = b""
        if read:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buffer += data

    def _take_line(self):
        while b"\r\n" not in self.buffer:
            self._recv()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _run(self):
        try:
            self.status = int(self._take_line().split()[1])
            while line := self._take_line():
                name, value = line.decode().split(":", 1)
                self.headers[name.strip().lower()] = value.strip()
            self.head_read.set()
            if self.headers.get("transfer-encoding") != "chunked":
                return
            while True:
                size = int(self._take_line(), 16)
                while len(self.buffer) < size + 2:
                    self._recv()
                chunk, self.buffer = self.buffer[:size], self.buffer[size:]
                assert self.buffer[:2] == b"\r\n", "chunk not followed by CRLF"
                self.buffer = self.buffer[2:]
                if size == 0:
                    self.clean_end = True
                    return
                with self.changed:
                    self.chunks.append((time.monotonic(), chunk))
                    self.changed.notify_all()
        except EOFError:
            pass
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.error = repr(e)
        finally:
            self.head_read.set()
            self.eof.set()
            with self.changed:
                self.changed.notify_all()

    @property
    def body(self) -> bytes:
        return b"".join(c for _, c in self.chunks)

    def wait_chunks(self, count, timeout):
        """Waits until `count` chunks have arrived; returns how many did."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.chunks) < count and not self.eof.is_set() and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
            return len(self.chunks)

    def read_to_eof(self, timeout) -> bytes:
        """For a stuck reader: everything the socket still holds, until the server closes it."""
        data = b""
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except (socket.timeout, ConnectionResetError):
            return data + b"<no eof>"
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


async def listen(srv, path, **kw) -> ListenStream:
    stream = await asyncio.to_thread(ListenStream, player_node(srv).port, path, **kw)
    if kw.get("read", True):
        assert await asyncio.to_thread(stream.head_read.wait, 10), "no response head"
    return stream


# ---------------------------------------------------------------------------- tone analysis
def tone_windows(samples: np.ndarray, frequency=440.0, others=(550.0, 1000.0), window=960) -> np.ndarray:
    """Per 20 ms window: True where the tone stands clearly above the other frequencies."""
    count = len(samples) // window
    frames = samples[:count * window].reshape(count, window)
    n = np.arange(window)

    def power(f):
        return np.abs(frames @ np.exp(-2j * np.pi * f * n / RATE)) ** 2

    tone = power(frequency)
    off = np.maximum.reduce([power(f) for f in others])
    loud = tone > (0.05 * window * 32768 * 0.5) ** 2  # well above silence and the windows at its edges
    return loud & (tone > 100 * off)


async def send_pcm(ws, pcm: bytes, frames: int):
    """`frames` 20 ms mono PCM frames of the looped fixture at real-time pace."""
    t0 = time.monotonic()
    for i in range(frames):
        offset = (i * 1920) % len(pcm)
        chunk = (pcm + pcm)[offset:offset + 1920]
        await ws.send(media(KIND_PCM, chunk, seq=i, ts=i * 960))
        await asyncio.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))


def ffprobe(path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
                          "-of", "json", path], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return json.loads(out.stdout)["streams"][0]


def decode_file(path) -> np.ndarray:
    out = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr.decode(errors="replace")
    return np.frombuffer(out.stdout, dtype="<i2").astype(np.float64)


# ---------------------------------------------------------------------------- tests
def test_unknown_event_is_404_and_an_ended_one_410(server):
    async def main():
        status, headers, body = await asyncio.to_thread(http_get, player_node(server), f"/listen/{uid('nope')}")
        assert status == 404 and json.loads(body)["code"] == "event_not_found", (status, body)
        ws, link = await go_live(server, uid("host"), "Host")
        await send(ws, {"type": "stream_ended", "event_id": link["event_id"]})
        await recv_until(ws, "stream_ended", 10)
        await close_all(ws)
        status, headers, body = await asyncio.to_thread(http_get, player_node(server), f"/listen/{link['event_id']}")
        assert status == 410 and json.loads(body)["code"] == "event_ended", (status, body)
        status, _, body = await asyncio.to_thread(http_get, player_node(server), f"/listen/{link['event_id']}?token=not-a-token")
        assert status == 401 and json.loads(body)["code"] == "unauthorized", (status, body)
    run(main(), 30)


def test_players_hear_the_tone_and_every_stream_ends_cleanly(server):
    tone_frames = 100  # 2.00 s of the 440 Hz fixture

    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host = Tap(ws, "host")
        event_id = link["event_id"]
        path = f"/listen/{event_id}"
        folder = tempfile.mkdtemp(prefix="airwave-listen-")
        try:
            first = await listen(server, path)
            assert first.status == 200, first.status
            assert first.headers["content-type"] == "audio/ogg", first.headers
            assert first.headers["transfer-encoding"] == "chunked", first.headers
            # A player: ffmpeg decodes the URL as it streams.
            player_pcm = os.path.join(folder, "player.pcm")
            player = subprocess.Popen([FFMPEG, "-nostdin", "-v", "error", "-i", f"http://127.0.0.1:{player_node(server).port}{path}",
                                       "-f", "s16le", "-ac", "1", "-ar", "48000", "-y", player_pcm],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            fan = uid("fan")
            second = await listen(server, f"{path}?token={q(token(fan, 'Fan'))}")
            # Three HTTP listeners: counted and listed as listeners, the token's one verified.
            await host.wait_text("participant_count", timeout=15, pred=lambda m: m["count"] == 3)
            index = await host.wait_text("participant_list", timeout=10, pred=lambda m: len(m["participants"]) == 4)
            listed = {p["user_id"]: p for p in host.frames[index][1]["participants"]}
            assert listed[fan]["role"] == "listener" and listed[fan]["verified"] is True, listed[fan]
            anonymous = [p for p in listed.values() if p["user_id"].startswith("http-")]
            assert len(anonymous) == 2 and all(p["role"] == "listener" and not p["verified"] for p in anonymous), listed

            await send_pcm(ws, TONE_440, tone_frames)
            # Pages keep coming every 200 ms: four more cover the jitter buffer's delay.
            have = len(first.chunks)
            assert await asyncio.to_thread(first.wait_chunks, have + 4, 5) >= have + 4, "pages stopped coming"
            await send(ws, {"type": "stream_ended", "event_id": event_id})
            for stream in (first, second):
                assert await asyncio.to_thread(stream.eof.wait, 10), "the stream did not end"
            _, player_errors = await asyncio.to_thread(player.communicate, timeout=20)
            assert player.returncode == 0 and not player_errors, player_errors
            await close_all(ws)

            for stream in (first, second):
                assert stream.error is None and stream.clean_end, (stream.error, stream.clean_end)
            raw = first.body
            pages = ogg_pages(raw)
            # Each chunk is whole pages; OpusHead alone on the first (BOS), OpusTags, then audio.
            assert all(ogg_pages(chunk) for _, chunk in first.chunks)
            assert pages[0].flags == 0x02 and pages[0].packets[0].startswith(b"OpusHead")
            assert pages[1].packets[0].startswith(b"OpusTags")
            audio = pages[2:]
            assert [p.sequence for p in audio] == list(range(2, 2 + len(audio))), "a page is missing"
            assert all(p.flags == 0 for p in audio[:-1]) and audio[-1].flags == 0x04, "end of stream only on the last page"
            granules = [0] + [p.granule for p in audio]
            assert all(0 < b - a <= 9600 for a, b in zip(granules, granules[1:])), "a page longer than 200 ms"
            assert sum(len(p.packets) for p in audio) * 960 == audio[-1].granule
            # Both listeners ended at the same point of the stream with the same end page.
            assert ogg_pages(second.body)[-1].raw == audio[-1].raw

            # ffprobe and ffmpeg read the captured stream: Opus, 48 kHz, mono, no decode error,
            # as long as its pages say (granule positions less the pre-skip).
            captured = os.path.join(folder, "first.opus")
            with open(captured, "wb") as f:
                f.write(raw)
            stream = ffprobe(captured)
            assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("opus", "48000", 1), stream
            decoded = decode_file(captured)
            expected = (audio[-1].granule - PRE_SKIP) / RATE
            assert abs(len(decoded) / RATE - expected) < 0.1, (len(decoded) / RATE, expected)

            # The player heard the tone, for as long as it was sent.
            played = np.fromfile(player_pcm, dtype="<i2").astype(np.float64)
            windows = tone_windows(played)
            heard = windows.sum() * 0.02
            assert abs(heard - tone_frames * 0.02) <= 0.1, f"tone for {heard:.2f} s, sent {tone_frames * 0.02:.2f} s"
            first_on, last_on = np.argmax(windows), len(windows) - 1 - np.argmax(windows[::-1])
            assert windows[first_on:last_on + 1].all(), "the tone has gaps"
            print(f"\n/listen/: {len(audio)} pages, {len(raw)} bytes, tone {heard:.2f} s of {tone_frames * 0.02:.2f} s, "
                  f"stream {expected:.2f} s, decoded {len(decoded) / RATE:.2f} s")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    run(main(), 90)


def test_a_player_that_hangs_up_leaves_the_event(server):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host = Tap(ws, "host")
        stream = await listen(server, f"/listen/{link['event_id']}")
        joined = await host.wait_text("participant_joined", timeout=10)
        user_id = host.frames[joined][1]["user_id"]
        assert user_id.startswith("http-")
        stream.close()
        await host.wait_text("participant_left", timeout=10, pred=lambda m: m["user_id"] == user_id)
        await host.wait_text("participant_count", timeout=10, start=joined, pred=lambda m: m["count"] == 0)
        await close_all(ws)
    run(main(), 30)


def test_a_stuck_player_is_dropped_at_the_bound_without_delaying_another(server):
    """The stuck player never reads: its socket buffers fill, then its queue (32 KiB) drops the
    oldest pages, and 10 s over the bound it is dropped. The reading player meanwhile gets every
    page, each on time."""
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host = Tap(ws, "host")
        path = f"/listen/{link['event_id']}"
        # The players' node counts the drops (an edge across the cascade).
        before = await asyncio.to_thread(metrics, player_node(server))
        reader = await listen(server, path)
        stuck = await listen(server, path, read=False, rcvbuf=4096)
        await host.wait_text("participant_count", timeout=10, pred=lambda m: m["count"] == 2)
        # Noise keeps the mix near its full 32 kbit/s, so the stuck player's buffers fill soonest.
        rng = np.random.default_rng(18)
        noise = (rng.standard_normal(RATE * 2) * 8000).clip(-32768, 32767).astype("<i2").tobytes()
        sender = asyncio.create_task(send_pcm(ws, noise, 50 * 90))
        first_drop = too_slow = None
        t0 = time.monotonic()
        try:
            while too_slow is None and time.monotonic() - t0 < 75:
                started = time.monotonic()
                m = await asyncio.to_thread(metrics, player_node(server))
                dropped = metric_sum(m, "airwave_media_frames_dropped_total", 'reason="slow_listener"') - \
                    metric_sum(before, "airwave_media_frames_dropped_total", 'reason="slow_listener"')
                if first_drop is None and dropped > 0:
                    first_drop = started
                if metric_sum(m, "airwave_errors_total", 'code="too_slow"') > \
                        metric_sum(before, "airwave_errors_total", 'code="too_slow"'):
                    too_slow = time.monotonic()
                await asyncio.sleep(0.25)
        finally:
            sender.cancel()
        assert first_drop is not None and too_slow is not None, (first_drop, too_slow)
        assert 9.0 <= too_slow - first_drop <= 13.0, f"dropped {too_slow - first_drop:.1f} s after the first dropped page"
        # The stuck player's connection is closed without the stream's end.
        rest = await asyncio.to_thread(stuck.read_to_eof, 10)
        assert not rest.endswith(b"<no eof>"), "the stuck player's connection is still open"
        assert not rest.endswith(b"0\r\n\r\n"), "a dropped player must not get a clean end"
        await host.wait_text("participant_count", timeout=10, pred=lambda m: m["count"] == 1)

        # The reading player got every page in order, none later than 500 ms after the one before.
        pages = ogg_pages(reader.body)
        assert [p.sequence for p in pages[2:]] == list(range(2, len(pages))), "the reading player lost pages"
        times = [t for t, _ in reader.chunks[1:]]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(gaps) > 50 and max(gaps) < 0.5, f"largest gap between pages {max(gaps):.3f} s"
        print(f"\nstuck player: first page dropped {first_drop - t0:.1f} s in, dropped {too_slow - first_drop:.1f} s later;"
              f" the reading player's largest gap {max(gaps) * 1000:.0f} ms over {len(gaps)} pages")
        reader.close()
        stuck.close()
        await close_all(ws)
    run(main(), 120)


def test_a_hosts_resume_continues_the_stream(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        stream = await listen(server, f"/listen/{link['event_id']}")
        assert await asyncio.to_thread(stream.wait_chunks, 3, 10) >= 3
        await ws.close()
        ws2, link2 = await go_live(server, host_id, "Host")
        assert link2["resumed"] is True and link2["event_id"] == link["event_id"]
        have = len(stream.chunks)
        assert await asyncio.to_thread(stream.wait_chunks, have + 5, 10) >= have + 5, "pages stopped after the resume"
        assert not stream.eof.is_set()
        pages = ogg_pages(stream.body)
        assert [p.sequence for p in pages] == list(range(len(pages))), "one stream, no page missing"
        assert len({p.serial for p in pages}) == 1 and not any(p.flags & 0x04 for p in pages)
        await send(ws2, {"type": "stream_ended", "event_id": link["event_id"]})
        assert await asyncio.to_thread(stream.eof.wait, 10) and stream.clean_end
        await close_all(ws2)
    run(main(), 40)


def test_a_listener_who_becomes_a_cohost_hears_the_mix_without_itself(server):
    """Its user's role changes the mix it hears, as for a WHEP listener: the stream it had ends
    (end-of-stream page) and the mix-minus follows as a new chained stream (new serial, headers)."""
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        host = Tap(ws, "host")
        member = await join(server, link["event_id"], uid("cohost"), verified=True)
        member_tap = Tap(member.ws, "cohost")
        stream = await listen(server, f"/listen/{link['event_id']}?token={q(token(member.user_id))}")
        assert await asyncio.to_thread(stream.wait_chunks, 3, 10) >= 3
        await make_cohost(ws, host, member, member_tap)
        have = len(stream.chunks)
        assert await asyncio.to_thread(stream.wait_chunks, have + 3, 10) >= have + 3
        await send(ws, {"type": "stream_ended", "event_id": link["event_id"]})
        assert await asyncio.to_thread(stream.eof.wait, 10) and stream.clean_end
        await close_all(ws, member.ws)

        pages = ogg_pages(stream.body)
        serials = list(dict.fromkeys(p.serial for p in pages))
        assert len(serials) == 2, serials
        first = [p for p in pages if p.serial == serials[0]]
        second = [p for p in pages if p.serial == serials[1]]
        assert first[-1].flags == 0x04 and second[0].flags == 0x02, "the first stream ends before the second begins"
        assert second[0].packets[0].startswith(b"OpusHead") and second[-1].flags == 0x04
        assert pages.index(second[0]) == len(first), "chained: one after the other"
    run(main(), 40)


def test_a_server_that_shuts_down_ends_every_stream_cleanly(start_server):
    srv = start_server()

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        streams = [await listen(srv, f"/listen/{link['event_id']}") for _ in range(2)]
        for stream in streams:
            assert await asyncio.to_thread(stream.wait_chunks, 2, 10) >= 2
        returncode = await asyncio.to_thread(srv.terminate, 15.0)
        assert returncode == 0, returncode
        for stream in streams:
            assert await asyncio.to_thread(stream.eof.wait, 5)
            assert stream.error is None and stream.clean_end, (stream.error, stream.clean_end)
            assert ogg_pages(stream.body)[-1].flags == 0x04
        await close_all(ws)
    run(main(), 40)


def test_a_stream_outlives_the_keep_alive_idle_timeout(start_server):
    """--idle-timeout is for idle keep-alive connections; a player whose body is still being
    written is not idle, however long it listens."""
    srv = start_server("--idle-timeout", "1")

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        stream = await listen(srv, f"/listen/{link['event_id']}")
        # 15 pages: 3 s, three times the idle timeout.
        assert await asyncio.to_thread(stream.wait_chunks, 16, 10) >= 16, "the stream stopped"
        assert not stream.eof.is_set()
        await send(ws, {"type": "stream_ended", "event_id": link["event_id"]})
        assert await asyncio.to_thread(stream.eof.wait, 10) and stream.clean_end
        await close_all(ws)
    run(main(), 30)


def test_players_count_against_the_connection_limits(start_server):
    """PROTOCOL.md 10: a player is a connection like any other; over --max-connections-per-ip the
    next one is refused with 503 server_busy."""
    srv = start_server("--max-connections-per-ip", "3")

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")  # connection 1
        path = f"/listen/{link['event_id']}"
        streams = [await listen(srv, path) for _ in range(2)]  # connections 2 and 3
        assert all(s.status == 200 for s in streams)
        status, _, body = await asyncio.to_thread(http_get, srv, path)
        assert status == 503 and json.loads(body)["code"] == "server_busy", (status, body)
        streams[0].close()
        # Its place comes free once the server has seen it go.
        deadline = time.monotonic() + 10
        while True:
            third = await listen(srv, path)
            if third.status == 200:
                break
            assert time.monotonic() < deadline, third.status
            await asyncio.sleep(0.2)
        for stream in (streams[1], third):
            stream.close()
        await close_all(ws)
    run(main(), 30)


# ---------------------------------------------------------------------------- HLS
def playlist_entries(text: str):
    """(media sequence, [(segment name, seconds)], ended) of a media playlist."""
    lines = text.strip().splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-VERSION:7" in lines, text
    sequence = int(next(line for line in lines if line.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    entries = []
    for index, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            entries.append((lines[index + 1], float(line[len("#EXTINF:"):].rstrip(","))))
    return sequence, entries, "#EXT-X-ENDLIST" in lines


def test_hls_playlist_plays_the_tone_with_cache_headers(server):
    tone_frames = 150  # 3.00 s

    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        base = f"/hls/{link['event_id']}"
        # The first request starts the segmenter and waits for its first segment (2 s).
        status, headers, body = await asyncio.to_thread(http_get, player_node(server), f"{base}/index.m3u8")
        assert status == 200, (status, body)
        assert headers["content-type"] == "application/vnd.apple.mpegurl" and headers["cache-control"] == "public, max-age=1", headers
        sequence, entries, ended = playlist_entries(body.decode())
        assert sequence == 0 and entries and not ended, body
        await send_pcm(ws, TONE_440, tone_frames)
        # Two more segments (4 s) cover the jitter buffer's delay and the tone's end.
        have = len(entries)
        deadline = time.monotonic() + 15
        while len(entries) < have + 2 + tone_frames // 100:
            assert time.monotonic() < deadline, f"segments stopped coming: {entries}"
            await asyncio.sleep(0.5)  # the playlist is polled, as players do
            _, _, body = await asyncio.to_thread(http_get, player_node(server), f"{base}/index.m3u8")
            _, entries, _ = playlist_entries(body.decode())
        await send(ws, {"type": "stream_ended", "event_id": link["event_id"]})
        await recv_until(ws, "stream_ended", 10)
        await close_all(ws)
        # The ended event's playlist stays, with #EXT-X-ENDLIST.
        status, _, body = await asyncio.to_thread(http_get, player_node(server), f"{base}/index.m3u8")
        assert status == 200, status
        sequence, entries, ended = playlist_entries(body.decode())
        assert ended, body
        assert all(1.0 <= seconds <= 2.0 for _, seconds in entries[:-1]) and 0 < entries[-1][1] <= 2.0, entries
        assert [name for name, _ in entries] == [f"{n}.m4s" for n in range(len(entries))], entries

        for name in ["init.mp4"] + [name for name, _ in entries]:
            status, headers, _ = await asyncio.to_thread(http_get, player_node(server), f"{base}/{name}")
            assert status == 200 and headers["cache-control"] == "public, max-age=3600, immutable", (name, status, headers)
            assert headers["content-type"] == "audio/mp4", headers
        status, _, _ = await asyncio.to_thread(http_get, player_node(server), f"{base}/{len(entries)}.m4s")
        assert status == 404

        url = f"http://127.0.0.1:{player_node(server).port}{base}/index.m3u8"
        stream = await asyncio.to_thread(ffprobe, url)
        assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("opus", "48000", 1), stream
        decoded = await asyncio.to_thread(decode_file, url)
        listed = sum(seconds for _, seconds in entries)
        assert abs(len(decoded) / RATE - listed) < 0.1, (len(decoded) / RATE, listed)
        windows = tone_windows(decoded)
        heard = windows.sum() * 0.02
        assert abs(heard - tone_frames * 0.02) <= 0.1, f"tone for {heard:.2f} s, sent {tone_frames * 0.02:.2f} s"
        print(f"\nHLS: {len(entries)} segments, {listed:.2f} s listed, decoded {len(decoded) / RATE:.2f} s, tone {heard:.2f} s")

    run(main(), 90)


def test_hls_of_an_unknown_event_is_404_and_an_ended_one_410(server):
    async def main():
        status, _, body = await asyncio.to_thread(http_get, player_node(server), f"/hls/{uid('nope')}/index.m3u8")
        assert status == 404 and json.loads(body)["code"] == "event_not_found", (status, body)
        ws, link = await go_live(server, uid("host"), "Host")
        await send(ws, {"type": "stream_ended", "event_id": link["event_id"]})
        await recv_until(ws, "stream_ended", 10)
        await close_all(ws)
        status, _, body = await asyncio.to_thread(http_get, player_node(server), f"/hls/{link['event_id']}/index.m3u8")
        assert status == 410 and json.loads(body)["code"] == "event_ended", (status, body)
    run(main(), 30)
