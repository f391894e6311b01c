"""Helpers shared by Airwave's end-to-end tests: tokens, WebSocket and HTTP clients.

Every wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import re
import time
import urllib.parse
import uuid

import jwt
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

SECRET = "e2e-shared-secret-0123456789-abcdefghijklmnop"
DEFAULT_TIMEOUT = 5.0
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


def uid(prefix: str = "u") -> str:
    """A user id unique to this test run: `[A-Za-z0-9_.@-]`, well under 64 characters."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------- tokens
def token(user_id, username=None, *, secret=SECRET, algorithm="HS256", key=None, ttl=3600, headers=None,
          claim="user_id", exp=True, **claims) -> str:
    """A JWT for `user_id` (claim `user_id` unless `claim` says otherwise)."""
    now = int(time.time())
    payload = {"iat": now}
    if claim:
        payload[claim] = user_id
    if exp:
        payload["exp"] = now + ttl
    if username is not None:
        payload["username"] = username
    payload.update(claims)
    return jwt.encode(payload, key if key is not None else secret, algorithm=algorithm, headers=headers)


def expired_token(user_id, **kw) -> str:
    return token(user_id, ttl=-600, **kw)


def future_nbf_token(user_id, **kw) -> str:
    return token(user_id, nbf=int(time.time()) + 600, **kw)


def alg_none_token(user_id) -> str:
    def b64(obj):
        import base64
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return b64({"alg": "none", "typ": "JWT"}) + "." + b64({"user_id": user_id, "exp": int(time.time()) + 3600}) + "."


def wrong_signature_token(user_id) -> str:
    return token(user_id, secret="another-secret-that-is-long-enough-0123456789")


def tampered_token(user_id, other_user) -> str:
    """A valid token for `user_id` whose payload was swapped for `other_user` (signature now wrong)."""
    good = token(user_id)
    forged = token(other_user, secret="x" * 40)
    h, _, s = good.split(".")
    return ".".join([h, forged.split(".")[1], s])


# ---------------------------------------------------------------------------- URLs
def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def host_path(user_id, tok=None, slash=True) -> str:
    path = f"/ws/stream/start/live/{q(user_id)}" + ("/" if slash else "")
    if tok is not None:
        path += "?token=" + q(tok)
    return path


def join_path(event_id, user_id, tok=None, username=None, slash=True) -> str:
    path = f"/ws/stream/live/join/event/{q(event_id)}/"
    if username is not None:
        path += q(username) + "/"
    path += q(user_id)
    if slash:
        path += "/"
    if tok is not None:
        path += "?token=" + q(tok)
    return path


# ---------------------------------------------------------------------------- WebSocket helpers
async def connect(url, **kw):
    kw.setdefault("open_timeout", 15)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("max_size", 8 * 1024 * 1024)
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_queue", None)  # never stop reading: a full queue would stall the close handshake
    return await ws_connect(url, **kw)


async def recv_json(ws, timeout=DEFAULT_TIMEOUT):
    """The next frame, which must be a JSON text frame."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"expected a text frame, got {type(raw).__name__}: {raw[:80]!r}"
    msg = json.loads(raw)
    assert isinstance(msg, dict) and isinstance(msg.get("type"), str), f"not a typed JSON object: {raw[:200]}"
    return msg


async def recv_until(ws, type_, timeout=DEFAULT_TIMEOUT, pred=None):
    """Collects frames until one of `type_` (and matching `pred`) arrives.
    Returns (that message, list of the frames before it)."""
    types = {type_} if isinstance(type_, str) else set(type_)
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {types} within {timeout} s; got {[m.get('type') for m in seen]}: {seen[-5:]}")
        try:
            msg = await recv_json(ws, left)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {types} within {timeout} s; got {[m.get('type') for m in seen]}: {seen[-5:]}")
        except ConnectionClosed as e:
            raise AssertionError(f"connection closed ({close_code_of(e)}) before {types}; got {seen}")
        if msg["type"] in types and (pred is None or pred(msg)):
            return msg, seen
        seen.append(msg)


async def recv_error(ws, code, timeout=DEFAULT_TIMEOUT):
    """Waits for an error frame with `code` (other frames are skipped and returned)."""
    msg, seen = await recv_until(ws, "error", timeout, pred=lambda m: m.get("code") == code)
    assert isinstance(msg.get("message"), str) and msg["message"], msg
    assert isinstance(msg.get("details"), dict), msg
    return msg


def close_code_of(exc: ConnectionClosed):
    return exc.rcvd.code if exc.rcvd is not None else None


async def drain_until_close(ws, timeout=DEFAULT_TIMEOUT):
    """Reads every frame until the server closes; returns (frames, received close code)."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection not closed within {timeout} s; frames: {[_short(f) for f in frames]}")
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            raise AssertionError(f"connection not closed within {timeout} s; frames: {[_short(f) for f in frames]}")
        except ConnectionClosed as e:
            return frames, close_code_of(e)
        frames.append(json.loads(raw) if isinstance(raw, str) else raw)


