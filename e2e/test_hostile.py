"""PROTOCOL.md section 1: hostile and malformed input on live-event sockets."""

import asyncio
import json
import time

import pytest

from awtest import (close_all, connect, drain_until_close, expect_close, go_live, http_get, join, recv_error, recv_json, recv_until, run,
                    send, uid)

BAD_FRAMES = [
    ("not json", "bad_message"),
    ("{\"type\": \"broadcast_message\", ", "bad_message"),
    ("[1, 2, 3]", "bad_message"),
    ("\"just a string\"", "bad_message"),
    ("42", "bad_message"),
    ("null", "bad_message"),
    ("{}", "bad_message"),
    ("{\"message\": \"no type\"}", "bad_message"),
    ("{\"type\": 5}", "bad_message"),
    ("{\"type\": null}", "bad_message"),
    ("{\"type\": [\"broadcast_message\"]}", "bad_message"),
    ("{\"type\": {\"a\": 1}}", "bad_message"),
    ("{\"type\": \"broadcast_message\", \"message\": 5}", "bad_message"),
    ("{\"type\": \"broadcast_message\", \"message\": {\"x\": 1}}", "bad_message"),
    ("{\"type\": \"invite_cohost\", \"user_id\": [1]}", "bad_message"),
    ("{\"type\": \"invite_cohost\", \"user_id\": \"bad id!\"}", "bad_message"),
    ("{\"type\": \"invite_cohost\"}", "bad_message"),
    ("{\"type\": \"mute\", \"user_id\": true}", "bad_message"),
    ("{\"type\": \"remove_cohost\"}", "bad_message"),
    ("{\"type\": \"switching_to_screen_sharing\", \"width\": 1.5}", "bad_message"),
    ("{\"type\": \"no_such_type\"}", "unknown_type"),
    ("{\"type\": \"\"}", "unknown_type"),
    ("{\"type\": \"BROADCAST_MESSAGE\", \"message\": \"x\"}", "unknown_type"),
    ("\ufeff{\"type\": \"broadcast_message\", \"message\": \"bom\"}", "bad_message"),
]


@pytest.mark.parametrize("as_host", [False, True])
def test_malformed_frames_get_errors_and_connection_stays_open(server, as_host):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        target = ws if as_host else m.ws
        for frame, code in BAD_FRAMES:
            await target.send(frame)
            err = await recv_error(target, code)
            assert err["type"] == "error"
            # The connection stays open: a valid message still works.
            await send(target, {"type": "broadcast_message", "message": f"after {frame[:20]}"})
            msg, _ = await recv_until(target, "message_broadcast")
            assert msg["message"] == f"after {frame[:20]}"
        await close_all(m, ws)
    run(main(), timeout=120)


