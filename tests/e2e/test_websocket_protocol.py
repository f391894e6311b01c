"""RFC 6455 behaviour of the relay's own WebSocket layer (Transport/WebSocketSession): pings,
the close handshake, reserved bits, UTF-8, messages sent before admission finishes. Raw frames
over a real socket, so nothing in a client library smooths them over."""

import asyncio
import base64
import json
import os
import struct

from awtest import go_live, close_all, join_path, recv_until, run, uid


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
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

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
