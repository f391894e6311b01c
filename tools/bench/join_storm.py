#!/usr/bin/env python3
"""Join-storm benchmark: starts an Airwave server, goes live, joins N listeners as fast as a
bounded concurrency allows, and reports how long the storm took, how many frames every client
received in all (PROTOCOL.md 2.6: far below N²), and the server's CPU seconds and resident
memory read from /proc/<pid>. Loopback only; every wait is bounded.

    python3 tools/bench/join_storm.py --listeners 1000 3000 5000 [--binary .build/release/airwave]
"""
import argparse
import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time

import websockets

SECRET = "benchmark-secret-that-is-long-enough-for-hs256"


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(binary, data_dir):
    proc = subprocess.Popen(
        # Every connection comes from 127.0.0.1: lift the per-IP and global connection caps.
        [binary, "serve", "--port", "0", "--data-dir", data_dir, "--jwt-secret", SECRET,
         "--max-connections", "1000000", "--max-connections-per-ip", "1000000"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "AIRWAVE_LOG_LEVEL": "info"})
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"address=http://127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    raise SystemExit("server did not start")


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    with open(f"/proc/{pid}/status") as f:
        rss_kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return cpu, rss_kib


def token(binary, user_id):
    return subprocess.check_output(
        [binary, "token", "--user-id", user_id, "--jwt-secret", SECRET], text=True).strip()


async def storm(port, binary, pid, listeners, concurrency):
    host = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/stream/start/live/bench-host/?token={token(binary, 'bench-host')}",
        max_size=2**24)
    event_id = json.loads(await asyncio.wait_for(host.recv(), 10))["event_id"]
    frames = 0
    bytes_in = 0
    sockets = [host]
    gate = asyncio.Semaphore(concurrency)

    async def count(ws):
        nonlocal frames, bytes_in
        try:
            async for message in ws:
                frames += 1
                bytes_in += len(message)
        except websockets.ConnectionClosed:
            pass

    readers = [asyncio.create_task(count(host))]

    async def join(i):
        async with gate:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/stream/live/join/event/{event_id}/L{i}/listener-{i}/",
                max_size=2**24, open_timeout=30, ping_interval=None)
            sockets.append(ws)
            readers.append(asyncio.create_task(count(ws)))

    cpu0, _ = proc_stats(pid)
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(join(i) for i in range(listeners))), 600)
    joined = time.monotonic() - t0
    # Let the coalesced lists and counts of the storm's last window go out.
    await asyncio.sleep(3)
    cpu1, rss = proc_stats(pid)
    result = {
        "listeners": listeners,
        "join_seconds": round(joined, 2),
        "joins_per_second": round(listeners / joined),
        "frames_received": frames,
        "frames_per_listener": round(frames / listeners, 1),
        "n_squared": listeners * listeners,
        "megabytes_received": round(bytes_in / 1e6, 1),
        "server_cpu_seconds": round(cpu1 - cpu0, 2),
        "server_rss_mib": round(rss / 1024, 1),
        "rss_kib_per_connection": round(rss / (listeners + 1), 1),
    }
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for task in readers:
        task.cancel()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/airwave")
    parser.add_argument("--listeners", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    results = []
    for n in args.listeners:
        with tempfile.TemporaryDirectory() as data:
            proc, port = start_server(args.binary, data)
            try:
                _, idle_rss = proc_stats(proc.pid)
                result = asyncio.run(storm(port, args.binary, proc.pid, n, args.concurrency))
                result["server_idle_rss_mib"] = round(idle_rss / 1024, 1)
                results.append(result)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    keys = list(results[0].keys())
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