def test_unknown_fields_ignored(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        await send(m.ws, {"type": "keyframe_request", "junk": [1, {"a": None}], "x": "y"})
        await recv_until(ws, "keyframe_request")
        await close_all(m, ws)
    run(main())


def test_deeply_nested_input(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        for depth in (100, 1000, 30000):
            await m.ws.send("[" * depth + "]" * depth)
            await recv_error(m.ws, "bad_message")
            nested = "[" * depth + "]" * depth
            await m.ws.send('{"type": "broadcast_message", "message": "deep", "x": ' + nested + "}")
            await recv_until(m.ws, ("error", "message_broadcast"))
            await m.ws.send('{"a":' * min(depth, 10000) + "1" + "}" * min(depth, 10000))
            await recv_error(m.ws, "bad_message")
        await send(m.ws, {"type": "broadcast_message", "message": "survived"})
        msg, _ = await recv_until(ws, "message_broadcast", pred=lambda x: x["message"] == "survived")
        assert http_get(server, "/healthz")[0] == 200
        await close_all(m, ws)
    run(main())


def test_invalid_utf8_text_frame(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        # Raw invalid UTF-8 in a text frame: a protocol violation (the server may close with 1007)
        # or a bad_message; never a crash.
        from websockets.frames import Frame, Opcode
        try:
            await m.ws.send(b'{"type":"broadcast_message","message":"\xff\xfe"}', text=True)
        except TypeError:
            pytest.skip("client cannot send raw text bytes")
        try:
            first = await recv_json(m.ws, 5)
            assert first["type"] == "error" and first["code"] == "bad_message", first
        except Exception:
            pass
        await send(ws, {"type": "broadcast_message", "message": "host alive"})
        await recv_until(ws, "message_broadcast")
        assert http_get(server, "/healthz")[0] == 200
        await close_all(m, ws)
    run(main())


def test_text_frame_over_64k_closes_1009(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        # Exactly at the limit is still a (bad) message, not a close.
        at_limit = json.dumps({"type": "broadcast_message", "message": "x", "pad": ""})
        at_limit = at_limit[:-2] + "a" * (65536 - len(at_limit)) + '"}'
        assert len(at_limit.encode()) == 65536
        await m.ws.send(at_limit)
        await recv_until(m.ws, "message_broadcast")
        await close_all(m)
        # Over the limit: close 1009, every time (repeated: the close code must not depend on timing).
        codes = []
        for attempt in range(15):
            m = await join(server, link["event_id"])
            await m.ws.send(json.dumps({"type": "broadcast_message", "message": "y" * 70000}))
            frames, code = await drain_until_close(m.ws, 10)
            codes.append(code)
        assert codes == [1009] * len(codes), f"close codes after a 70 kB text frame: {codes}"
        # Others are unaffected.
        await send(ws, {"type": "broadcast_message", "message": "fine"})
        await recv_until(ws, "message_broadcast", pred=lambda x: x["message"] == "fine")
        await close_all(ws)
    run(main())


def test_binary_frame_over_1mib_closes_1009(server):
    from websockets.exceptions import ConnectionClosed

    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        # A valid-size media frame from a listener: dropped, not_allowed, connection open.
        await m.ws.send(bytes([1, 1, 0, 0]) + bytes(12) + b"\x00" * 10)
        await recv_error(m.ws, "not_allowed")
        await close_all(m)
        # The server may reset the socket while the client is still writing the oversized
        # frame, so the close frame can be lost in transit: try a few times, and every close
        # code that does arrive must be 1009.
        codes = []
        for attempt in range(5):
            m = await join(server, link["event_id"])
            try:
                await m.ws.send(b"\x01\x01\x00\x00" + b"\x00" * (1024 * 1024 + 100))
                frames, code = await drain_until_close(m.ws, 10)
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            except OSError:
                code = None
            m.ws.transport.abort()
            if code is not None:
                codes.append(code)
            if len(codes) >= 2:
                break
        assert codes, "never saw a close frame after an oversized binary frame"
        assert all(c == 1009 for c in codes), codes
        await send(ws, {"type": "broadcast_message", "message": "fine"})
        await recv_until(ws, "message_broadcast", pred=lambda x: x["message"] == "fine")
        await close_all(ws)
    run(main())


def test_chat_flood_rate_limited_and_others_not_delayed(start_server):
    srv = start_server()  # default rate limits: chat 5/s, burst 10

    async def main():
        ws, link = await go_live(srv)
        flooder = await join(srv, link["event_id"])
        other = await join(srv, link["event_id"])
        observer = await join(srv, link["event_id"])

        stop = asyncio.Event()
        received = {"flood": 0, "rate_limited": 0}

        async def drain(member):
            try:
                while not stop.is_set():
                    msg = await recv_json(member.ws, 0.5)
                    if msg["type"] == "error" and msg["code"] == "rate_limited":
                        received["rate_limited"] += 1
            except (asyncio.TimeoutError, Exception):
                pass

        async def flood():
            for i in range(400):
                await flooder.ws.send(json.dumps({"type": "broadcast_message", "message": f"flood {i}"}))
                if i % 50 == 0:
                    await asyncio.sleep(0)

        drainer = asyncio.create_task(drain(flooder))
        flood_task = asyncio.create_task(flood())
        # While flooding, another connection's chat reaches the observer quickly.
        latencies = []
        for i in range(5):
            t0 = time.monotonic()
            await send(other.ws, {"type": "broadcast_message", "message": f"calm {i}"})
            await recv_until(observer.ws, "message_broadcast", timeout=5, pred=lambda x, i=i: x["message"] == f"calm {i}")
            latencies.append(time.monotonic() - t0)
            await asyncio.sleep(0.25)
        await flood_task
        await asyncio.sleep(0.5)
        stop.set()
        await drainer
        assert received["rate_limited"] >= 1, "the flooder got no rate_limited error"
        assert received["rate_limited"] <= 4, f"rate_limited errors are at most one a second: {received}"
        assert max(latencies) < 1.0, f"another connection's chat was delayed: {latencies}"
        # Most of the flood was dropped: the host saw at most burst + rate*elapsed + slack messages.
        floods = 0
        while True:
            try:
                msg = await recv_json(ws, 0.5)
            except asyncio.TimeoutError:
                break
            if msg["type"] == "message_broadcast" and msg["message"].startswith("flood"):
                floods += 1
        assert 10 <= floods <= 40, f"{floods} flood messages got through"
        # The flooder is still connected and may chat again after a pause.
        await asyncio.sleep(1.0)
        await send(flooder.ws, {"type": "broadcast_message", "message": "sorry"})
        await recv_until(observer.ws, "message_broadcast", pred=lambda x: x["message"] == "sorry")
        await close_all(flooder, other, observer, ws)
    run(main())


def test_control_flood_rate_limited(start_server):
    srv = start_server()

    async def main():
        ws, link = await go_live(srv)
        m = await join(srv, link["event_id"])
        for _ in range(200):
            await m.ws.send(json.dumps({"type": "keyframe_request"}))
        err = await recv_error(m.ws, "rate_limited")
        assert err["details"].get("type") == "keyframe_request", err
        # The host got at most a few keyframe requests (they are also limited to one a second).
        count = 0
        while True:
            try:
                msg = await recv_json(ws, 0.5)
            except asyncio.TimeoutError:
                break
            count += msg["type"] == "keyframe_request"
        assert 1 <= count <= 3, count
        await close_all(m, ws)
    run(main())


def test_server_still_serves_after_abuse(server):
    async def main():
        for _ in range(3):
            assert http_get(server, "/healthz")[0] == 200
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        await send(m.ws, {"type": "broadcast_message", "message": "ok"})
        await recv_until(ws, "message_broadcast")
        await close_all(m, ws)
        assert server.alive()
    run(main())
