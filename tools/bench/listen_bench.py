#!/usr/bin/env python3
"""Listening-over-HTTP benchmark (PROTOCOL.md 9): starts an Airwave server, goes live with a host
that sends a tone as PCM at real-time pace, connects N `GET /listen/{id}` players, and reports for
a measured window: delivery (pages received of pages due), latency of each page at each player
(against the earliest arrival the stream's own clock allows: granule position / 48 kHz), the
server's CPU seconds per delivered page and per listener-second, and resident memory per
listener. With --ws-listeners M it then does the same with M WebSocket listeners of the mix
(`?audio=mixed`, one 20 ms frame each) in the same server run, for CPU per delivered frame.

Players are raw asyncio sockets that parse only the chunk framing and each page's granule.
Loopback only; every wait is bounded.

    python3 tools/bench/listen_bench.py --listeners 1000 5000 --ws-listeners 1000 --binary .build/release/airwave
"""
import argparse
import asyncio
import base64
import json
import os
import statistics
import struct
import tempfile
import time

from join_storm import proc_stats, raise_fd_limit, start_server, token

RATE = 48_000


class Player(asyncio.Protocol):
    """One /listen/ player: records (granule, arrival) of every page."""

    def __init__(self, path, done):
        self.path, self.done = path, done
        self.buffer = bytearray()
        self.head = True
        self.pages: list[tuple[int, float]] = []
        self.bytes = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())

    def data_received(self, data):
        now = time.monotonic()
        self.bytes += len(data)
        self.buffer += data
        if self.head:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            assert self.buffer.startswith(b"HTTP/1.1 200"), bytes(self.buffer[:80])
            del self.buffer[:end + 4]
            self.head = False
        while True:
            line = self.buffer.find(b"\r\n")
            if line < 0:
                return
            size = int(self.buffer[:line], 16)
            if len(self.buffer) < line + 2 + size + 2:
                return
            chunk = self.buffer[line + 2:line + 2 + size]
            del self.buffer[:line + 2 + size + 2]
            if size == 0:
                return
            offset = 0
            while offset + 27 <= len(chunk) and chunk[offset:offset + 4] == b"OggS":
                granule = struct.unpack_from("<q", chunk, offset + 6)[0]
                segments = chunk[offset + 26]
                body = sum(chunk[offset + 27:offset + 27 + segments])
                if granule > 0:
                    self.pages.append((granule, now))
                offset += 27 + segments + body

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


class WSListener(asyncio.Protocol):
    """One WebSocket listener of the mix: counts binary frames (server frames are unmasked)."""

    def __init__(self, path, port):
        self.path, self.port = path, port
        self.buffer = bytearray()
        self.head = True
        self.frames = 0
        self.bytes = 0

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data):
        self.bytes += len(data)
        self.buffer += data
        if self.head:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[:end + 4]
            self.head = False
        while len(self.buffer) >= 2:
            opcode, n, pos = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if n == 126:
                if len(self.buffer) < 4:
                    return
                n, pos = struct.unpack_from(">H", self.buffer, 2)[0], 4
            elif n == 127:
                if len(self.buffer) < 10:
                    return
                n, pos = struct.unpack_from(">Q", self.buffer, 2)[0], 10
            if len(self.buffer) < pos + n:
                return
            if opcode == 2:
                self.frames += 1
            del self.buffer[:pos + n]


async def host_pacer(port, user, tok, stop):
    """Goes live and sends a 440 Hz tone as PCM, 20 ms frames at real-time pace; returns the event id."""
    import math

    import websockets

    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/stream/start/live/{user}/?token={tok}", max_size=None)
    link = json.loads(await ws.recv())
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / RATE))) for i in range(960 * 50))

    async def drain():
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: BLE001 - the host's socket closing ends it
            pass

    async def send():
        t0 = time.monotonic()
        i = 0
        while not stop.is_set():
            frame = pcm[(i % 50) * 1920:(i % 50 + 1) * 1920]
            await ws.send(struct.pack(">BBBBIII", 1, 2, 0, 0, 0, i, i * 960) + frame)
            i += 1
            await asyncio.sleep(max(0, t0 + i * 0.02 - time.monotonic()))
        await ws.send(json.dumps({"type": "stream_ended", "event_id": link["event_id"]}))
        await ws.close()

    asyncio.create_task(drain())
    task = asyncio.create_task(send())
    return link["event_id"], task


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


async def connect_all(factory, port, count, concurrency=200):
    loop = asyncio.get_running_loop()
    made = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one():
        async with semaphore:
            _, protocol = await loop.create_connection(factory, "127.0.0.1", port)
            made.append(protocol)

    await asyncio.gather(*(one() for _ in range(count)))
    return made


