"""PROTOCOL.md section 5: HTTP routes."""

import asyncio
import json
import struct
import time

import pytest

from awtest import (close_all, connect, expect_close, expect_refusal, go_live, http_get, http_json, join, join_path,
                    metric_sum, metrics, parse_iso, recv_until, run, send, token, uid, wait_list, roles, q,
                    wrong_signature_token)


@pytest.mark.parametrize("path", ["/healthz", "/healthz/", "/readyz", "/readyz/"])
def test_health_and_ready(server, path):
    status, headers, body = http_get(server, path)
    assert status == 200, (path, status, body)


def test_metrics_prometheus_text(server):
    async def main():
        ws, link = await go_live(server)
        m = await join(server, link["event_id"])
        before = metrics(server)
        failures_before = metric_sum(before, "airwave_auth_failures_total")
        await expect_refusal(server.ws(join_path(link["event_id"], uid("x"), wrong_signature_token("x"))),
                             "unauthorized", 4401)
        status, headers, body = http_get(server, "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain"), headers
        text = body.decode()
        assert "# TYPE airwave_connections_open gauge" in text, text[:2000]
        assert "airwave_auth_failures_total" in text
        after = metrics(server)
        assert metric_sum(after, "airwave_auth_failures_total") >= failures_before + 1
        assert metric_sum(after, "airwave_connections_open") >= 2  # the host and the listener
        assert metric_sum(after, "airwave_messages_out_total") > 0
        # Every sample line is "name{labels} value".
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name_labels, value = line.rsplit(" ", 1)
                float(value)
        for path in ("/metrics/",):
            assert http_get(server, path)[0] == 200
        await close_all(m, ws)
    run(main())


def test_api_streams_lists_live_events(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Api Host")
        ev = link["event_id"]
        a = await join(server, ev)
        b = await join(server, ev, verified=True)
        await recv_until(ws, "participant_count", pred=lambda x: x["count"] == 2)
        for path in ("/api/streams", "/api/streams/"):
            body = http_json(server, path)
            assert isinstance(body, dict) and isinstance(body["streams"], list), body
            mine = [s for s in body["streams"] if s["event_id"] == ev]
            assert len(mine) == 1, body
            s = mine[0]
            assert s["room_id"] == ev
            assert s["host_user_id"] == host_id and s["host_username"] == "Api Host"
            assert s["mode"] == "audio" and s["status"] == "active" and s["type"] == "AUDIO"
            assert s["total_participants"] == 2
            parse_iso(s["start_timestamp"])
        await send(ws, {"type": "stream_ended"})
        await expect_close(ws, 1000)
        for m in (a, b):
            await expect_close(m.ws, 1000)
        body = http_json(server, "/api/streams")
        assert ev not in [s["event_id"] for s in body["streams"]]
    run(main())


def test_api_stream_detail_live_and_ended(server):
    async def main():
        host_id = uid("host")
        ws, link = await go_live(server, host_id, "Detail Host")
        ev = link["event_id"]
        a = await join(server, ev, verified=True, username="Alice")
        b = await join(server, ev)
        await recv_until(ws, "participant_count", pred=lambda x: x["count"] == 2)
        for path in (f"/api/streams/{ev}", f"/api/streams/{ev}/"):
            info = http_json(server, path)
            assert info["event_id"] == ev and info["status"] == "active"
            assert info["host_user_id"] == host_id and info["host_username"] == "Detail Host"
            assert info["total_participants"] == 2
            parse_iso(info["start_timestamp"])
            host = info["participants"][0]
            assert host["user_id"] == host_id and host["username"] == "Detail Host" and host["role"] == "host"
            assert host["verified"] is True and host["left_at"] is None
            assert host["joined_at"] == info["start_timestamp"]
            assert info["participants_total"] == 3
            parts = {p["user_id"]: p for p in info["participants"]}
            assert a.user_id in parts and b.user_id in parts, info
            assert parts[a.user_id]["verified"] is True and parts[b.user_id]["verified"] is False
            assert parts[a.user_id]["username"] == "Alice"
        await send(ws, {"type": "stream_ended"})
        await expect_close(ws, 1000)
        for m in (a, b):
            await expect_close(m.ws, 1000)
        info = http_json(server, f"/api/streams/{ev}")
        assert info["status"] == "ended"
        host = info["participants"][0]
        assert host["role"] == "host" and host["left_at"] is not None
        assert host["left_at"] == info["end_timestamp"]
        parts = {p["user_id"]: p for p in info["participants"]}
        assert a.user_id in parts and b.user_id in parts
        for p in parts.values():
            if p.get("left_at") is not None:
                parse_iso(p["left_at"])
        assert all(p.get("left_at") for p in parts.values()), info["participants"]
        if info.get("end_timestamp") is not None:
            assert parse_iso(info["end_timestamp"]) >= parse_iso(info["start_timestamp"])
    run(main())


def test_api_chat_paging(server):
    async def main():
        ws, link = await go_live(server)
        ev = link["event_id"]
        a = await join(server, ev)
        for i in range(7):
            await send(a.ws, {"type": "broadcast_message", "message": f"c{i}"})
            await recv_until(a.ws, "message_broadcast", pred=lambda x, i=i: x["message"] == f"c{i}")
        body = http_json(server, f"/api/streams/{ev}/chat")
        msgs = body["messages"]
        assert [m["message"] for m in msgs] == [f"c{i}" for i in range(7)], "newest last"
        for m in msgs:
            assert m["user_id"] == a.user_id and m["username"] == a.user_id
            parse_iso(m["sent_at"])
            assert isinstance(m["id"], int)
        ids = [m["id"] for m in msgs]
        assert ids == sorted(ids) and len(set(ids)) == 7
        page = http_json(server, f"/api/streams/{ev}/chat?limit=3")["messages"]
        assert [m["message"] for m in page] == ["c4", "c5", "c6"]
        page2 = http_json(server, f"/api/streams/{ev}/chat?limit=3&before={page[0]['id']}")["messages"]
        assert [m["message"] for m in page2] == ["c1", "c2", "c3"]
        page3 = http_json(server, f"/api/streams/{ev}/chat/?limit=3&before={page2[0]['id']}")["messages"]
        assert [m["message"] for m in page3] == ["c0"]
        page4 = http_json(server, f"/api/streams/{ev}/chat?before={page3[0]['id']}")["messages"]
        assert page4 == []
        await close_all(a, ws)
    run(main())


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=100000", "limit=1.5",
                                   "before=abc", "before=-5", "before=0"])
