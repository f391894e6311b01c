"""End-to-end tests of `airwave-client`: broadcast an Ogg Opus file through a real server to a
`listen` client and compare what the listener wrote with the input, packet for packet.

The input Ogg file is written here by a small independent Ogg muxer (not the client's own
writer), so the test also checks that the client reads other muxers' files.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import struct
import subprocess
import threading
import time

import pytest

import awtest
from conftest import ROOT, base_env

CLIENT_BIN = os.environ.get("AIRWAVE_CLIENT_BIN", os.path.join(ROOT, ".build", "debug", "airwave-client"))
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "media")


# ---------------------------------------------------------------------------- Ogg helpers
def _crc_table():
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def _crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _page(packets, granule, serial, seqno, flags) -> bytes:
    lacing = b""
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    assert len(lacing) <= 255
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seqno, 0, len(lacing)) + lacing
    page = header + b"".join(packets)
    return page[:22] + struct.pack("<I", _crc(page)) + page[26:]


def write_ogg_opus(path, packets, pre_skip=312, per_page=25):
    """A minimal Ogg Opus muxer: 20 ms packets, `per_page` packets per page."""
    serial = 0x41495257
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"test_client.py"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    out = [_page([head], 0, serial, 0, 0x02), _page([tags], 0, serial, 1, 0)]
    granule = pre_skip
    seq = 2
    for i in range(0, len(packets), per_page):
        chunk = packets[i:i + per_page]
        granule += 960 * len(chunk)
        last = i + per_page >= len(packets)
        out.append(_page(chunk, granule, serial, seq, 0x04 if last else 0))
        seq += 1
    with open(path, "wb") as f:
        f.write(b"".join(out))


def read_ogg_packets(path):
    """(header packets, audio packets, [(granule, flags)] per page) of the first stream."""
    data = open(path, "rb").read()
    pos, packets, pages, partial = 0, [], [], b""
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS", f"no capture pattern at {pos}"
        _, flags, granule, _, _, crc, nsegs = struct.unpack_from("<BBqIIIB", data, pos + 4)
        lacing = data[pos + 27:pos + 27 + nsegs]
        body = pos + 27 + nsegs
        size = 27 + nsegs + sum(lacing)
        raw = data[pos:pos + size]
        assert _crc(raw[:22] + b"\0\0\0\0" + raw[26:]) == crc, f"bad CRC on page at {pos}"
        pages.append((granule, flags))
        off = body
        for lace in lacing:
            partial += data[off:off + lace]
            off += lace
            if lace < 255:
                packets.append(partial)
                partial = b""
        pos += size
    return packets[:2], packets[2:], pages


def read_fixture_packets():
    data = open(os.path.join(FIXTURES, "speech.opus-packets"), "rb").read()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


# ---------------------------------------------------------------------------- processes
class Proc:
    """A client process whose stdout lines are collected by a thread."""

    def __init__(self, args):
        if not (os.path.isfile(CLIENT_BIN) and os.access(CLIENT_BIN, os.X_OK)):
            pytest.fail(f"airwave-client not found at {CLIENT_BIN} (set AIRWAVE_CLIENT_BIN; tools/test builds it)")
        self.lines: list[str] = []
        self.proc = subprocess.Popen([CLIENT_BIN, *args], env=base_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_line(self, prefix, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not any(l.startswith(prefix) for l in self.lines):
                break
            time.sleep(0.05)
        raise AssertionError(f"no line starting {prefix!r}; stdout={self.lines} stderr={self.err}")

    def wait(self, timeout) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"client did not exit in {timeout} s; stdout={self.lines[-20:]} stderr={self.err}")
        for t in self._threads:
            t.join(2)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def types_printed(lines):
    import json
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj.get("type"))
    return out


def opusinfo_ok(path):
    tool = shutil.which("opusinfo")
    if tool is None:
        return
    res = subprocess.run([tool, path], capture_output=True, text=True, timeout=30)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text
    assert "error" not in text.lower(), text
    assert "warning" not in text.lower(), text


def ffmpeg_ok(path):
    tool = shutil.which("ffmpeg")
    if tool is None:
        return
    res = subprocess.run([tool, "-v", "error", "-i", path, "-f", "null", "-"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


# ---------------------------------------------------------------------------- tests
def _start_pair(server, tmp_path, extra_broadcast=()):
    packets = read_fixture_packets()
    src = str(tmp_path / "in.opus")
    write_ogg_opus(src, packets)
    host = awtest.uid("host")
    base = f"ws://127.0.0.1:{server.port}"
    caster = Proc(["broadcast", "--url", base, "--user-id", host, "--token", awtest.token(host, "Host"),
                   "--ogg", src, "--wait-listeners", "1", *extra_broadcast])
    procs = [caster]
    try:
        event_id = caster.wait_line("event_id: ").split(": ", 1)[1].strip()
        join_url = caster.wait_line("join_url: ")
        assert event_id in join_url
        outdir = str(tmp_path / "rec")
        listener = Proc(["listen", "--url", base, "--event", event_id, "--user-id", awtest.uid("l"),
                         "--username", "Lis", "--out", outdir])
        procs.append(listener)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    return packets, caster, listener, outdir


def test_broadcast_ogg_to_listener_byte_identical(server, tmp_path):
    packets, caster, listener, outdir = _start_pair(server, tmp_path)
    try:
        assert listener.wait(20) == 0, listener.err
        assert caster.wait(10) == 0, caster.err
    finally:
        caster.kill()
        listener.kill()
    types = types_printed(listener.lines)
    assert types[:2] == ["stream_state", "chat_history"], types
    assert types[-1] == "stream_ended", types
    files = glob.glob(os.path.join(outdir, "source-*.opus"))
    assert len(files) == 1, files
    headers, got, pages = read_ogg_packets(files[0])
    assert headers[0].startswith(b"OpusHead") and headers[1].startswith(b"OpusTags")
    assert len(got) == len(packets)
    assert got == packets  # byte for byte, in order
    assert pages[0][1] & 0x02 and pages[-1][1] & 0x04
    assert pages[-1][0] == 312 + 960 * len(packets)
    opusinfo_ok(files[0])
    ffmpeg_ok(files[0])


def test_interrupt_ends_the_event(server, tmp_path):
    packets, caster, listener, outdir = _start_pair(server, tmp_path, ["--loop"])
    try:
        deadline = time.monotonic() + 10
        # Wait until the listener records, then Ctrl-C the broadcaster.
        while time.monotonic() < deadline and not glob.glob(os.path.join(outdir, "source-*.opus")):
            time.sleep(0.05)
        time.sleep(1.0)
        caster.proc.send_signal(signal.SIGINT)
        assert caster.wait(10) == 0, caster.err
        assert listener.wait(10) == 0, listener.err
    finally:
        caster.kill()
        listener.kill()
    assert types_printed(listener.lines)[-1] == "stream_ended"
    files = glob.glob(os.path.join(outdir, "source-*.opus"))
    assert len(files) == 1
    _, got, pages = read_ogg_packets(files[0])
    assert 10 <= len(got) < len(packets)
    assert got == packets[:len(got)]
    assert pages[-1][1] & 0x04
    opusinfo_ok(files[0])


def test_cohost_broadcast_after_invite(server, tmp_path):
    """`--cohost-of`: the client joins with its token, accepts the host's invite and publishes;
    the host (a plain WebSocket here) receives the co-host's packets unchanged, then ends the
    event, and the co-host client exits 0."""
    import asyncio
    import json

    packets = read_fixture_packets()[:40]
    src = str(tmp_path / "co.opus")
    write_ogg_opus(src, packets)
    host, cohost = awtest.uid("host"), awtest.uid("co")
    base = f"ws://127.0.0.1:{server.port}"

    async def scenario():
        ws = await awtest.connect(server.ws(awtest.host_path(host, awtest.token(host, "Host"))))
        link = await awtest.recv_json(ws)
        assert link["type"] == "stream_link"
        proc = Proc(["broadcast", "--url", base, "--user-id", cohost, "--token", awtest.token(cohost, "Co"),
                     "--cohost-of", link["event_id"], "--ogg", src])
        try:
            await awtest.recv_until(ws, "participant_joined", timeout=10, pred=lambda m: m.get("user_id") == cohost)
            await ws.send(json.dumps({"type": "invite_cohost", "user_id": cohost}))
            got = []
            deadline = time.monotonic() + 10
            while len(got) < len(packets) and time.monotonic() < deadline:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                if isinstance(raw, bytes):
                    assert raw[0] == 1 and raw[1] == 1  # version 1, Opus
                    got.append(raw[16:])
            assert got == packets
            await ws.send(json.dumps({"type": "stream_ended", "event_id": link["event_id"]}))
            rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
            assert rc == 0, proc.err
            assert "cohost_invite" in types_printed(proc.lines)
            await ws.close()
        finally:
            proc.kill()

    asyncio.run(scenario())
