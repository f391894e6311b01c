"""nginx from Debian's packages as a caching reverse proxy in front of Airwave (README, "Putting a
cache in front"): 50 HLS players through it, and each segment is fetched from Airwave once.

The proxy runs docs/nginx/airwave-cache.conf itself, with this test's ports and folders put in
place of the example ones; its access log says which requests went on to Airwave.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from awtest import close_all, go_live, recv_until, run, send, uid
from conftest import ROOT
from test_http_listen import send_pcm
from test_media import TONE_440

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CONFIG = os.path.join(ROOT, "docs", "nginx", "airwave-cache.conf")
PLAYERS = 50
PLAY_SECONDS = 12.0

pytestmark = pytest.mark.skipif(NGINX is None, reason="needs nginx (tools/setup --tests installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in the foreground with docs/nginx/airwave-cache.conf, in a folder of its own."""

    def __init__(self, airwave_port: int):
        self.folder = tempfile.mkdtemp(prefix="airwave-nginx-")
        os.chmod(self.folder, 0o777)  # the workers run as nobody when the master is root
        self.port = free_port()
        self.log = os.path.join(self.folder, "access.log")
        text = open(CONFIG).read()
        for example, ours in [("127.0.0.1:8080", f"127.0.0.1:{airwave_port}"), ("listen 80;", f"listen 127.0.0.1:{self.port};"),
                              ("/var/cache/nginx/airwave", os.path.join(self.folder, "cache")),
                              ("/var/log/nginx/airwave-cache.log", self.log)]:
            assert text.count(example) == 1, f"{CONFIG} no longer says {example!r} once"
            text = text.replace(example, ours)
        with open(os.path.join(self.folder, "airwave-cache.conf"), "w") as f:
            f.write(text)
        temp = "\n".join(f"    {name}_temp_path {self.folder}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        main = os.path.join(self.folder, "nginx.conf")
        with open(main, "w") as f:
            f.write(f"worker_processes 1;\npid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log warn;\ndaemon off;\n"
                    f"events {{ worker_connections 1024; }}\nhttp {{\n{temp}\n    include {self.folder}/airwave-cache.conf;\n}}\n")
        check = subprocess.run([NGINX, "-t", "-p", self.folder, "-c", main, "-e", f"{self.folder}/error.log"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-p", self.folder, "-c", main, "-e", f"{self.folder}/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read()
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.1)

    def upstream_requests(self) -> list[tuple[str, str]]:
        """(path, cache status) of every request nginx sent on to Airwave."""
        fetched = []
        with open(self.log) as f:
            for line in f:
                m = re.match(r'^\S+ "GET (\S+) HTTP/1\.1" (\d+) (\S+) (\S+)$', line.strip())
                assert m, f"unexpected log line: {line!r}"
                if m.group(4) != "-":
                    fetched.append((m.group(1), m.group(3)))
        return fetched

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class Player:
    """An HLS player through the cache: polls the playlist every second (its target duration
    is 2 s) and fetches init.mp4 and every segment it lists once."""

    def __init__(self, port, base, until):
        self.port, self.base, self.until = port, base, until
        self.segments: dict[str, str] = {}  # name → SHA-256
        self.init = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _get(self, conn, name):
        conn.request("GET", f"{self.base}/{name}")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (name, response.status, body[:200])
        return body

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while time.monotonic() < self.until:
                playlist = self._get(conn, "index.m3u8").decode()
                if self.init is None:
                    self.init = hashlib.sha256(self._get(conn, "init.mp4")).hexdigest()
                for name in re.findall(r"^(\d+\.m4s)$", playlist, re.M):
                    if name not in self.segments:
                        self.segments[name] = hashlib.sha256(self._get(conn, name)).hexdigest()
                time.sleep(1.0)
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.error = repr(e)
        finally:
            conn.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_fifty_hls_players_through_nginx_fetch_each_segment_from_airwave_once(server):
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        event_id = link["event_id"]
        tone = asyncio.create_task(send_pcm(ws, TONE_440, int((PLAY_SECONDS + 4) / 0.02)))
        nginx = await asyncio.to_thread(Nginx, server.port)
        try:
            cpu_before = cpu_seconds(server.proc.pid)
            until = time.monotonic() + PLAY_SECONDS
            players = [Player(nginx.port, f"/hls/{event_id}", until) for _ in range(PLAYERS)]
            for player in players:
                await asyncio.to_thread(player.thread.join, PLAY_SECONDS + 30)
            cpu = cpu_seconds(server.proc.pid) - cpu_before
            tone.cancel()
            await send(ws, {"type": "stream_ended", "event_id": event_id})
            await recv_until(ws, "stream_ended", 10)
            await close_all(ws)

            assert all(p.error is None for p in players), [p.error for p in players if p.error][:3]
            # Every player got the same bytes for every segment it fetched, and several segments.
            names = set().union(*(p.segments for p in players))
            for name in names:
                assert len({p.segments[name] for p in players if name in p.segments}) == 1, f"{name} differs between players"
            assert all(len(p.segments) >= 4 for p in players), sorted(len(p.segments) for p in players)
            served = sum(len(p.segments) for p in players)

            fetched = nginx.upstream_requests()
            per_path: dict[str, int] = {}
            for path, _ in fetched:
                per_path[path] = per_path.get(path, 0) + 1
            for name in ["init.mp4", *names]:
                assert per_path.get(f"/hls/{event_id}/{name}") == 1, \
                    f"{name} fetched from Airwave {per_path.get(f'/hls/{event_id}/{name}')} times"
            playlists = per_path.get(f"/hls/{event_id}/index.m3u8", 0)
            # The playlist lives a second in the cache: about one fetch a second, not one per player.
            assert playlists <= PLAY_SECONDS + 4, f"the playlist was fetched {playlists} times in {PLAY_SECONDS} s"
            print(f"\nnginx: {PLAYERS} players, {served} segment responses from {len(names)} segments fetched once each, "
                  f"{playlists} playlist fetches from Airwave in {PLAY_SECONDS:.0f} s; Airwave CPU {cpu:.2f} s "
                  f"({100 * cpu / PLAY_SECONDS:.1f} % of a core, host audio and mix included)")
        finally:
            await asyncio.to_thread(nginx.stop)
    run(main(), 120)
