"""WebRTC limits end to end over 127.0.0.1 (issue 13, findings 1 and 2; PROTOCOL.md section 10).

- Anonymous WHEP listeners fill their share of the session table (503 `server_busy`) while the
  host's WHIP still gets a session and connects (aiortc).
- Per-IP caps: anonymous sessions from one address (429 `rate_limited`, `Retry-After`) and the
  rate of anonymous offers; a listener with a token is not counted.
- A peer that keeps ICE alive (answers the server's checks, sends its own) but never does DTLS
  is closed at the DTLS deadline, and its slot is free again.
- A valid nominating check from another socket (a forged source) gets STUN only: the media
  stays with the aiortc listener that connected (RFC 7675 consent before a new address).
- An offer whose fingerprint is md5 is a bad request (400), not 503.

The ICE side of the raw peers is a few lines of STUN (RFC 8489/8445) here; aiortc peers come from
`webrtc_peer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import struct
import time
import zlib

import webrtc_peer as wp
from awtest import SECRET, close_all, go_live, q, run, token, uid
from conftest import run_cli
from test_mix import TONE_440, PCMPacer
from test_cli import assert_one_line_error
from test_webrtc import check_answer, error_problem

MAGIC = 0x2112A442
BINDING_REQUEST, BINDING_SUCCESS = 0x0001, 0x0101
USERNAME, MESSAGE_INTEGRITY, XOR_MAPPED_ADDRESS = 0x0006, 0x0008, 0x0020
PRIORITY, USE_CANDIDATE, FINGERPRINT, ICE_CONTROLLING = 0x0024, 0x0025, 0x8028, 0x802A


# ---------------------------------------------------------------------------- STUN
def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def stun(kind: int, transaction: bytes, attributes, password: str) -> bytes:
    """A STUN message with MESSAGE-INTEGRITY (keyed with `password`) and FINGERPRINT."""
    body = b"".join(_attribute(k, v) for k, v in attributes)
    header = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + transaction
    body += _attribute(MESSAGE_INTEGRITY, hmac.new(password.encode(), header + body, hashlib.sha1).digest())
    header = struct.pack("!HHI", kind, len(body) + 8, MAGIC) + transaction
    body += _attribute(FINGERPRINT, struct.pack("!I", (zlib.crc32(header + body) ^ 0x5354554E) & 0xFFFFFFFF))
    return struct.pack("!HHI", kind, len(body), MAGIC) + transaction + body


def stun_attributes(datagram: bytes) -> dict:
    out, i = {}, 20
    while i + 4 <= len(datagram):
        kind, length = struct.unpack_from("!HH", datagram, i)
        out.setdefault(kind, datagram[i + 4:i + 4 + length])
        i += 4 + length + (-length % 4)
    return out


def is_stun(datagram: bytes) -> bool:
    return len(datagram) >= 20 and datagram[0] < 4 and struct.unpack_from("!I", datagram, 4)[0] == MAGIC


class IcePeer(asyncio.DatagramProtocol):
    """The ICE half of a controlling agent on its own UDP socket: it sends checks to the server
    (`serverUfrag:localUfrag`, the server's password) and, if `answers`, answers the server's
    own checks as a full agent does. It never starts DTLS. It counts what it receives."""

    def __init__(self, local_ufrag, local_password, server_ufrag, server_password, server_port, answers=True):
        self.local_ufrag, self.local_password = local_ufrag, local_password
        self.server_ufrag, self.server_password = server_ufrag, server_password
        self.server = (wp.LOOPBACK, server_port)
        self.answers = answers
        self.successes = 0        # answers to our checks
        self.server_checks = 0    # the server's own checks
        self.other: list[bytes] = []  # anything that is not STUN (DTLS, SRTP, SRTCP)
        self.bad_checks: list[str] = []  # server checks with another USERNAME
        self.transport = None
        self.changed = asyncio.Event()

    @classmethod
    async def open(cls, *args, **kwargs) -> "IcePeer":
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(lambda: cls(*args, **kwargs), local_addr=(wp.LOOPBACK, 0))
        return peer

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if not is_stun(data):
            self.other.append(data)
        else:
            kind = struct.unpack_from("!H", data)[0]
            if kind == BINDING_SUCCESS:
                self.successes += 1
            elif kind == BINDING_REQUEST:
                self.server_checks += 1
                username = stun_attributes(data).get(USERNAME, b"").decode()
                if username != f"{self.local_ufrag}:{self.server_ufrag}":
                    self.bad_checks.append(username)
                elif self.answers:
                    port = addr[1] ^ (MAGIC >> 16)
                    address = bytes(a ^ b for a, b in zip(bytes(map(int, addr[0].split("."))), struct.pack("!I", MAGIC)))
                    mapped = struct.pack("!BBH", 0, 1, port) + address
                    self.transport.sendto(stun(BINDING_SUCCESS, data[8:20], [(XOR_MAPPED_ADDRESS, mapped)],
                                               self.local_password), addr)
        self.changed.set()

    def check(self, nominate=True, priority=0x7E7FFFFF):
        attributes = [(USERNAME, f"{self.server_ufrag}:{self.local_ufrag}".encode()),
                      (PRIORITY, struct.pack("!I", priority)), (ICE_CONTROLLING, os.urandom(8))]
        if nominate:
            attributes.append((USE_CANDIDATE, b""))
        self.transport.sendto(stun(BINDING_REQUEST, os.urandom(12), attributes, self.server_password), self.server)

    async def wait(self, condition, timeout=5.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            assert left > 0, f"{what} not within {timeout} s (successes {self.successes}, server checks " \
                             f"{self.server_checks}, other {len(self.other)})"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def close(self):
        if self.transport is not None:
            self.transport.close()


def ice_credentials(sdp: str):
    ufrag = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.M).group(1)
    password = re.search(r"^a=ice-pwd:(\S+)", sdp, re.M).group(1)
    return ufrag, password


def udp_port(answer_sdp: str) -> int:
    return int(re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer_sdp, re.I).group(1))


def with_credentials(offer: str, ufrag: str, password: str) -> str:
    offer = re.sub(r"^a=ice-ufrag:\S+", f"a=ice-ufrag:{ufrag}", offer, flags=re.M)
    return re.sub(r"^a=ice-pwd:\S+", f"a=ice-pwd:{password}", offer, flags=re.M)


async def whep_offers(port, path, count, tok=None):
    """`count` WHEP offers (aiortc SDP, never connected) POSTed one after another: the responses."""
    offer = await wp.make_offer("whep")
    return [await wp.post_offer(port, path, offer, tok) for _ in range(count)]


def details_reason(resp):
    return (resp.json().get("details") or {}).get("reason")


# ---------------------------------------------------------------------------- 1. the reserve
def test_anonymous_whep_fills_its_share_and_the_hosts_whip_still_connects(start_server):
    """Finding 1: anonymous WHEP sessions filled the table and the host's own WHIP got 503."""
    srv = start_server("--webrtc-max-sessions", "4", "--webrtc-reserved-sessions", "1",
                       env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        host_id = uid("host")
        ws, link = await go_live(srv, host_id, "Host")
        ev = link["event_id"]
        whep_path, whip_path = f"/whep/{q(ev)}", f"/whip/{q(ev)}"
        responses = await whep_offers(srv.port, whep_path, 4)
        for resp in responses[:3]:
            check_answer(resp, whep_path + "/")
        assert error_problem(responses[3], 503, "server_busy") is None, responses[3]
        assert details_reason(responses[3]) == "anonymous_sessions", responses[3].json()
        speaker = wp.WhipSpeaker(440)
        try:
            resp = await speaker.negotiate(srv.port, whip_path, token(host_id))
            check_answer(resp, whip_path + "/")
            await speaker.connected(10)
            # Now the table is full for everyone.
            resp = await wp.post_offer(srv.port, whep_path, await wp.make_offer("whep"), token(uid("fan")))
            assert error_problem(resp, 503, "server_busy") is None, resp
            assert details_reason(resp) == "sessions", resp.json()
        finally:
            await speaker.close()
            await close_all(ws)
    run(main(), 45)


# ---------------------------------------------------------------------------- 2. per-IP caps
def test_anonymous_sessions_per_ip_are_capped_but_a_token_is_not(start_server):
    srv = start_server("--webrtc-anonymous-per-ip", "2", env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        path = f"/whep/{q(link['event_id'])}"
        first, second, third = await whep_offers(srv.port, path, 3)
        location = check_answer(first, path + "/")
        check_answer(second, path + "/")
        assert error_problem(third, 429, "rate_limited") is None, third
        assert details_reason(third) == "sessions_per_ip", third.json()
        assert third.headers.get("retry-after") == "10", third.headers
        # A listener with a token is not counted per address.
        check_answer((await whep_offers(srv.port, path, 1, token(uid("fan"))))[0], path + "/")
        # Hanging up gives the address its place back.
        assert (await wp.request(srv.port, "DELETE", location)).status == 200
        check_answer((await whep_offers(srv.port, path, 1))[0], path + "/")
        await close_all(ws)
    run(main(), 30)


def test_anonymous_offers_per_ip_are_rate_limited(start_server):
    """Finding 1: one client made 1,600 sessions a second."""
    srv = start_server("--webrtc-offer-rate", "1", "--webrtc-offer-burst", "3", env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        path = f"/whep/{q(link['event_id'])}"
        started = time.monotonic()
        responses = await whep_offers(srv.port, path, 8)
        elapsed = time.monotonic() - started
        statuses = [r.status for r in responses]
        # The burst of 3, then one more a second at most; the rest refused.
        assert statuses[:3] == [201, 201, 201], statuses
        assert set(statuses) == {201, 429} and statuses.count(201) <= 3 + int(elapsed) + 1, (statuses, elapsed)
        assert statuses.count(429) >= 1, (statuses, elapsed)
        refused = next(r for r in responses if r.status == 429)
        assert error_problem(refused, 429, "rate_limited") is None, refused
        assert details_reason(refused) == "offer_rate" and refused.headers.get("retry-after") == "1", refused
        # A token is not rate-limited per address.
        check_answer((await whep_offers(srv.port, path, 1, token(uid("fan"))))[0], path + "/")
        await close_all(ws)
    run(main(), 30)


# ---------------------------------------------------------------------------- 3. DTLS deadline
def test_a_session_that_keeps_ice_alive_but_never_does_dtls_is_closed_at_the_deadline(start_server):
    """Finding 1: one STUN check every 10 s without ever finishing DTLS kept a slot forever."""
    # 2 s: room for the steps before the deadline on a loaded machine.
    srv = start_server("--webrtc-max-sessions", "1", "--webrtc-dtls-timeout", "2",
                       env={"AIRWAVE_NOTICE_INTERVAL_MS": "200"})

    async def main():
        ws, link = await go_live(srv, uid("host"), "Host")
        path = f"/whep/{q(link['event_id'])}"
        ufrag, password = "stall" + os.urandom(4).hex(), os.urandom(12).hex()
        offer = with_credentials(await wp.make_offer("whep"), ufrag, password)
        opened = time.monotonic()  # before the POST: the session cannot be older than this
        resp = await wp.post_offer(srv.port, path, offer)
        check_answer(resp, path + "/")
        answer = resp.body.decode()
        server_ufrag, server_password = ice_credentials(answer)
        peer = await IcePeer.open(ufrag, password, server_ufrag, server_password, udp_port(answer))
        keepalive = None
        try:
            peer.check(nominate=True)
            await peer.wait(lambda: peer.successes >= 1 and peer.server_checks >= 1, what="ICE with the server")

            async def keep_checking():
                while True:
                    await asyncio.sleep(0.2)  # a paced sender, not a wait for an event
                    peer.check(nominate=False)
            keepalive = asyncio.create_task(keep_checking())
            # The stalled session holds the only place…
            held = await wp.post_offer(srv.port, path, await wp.make_offer("whep"))
            assert error_problem(held, 503, "server_busy") is None, held
            # …until the deadline, although its checks keep coming and are answered.
            freed = None
            while time.monotonic() - opened < 8:
                resp = await wp.post_offer(srv.port, path, await wp.make_offer("whep"))
                if resp.status == 201:
                    freed = time.monotonic() - opened
                    break
                assert error_problem(resp, 503, "server_busy") is None, resp
                await asyncio.sleep(0.1)  # polling for the deadline to pass: there is no event to await
            assert freed is not None, "the stalled session still held its place 8 s after the answer"
            assert freed >= 2.0, f"freed after {freed:.2f} s, before the 2 s deadline"
            assert not peer.bad_checks, peer.bad_checks
            assert not peer.other, f"the server sent {len(peer.other)} non-STUN datagrams to a peer without DTLS"
        finally:
            if keepalive is not None:
                keepalive.cancel()
            peer.close()
            await close_all(ws)
    run(main(), 30)


# ---------------------------------------------------------------------------- 4. forged nomination
def test_a_forged_nomination_from_another_socket_does_not_move_the_media(server):
    """Finding 2: one spoofed Binding request with USE-CANDIDATE moved a session's media to any
    address. Here the forger knows every credential (as the client itself does) but its socket
    never answers the server's own check: it gets STUN only, and the listener keeps hearing."""
    async def main():
        ws, link = await go_live(server, uid("host"), "Host")
        ev = link["event_id"]
        pacer = PCMPacer(ws, TONE_440)
        whep = wp.WhepListener()
        forger = None
        try:
            resp = await whep.negotiate(server.port, f"/whep/{q(ev)}")
            check_answer(resp, f"/whep/{ev}/")
            await whep.connected(10)
            audio = await whep.collector("audio")
            await audio.wait_count(25, timeout=10, what="decoded audio frames")
            client_ufrag, client_password = ice_credentials(whep.offer_sdp)
            answer = resp.body.decode()
            server_ufrag, server_password = ice_credentials(answer)
            forger = await IcePeer.open(client_ufrag, client_password, server_ufrag, server_password, udp_port(answer),
                                        answers=False)
            for _ in range(5):  # aggressive nomination with the highest priority there is
                forger.check(nominate=True, priority=0xFFFFFFFF)
                await forger.wait(lambda n=forger.successes: forger.successes > n, what="an answer to the forged check")
            await forger.wait(lambda: forger.server_checks >= 1, what="the server's own check of the forged address")
            # One more second of audio reaches the listener; the forger got none of it.
            await audio.wait_count(len(audio) + 50, timeout=10, what="audio frames after the forged checks")
            assert forger.successes == 5, forger.successes
            assert not forger.other, f"{len(forger.other)} media datagrams went to the forged address"
        finally:
            if forger is not None:
                forger.close()
            await pacer.stop()
            await whep.close()
            await close_all(ws)
    run(main(), 45)


# ---------------------------------------------------------------------------- 5. md5
def test_an_md5_fingerprint_is_a_bad_request(server):
    """Finding 8: an md5 a=fingerprint answered 503 instead of 400."""
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Host")
        ev = link["event_id"]
        md5 = "a=fingerprint:md5 " + ":".join(["AB"] * 16)
        for route, tok in (("whep", None), ("whip", token(host_id))):
            offer = re.sub(r"^a=fingerprint:.*$", md5, await wp.make_offer(route), flags=re.M)
            resp = await wp.post_offer(server.port, f"/{route}/{q(ev)}", offer, tok)
            problem = error_problem(resp, 400, "bad_request")
            assert problem is None, f"{route} with an md5 fingerprint: {problem}"
            assert "md5" in resp.json()["message"], resp.json()
        await close_all(ws)
    run(main(), 30)


# ---------------------------------------------------------------------------- 6. settings
def test_webrtc_limit_settings_errors_exit_2_one_line(tmp_path):
    base = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--jwt-secret", SECRET]
    cases = [
        (["--webrtc-max-sessions", "10", "--webrtc-reserved-sessions", "11"], "--webrtc-reserved-sessions"),
        (["--webrtc-reserved-sessions", "-1"], "--webrtc-reserved-sessions"),
        (["--webrtc-anonymous-per-ip", "0"], "--webrtc-anonymous-per-ip"),
        (["--webrtc-offer-rate", "0"], "--webrtc-offer-rate"),
        (["--webrtc-offer-burst", "x"], "--webrtc-offer-burst"),
        (["--webrtc-dtls-timeout", "0"], "--webrtc-dtls-timeout"),
        (["--webrtc-nack-rate", "0"], "--webrtc-nack-rate"),
        (["--webrtc-nack-byte-rate", str(1 << 31)], "--webrtc-nack-byte-rate"),
    ]
    for args, needle in cases:
        assert_one_line_error(run_cli(base + args, timeout=30), needle)
    # The variables are the same settings.
    env = {"AIRWAVE_WEBRTC_DTLS_TIMEOUT": "0"}
    assert_one_line_error(run_cli(base, env=env, timeout=30), "--webrtc-dtls-timeout")