async def measure_http(pid, port, event_id, count, seconds):
    loop = asyncio.get_running_loop()
    _, rss_before = proc_stats(pid)
    players = await connect_all(lambda: Player(f"/listen/{event_id}", loop.create_future()), port, count)
    await asyncio.sleep(3)  # every player has its headers and is in the page stream
    _, rss_after = proc_stats(pid)
    cpu0, _ = proc_stats(pid)
    client0 = time.process_time()
    start = time.monotonic()
    marks = [len(p.pages) for p in players]
    await asyncio.sleep(seconds)
    cpu1, _ = proc_stats(pid)
    client = time.process_time() - client0
    window = [p.pages[m:] for p, m in zip(players, marks)]
    # Pages due: every page any player received in the window, at every player.
    granules = sorted({g for pages in window for g, t in pages if t >= start})
    due = set(granules[1:-1])  # the window's edge pages may fall either side
    received = sum(1 for pages in window for g, _ in pages if g in due)
    delivered = sum(len(pages) for pages in window)
    # Latency: arrival minus the stream clock, offset by the earliest arrival of all.
    offsets = [t - g / RATE for pages in window for g, t in pages if g in due]
    zero = min(offsets) if offsets else 0
    latencies = [(o - zero) * 1000 for o in offsets]
    for p in players:
        p.transport.close()
    cpu = cpu1 - cpu0
    return {
        "listeners": count, "seconds": seconds, "pages_due": len(due) * count, "pages_received": received,
        "delivery": received / (len(due) * count) if due else 0.0,
        "latency_ms_p50": round(percentile(latencies, 0.5), 1), "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies), 1) if latencies else None,
        "server_cpu_s": round(cpu, 2), "server_cpu_pct": round(100 * cpu / seconds, 1),
        "server_cpu_us_per_page": round(1e6 * cpu / delivered, 2) if delivered else None,
        "server_cpu_us_per_listener_second": round(1e6 * cpu / (count * seconds), 2),
        "rss_kib_per_listener": round((rss_after - rss_before) / count, 1), "client_cpu_s": round(client, 2),
    }


async def measure_ws(pid, port, event_id, count, seconds):
    _, rss_before = proc_stats(pid)
    listeners = await connect_all(lambda: WSListener(f"/ws/stream/live/join/event/{event_id}/bench-{os.urandom(4).hex()}/?audio=mixed",
                                                     port), port, count)
    await asyncio.sleep(3)
    _, rss_after = proc_stats(pid)
    cpu0, _ = proc_stats(pid)
    client0 = time.process_time()
    marks = [w.frames for w in listeners]
    await asyncio.sleep(seconds)
    cpu1, _ = proc_stats(pid)
    client = time.process_time() - client0
    frames = sum(w.frames - m for w, m in zip(listeners, marks))
    for w in listeners:
        w.transport.close()
    cpu = cpu1 - cpu0
    return {
        "ws_listeners": count, "seconds": seconds, "frames_received": frames,
        "delivery": frames / (count * seconds * 50), "server_cpu_s": round(cpu, 2), "server_cpu_pct": round(100 * cpu / seconds, 1),
        "server_cpu_us_per_frame": round(1e6 * cpu / frames, 2) if frames else None,
        "server_cpu_us_per_listener_second": round(1e6 * cpu / (count * seconds), 2),
        "rss_kib_per_listener": round((rss_after - rss_before) / count, 1), "client_cpu_s": round(client, 2),
    }


async def main(args):
    raise_fd_limit()
    data_dir = tempfile.mkdtemp(prefix="airwave-listen-bench-")
    proc, port = start_server(args.binary, data_dir)
    try:
        host = "bench-host"
        stop = asyncio.Event()
        event_id, sender = await host_pacer(port, host, token(args.binary, host), stop)
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        print(json.dumps({"event_id": event_id, "loadavg_before": load, "cpus": os.cpu_count()}))
        cpu0, _ = proc_stats(proc.pid)
        await asyncio.sleep(args.seconds)
        idle = proc_stats(proc.pid)[0] - cpu0
        print(json.dumps({"baseline": "host only, no listener", "server_cpu_pct": round(100 * idle / args.seconds, 1)}))
        for count in args.listeners:
            print(json.dumps(await measure_http(proc.pid, port, event_id, count, args.seconds)), flush=True)
            await asyncio.sleep(2)
        for count in args.ws_listeners:
            print(json.dumps(await measure_ws(proc.pid, port, event_id, count, args.seconds)), flush=True)
            await asyncio.sleep(2)
        stop.set()
        await asyncio.wait_for(sender, 10)
        with open("/proc/loadavg") as f:
            print(json.dumps({"loadavg_after": f.read().split()[:3]}))
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listeners", type=int, nargs="+", default=[1000])
    parser.add_argument("--ws-listeners", type=int, nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--binary", default=".build/release/airwave")
    asyncio.run(main(parser.parse_args()))