def _short(frame):
    return frame.get("type") if isinstance(frame, dict) else f"<{len(frame)} bytes>"


async def expect_close(ws, code, timeout=DEFAULT_TIMEOUT):
    """Asserts that the server closes with `code`; returns the frames that came before."""
    frames, got = await drain_until_close(ws, timeout)
    assert got == code, f"expected close {code}, got {got}; frames before: {frames}"
    return frames


async def expect_refusal(url, error_code, close_code, timeout=DEFAULT_TIMEOUT):
    """Connects and asserts the error frame is the first and only frame, then the close code."""
    ws = await connect(url)
    try:
        frames, got = await drain_until_close(ws, timeout)
    finally:
        await ws.close()
    assert len(frames) == 1, f"expected exactly one error frame, got {frames}"
    err = frames[0]
    assert err.get("type") == "error" and err.get("code") == error_code, f"expected error {error_code}, got {err}"
    assert isinstance(err.get("message"), str) and err["message"], err
    assert isinstance(err.get("details"), dict), err
    assert got == close_code, f"expected close {close_code} after {error_code}, got {got}"
    return err


async def expect_silence(ws, seconds, ignore=("participant_list", "participant_count", "active_speakers")):
    """Asserts that no frame (other than `ignore`d types) arrives for `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await recv_json(ws, left)
        except asyncio.TimeoutError:
            return
        assert msg["type"] in ignore, f"unexpected frame: {msg}"


async def send(ws, obj):
    await ws.send(json.dumps(obj))


# ---------------------------------------------------------------------------- live-event helpers
async def go_live(srv, user_id=None, username=None, tok=None, slash=True):
    """Connects a host; returns (ws, stream_link message)."""
    user_id = user_id or uid("host")
    tok = tok if tok is not None else token(user_id, username)
    ws = await connect(srv.ws(host_path(user_id, tok, slash)))
    link = await recv_json(ws, 10)
    assert link["type"] == "stream_link", link
    return ws, link


class Member:
    """A joined listener."""

    def __init__(self, ws, user_id, state, history):
        self.ws = ws
        self.user_id = user_id
        self.state = state
        self.history = history


def player_node(srv):
    """The node listeners and players (WHEP, `/listen/`, `/hls/`) use: the server itself, or
    across the cascade (conftest's AIRWAVE_E2E_LISTENERS_ON_EDGE) its edge."""
    return getattr(srv, "listener_node", srv)


async def join(srv, event_id, user_id=None, verified=False, username=None, tok=None, slash=True):
    """Joins as a listener; checks that stream_state then chat_history come first."""
    user_id = user_id or uid("lis")
    if verified and tok is None:
        tok = token(user_id)
    ws = await connect(player_node(srv).ws(join_path(event_id, user_id, tok, username, slash)))
    state = await recv_json(ws, 10)
    assert state["type"] == "stream_state", state
    history = await recv_json(ws, 10)
    assert history["type"] == "chat_history", history
    return Member(ws, user_id, state, history)


async def wait_list(ws, pred, timeout=DEFAULT_TIMEOUT):
    """Waits for a participant_list that satisfies `pred`."""
    msg, _ = await recv_until(ws, "participant_list", timeout, pred=pred)
    return msg


def roles(plist) -> dict:
    return {p["user_id"]: p["role"] for p in plist["participants"]}


async def close_all(*sockets):
    for ws in sockets:
        if ws is None:
            continue
        ws = getattr(ws, "ws", ws)
        try:
            await asyncio.wait_for(ws.close(), 6)
        except Exception:
            pass


# ---------------------------------------------------------------------------- HTTP helpers
def http_get(srv, path, timeout=10.0):
    """GET `path`; returns (status, headers dict lower-case, body bytes)."""
    conn = http.client.HTTPConnection(getattr(srv, "address", "127.0.0.1"), srv.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def http_json(srv, path, expect_status=200):
    status, headers, body = http_get(srv, path)
    assert status == expect_status, f"GET {path}: expected {expect_status}, got {status}: {body[:300]!r}"
    assert "application/json" in headers.get("content-type", ""), headers
    return json.loads(body)


def metrics(srv) -> dict:
    """Parses /metrics into {(name, labels-string): value}."""
    status, _, body = http_get(srv, "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def metric_sum(parsed: dict, name: str, label_filter: str = "") -> float:
    return sum(v for (n, labels), v in parsed.items() if n == name and label_filter in labels)


def parse_iso(text: str) -> dt.datetime:
    assert isinstance(text, str) and ISO_RE.match(text), f"not an ISO 8601 UTC timestamp: {text!r}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(coro, timeout=120):
    """Runs one test coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