def test_api_chat_bad_params(server, query):
    async def main():
        ws, link = await go_live(server)
        status, headers, body = http_get(server, f"/api/streams/{link['event_id']}/chat?{query}")
        assert status == 400, (query, status, body)
        err = json.loads(body)
        assert err["type"] == "error" and err["code"] == "bad_request" and err["message"], err
        await close_all(ws)
    run(main())


@pytest.mark.parametrize("path", ["/api/streams/noSuchEvent42", "/api/streams/noSuchEvent42/",
                                  "/api/streams/noSuchEvent42/chat"])
def test_api_unknown_event_404(server, path):
    status, headers, body = http_get(server, path)
    assert status == 404, (path, status, body)
    err = json.loads(body)
    assert err["type"] == "error" and err["code"] == "event_not_found", err


@pytest.mark.parametrize("path", ["/api/streams/" + "x" * 65, "/api/streams/bad!id", "/api/streams/bad!id/chat"])
def test_api_bad_event_id_400(server, path):
    status, headers, body = http_get(server, path)
    assert status == 400, (path, status, body)
    assert json.loads(body)["code"] == "bad_request"


def test_unknown_route_404(server):
    assert http_get(server, "/no/such/route")[0] == 404
    assert http_get(server, "/api/nothing")[0] == 404


def _poll_metrics(srv, predicate, timeout=3.0):
    """The metrics once `predicate` holds for them (gauges follow the events a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        parsed = metrics(srv)
        if predicate(parsed) or time.monotonic() > deadline:
            return parsed
        time.sleep(0.05)


def test_event_gauges_and_media_bytes(server):
    async def main():
        ws, link = await go_live(server)
        event_id = link["event_id"]
        label = f'event_id="{event_id}"'
        members = [await join(server, event_id) for _ in range(2)]
        await recv_until(ws, "participant_count", pred=lambda m: m["count"] == 2)
        parsed = _poll_metrics(server, lambda p: metric_sum(p, "airwave_event_participants", label) == 2)
        assert metric_sum(parsed, "airwave_event_participants", label) == 2
        assert metric_sum(parsed, "airwave_events_live") >= 1
        bytes_before = metric_sum(parsed, "airwave_media_bytes_out_total", 'kind="audio"')
        # One real Opus packet (a 20 ms CELT silence frame) from the host reaches both listeners.
        packet = bytes([0xF8, 0xFF, 0xFE])
        frame = struct.pack(">BBBBIII", 1, 1, 0, 0, 0, 7, 960) + packet
        await ws.send(frame)
        for m in members:
            got = await asyncio.wait_for(m.ws.recv(), 5)
            while isinstance(got, str):
                got = await asyncio.wait_for(m.ws.recv(), 5)
            assert got[16:] == packet
        parsed = _poll_metrics(server, lambda p: metric_sum(p, "airwave_media_bytes_out_total", 'kind="audio"') > bytes_before)
        # Counted as sent on the wire: WebSocket header (2) + relay header (16) + payload, twice.
        assert metric_sum(parsed, "airwave_media_bytes_out_total", 'kind="audio"') - bytes_before == 2 * (2 + 16 + len(packet))
        await send(ws, {"type": "stream_ended"})
        await recv_until(ws, "stream_ended")
        parsed = _poll_metrics(server, lambda p: not any(n == "airwave_event_participants" and label in l for (n, l) in p))
        assert not any(n == "airwave_event_participants" and label in l for (n, l) in parsed), "the ended event's series is gone"
        await close_all(ws, *(m.ws for m in members))

    run(main())


def test_metrics_export_dropped_webrtc_datagrams(server):
    """The WebRTC UDP driver's dropped datagrams are a metric, present (at 0) from the start."""
    assert metrics(server).get(("airwave_webrtc_datagrams_dropped_total", '{reason="socket_full"}')) == 0
