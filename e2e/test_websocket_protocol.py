"""RFC 6455 behaviour of the relay's own WebSocket layer (Transport/WebSocketSession): pings,
the close handshake, reserved bits, UTF-8, messages sent before admission finishes. Raw frames
over a real socket, so nothing in a client library smooths them over."""

import asyncio
import base64
import json
import os
import struct
import time

from awtest import go_live, close_all, host_path, join_path, recv_until, run, token, uid


def frame(opcode, payload=b"", fin=True, rsv=0, length=None):
    """One masked client frame; `length` overrides the announced payload length."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0]


class RawSocket:
    """A minimal masking WebSocket client over asyncio streams."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port, path):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, opcode, payload=b"", fin=True, rsv=0):
        self.writer.write(frame(opcode, payload, fin, rsv))

    async def recv(self, timeout=10):
        """(opcode, payload) of the next frame, or None once the server closed the socket."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return None
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(n)

    async def recv_until(self, opcode, timeout=10):
        while True:
            frame = await self.recv(timeout)
            assert frame is not None, f"socket closed before opcode {opcode}"
            if frame[0] == opcode:
                return frame[1]

    def close(self):
        self.writer.close()


async def listener(server, event_id):
    return await RawSocket.open(server.port, join_path(event_id, uid("raw")))


def test_ping_is_answered_with_the_same_payload(server):
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        raw.send(0x9, b"are you there")
        assert await raw.recv_until(0xA) == b"are you there"
        raw.close()
        await close_all(host)
    run(main())


def test_close_is_answered_then_the_socket_closes(server):
    async def main():
        host, link = await go_live(server)
        for sent, answered in [(struct.pack("!H", 4000) + b"bye", 1000), (struct.pack("!H", 1000), 1000),
                               (b"", 1000), (struct.pack("!H", 999), 1002), (struct.pack("!H", 1005), 1002),
                               (b"\x03", 1002), (struct.pack("!H", 1000) + b"\xff\xfe", 1007)]:
            raw = await listener(server, link["event_id"])
            raw.send(0x8, sent)
            payload = await raw.recv_until(0x8)
            assert struct.unpack("!H", payload[:2])[0] == answered, (sent, payload)
            assert await raw.recv() is None, "the server closes the socket after answering a close"
            raw.close()
        await close_all(host)
    run(main())


def test_reserved_bits_close_with_protocol_error(server):
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        raw.send(0x1, json.dumps({"type": "broadcast_message", "message": "rsv"}).encode(), rsv=0b100)
        payload = await raw.recv_until(0x8)
        assert struct.unpack("!H", payload[:2])[0] == 1002
        raw.close()
        await close_all(host)
    run(main())


def test_invalid_utf8_text_closes_1007(server):
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        raw.send(0x1, b'{"type":"broadcast_message","message":"\xff\xfe"}')
        payload = await raw.recv_until(0x8)
        assert struct.unpack("!H", payload[:2])[0] == 1007
        raw.close()
        await close_all(host)
    run(main())


def test_messages_sent_with_the_handshake_are_kept_in_order(server):
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        # Sent at once, while the server may still be admitting the connection.
        for i in range(5):
            raw.send(0x1, json.dumps({"type": "broadcast_message", "message": f"early {i}"}).encode())
        seen = []
        for _ in range(5):
            msg, _ = await recv_until(host, "message_broadcast")
            seen.append(msg["message"])
        assert seen == [f"early {i}" for i in range(5)]
        raw.close()
        await close_all(host)
    run(main())


def test_a_continuation_without_a_start_closes_with_protocol_error(server):
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        raw.send(0x0, b"stray")
        payload = await raw.recv_until(0x8)
        assert struct.unpack("!H", payload[:2])[0] == 1002
        raw.close()
        await close_all(host)
    run(main())


def test_a_peer_that_half_closes_is_gone(server):
    async def main():
        host, link = await go_live(server)
        user = uid("fin")
        raw = await RawSocket.open(server.port, join_path(link["event_id"], user))
        await recv_until(host, "participant_joined", pred=lambda m: m["user_id"] == user)
        raw.writer.write_eof()  # FIN without a close frame: the socket is only half closed
        msg, _ = await recv_until(host, "participant_left", pred=lambda m: m["user_id"] == user)
        assert msg["user_id"] == user
        # The server closes its side too: the frames it sent before, then end of stream.
        for _ in range(20):
            if await raw.recv() is None:
                break
        else:
            raise AssertionError("the server kept the half-closed socket open")
        raw.close()
        await close_all(host)
    run(main())


async def close_then_eof(raw, timeout=10):
    """The close code the server sent, after checking the socket then ends cleanly (no reset)."""
    payload = await raw.recv_until(0x8, timeout)
    assert await raw.recv(timeout) is None, "the server closes the socket after the close handshake"
    return close_code(payload)


def test_a_bad_frame_followed_at_once_by_a_close_still_gets_our_close_frame(server):
    # Autobahn 9.1.2-9.1.3 and the protocol cases: the violation and the client's close arrive
    # in one read; the server's close frame used to be lost behind the channel close.
    async def main():
        host, link = await go_live(server)
        cases = [
            (frame(0x1, b"{}", rsv=0b100), 1002),  # reserved bit
            (frame(0x3, b"x"), 1002),  # reserved opcode
            (frame(0x0, b"stray"), 1002),  # continuation without a message
            (frame(0x1, b"a" * 70_000), 1009),  # text over 64 KiB
        ]
        for bad, expected in cases:
            raw = await listener(server, link["event_id"])
            raw.writer.write(bad + frame(0x8, struct.pack("!H", 1000)))
            assert await close_then_eof(raw) == expected, bad[:2]
            raw.close()
        await close_all(host)
    run(main())


def test_invalid_utf8_fails_at_the_first_bad_fragment(server):
    # Autobahn 6.4.x: the close must come before the message ends (it never does here).
    async def main():
        host, link = await go_live(server)
        raw = await listener(server, link["event_id"])
        raw.writer.write(frame(0x1, b'{"type":"broadcast_message","message":"', fin=False) + frame(0x0, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", fin=False))
        raw.writer.write(frame(0x0, b"\xed\xa0\x80", fin=False))  # a UTF-16 surrogate: never valid
        assert close_code(await raw.recv_until(0x8, timeout=3)) == 1007
        raw.close()
        # Within one frame whose payload has not all arrived yet.
        raw = await listener(server, link["event_id"])
        raw.writer.write(frame(0x1, b"ok \xf4\x90\x80\x80 then more", length=1000)[:6 + 12])  # header + 12 payload bytes
        assert close_code(await raw.recv_until(0x8, timeout=3)) == 1007
        raw.close()
        await close_all(host)
    run(main())


def test_an_oversized_frame_is_refused_with_1009_and_a_clean_close(server):
    # A frame announcing more than the host's 1 MiB: 1009, its payload discarded as it comes,
    # and the client's close answered by closing the socket, not by a reset.
    async def main():
        user = uid("big")
        raw = await RawSocket.open(server.port, host_path(user, token(user)))
        raw.writer.write(frame(0x2, b"\0" * (2 * 1024 * 1024)) + frame(0x8, struct.pack("!H", 1000)))
        assert await close_then_eof(raw, timeout=20) == 1009
        raw.close()
    run(main())


def test_binary_messages_are_limited_to_64_kib_except_on_sockets_that_may_publish(server):
    async def main():
        host_user = uid("host")
        host, link = await go_live(server, user_id=host_user)
        over = b"\0" * (64 * 1024 + 1)
        # An unverified listener and the directory: 1009.
        for path in (join_path(link["event_id"], uid("anon")), "/ws/active-streams/"):
            raw = await RawSocket.open(server.port, path)
            raw.send(0x2, over)
            assert close_code(await raw.recv_until(0x8)) == 1009, path
            raw.close()
        # A verified listener's and the host's sockets take up to 1 MiB (split over fragments
        # too): the connection stays open and answers a ping.
        verified = uid("ver")
        for path in (join_path(link["event_id"], verified, token(verified)), host_path(host_user, token(host_user))):
            raw = await RawSocket.open(server.port, path)
            big = b"\0" * (1024 * 1024)
            raw.writer.write(frame(0x2, big[:600_000], fin=False) + frame(0x0, big[600_000:]))
            raw.send(0x9, b"still here")
            while True:
                opcode, payload = await raw.recv()
                assert opcode != 0x8 or close_code(payload) != 1009, path
                if opcode == 0xA:
                    assert payload == b"still here"
                    break
            raw.close()
        await close_all(host)
    run(main())


def test_an_unfinished_fragmented_message_is_closed_at_the_deadline(start_server):
    srv = start_server("--fragment-timeout", "1")

    async def main():
        raw = await RawSocket.open(srv.port, "/ws/active-streams/")
        started = time.monotonic()
        raw.send(0x1, b'{"type":"', fin=False)  # and never the rest
        assert close_code(await raw.recv_until(0x8, timeout=10)) == 1008
        assert 0.8 <= time.monotonic() - started < 4
        assert await raw.recv(timeout=10) is None  # unanswered: closed after a short grace
        raw.close()
    run(main())


def test_a_pong_counts_only_when_it_echoes_the_ping(start_server):
    srv = start_server(env={"AIRWAVE_PING_INTERVAL": "1"})

    async def answer(raw, right):
        """Answers every ping (right or wrong payload) until the server closes; the close code or None."""
        while True:
            got = await raw.recv(timeout=10)
            if got is None:
                return None
            opcode, payload = got
            if opcode == 0x9:
                raw.send(0xA, payload if right else b"not your ping")
            elif opcode == 0x8:
                return close_code(payload)

    async def main():
        wrong = await RawSocket.open(srv.port, "/ws/active-streams/")
        right = await RawSocket.open(srv.port, "/ws/active-streams/")
        keeper = asyncio.ensure_future(answer(right, True))
        started = time.monotonic()
        assert await answer(wrong, False) == 1001  # "Ping timeout" after the second ping
        assert time.monotonic() - started < 6
        assert not keeper.done(), "a connection whose pongs echo the pings stays open"
        keeper.cancel()
        wrong.close()
        right.close()
    run(main())
