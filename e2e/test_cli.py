"""PROTOCOL.md section 7: the command line, configuration errors, shutdown and restart."""

import asyncio
import os
import signal
import socket
import tempfile
import time

import jwt
import pytest

from awtest import (SECRET, close_all, connect, drain_until_close, go_live, http_get, http_json, join, recv_json,
                    recv_until, run, send, token, uid, host_path)
from conftest import make_server, run_cli


def stderr_lines(text):
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, f"exit status {proc.returncode}, stderr: {proc.stderr!r}"
    lines = stderr_lines(proc.stderr)
    assert len(lines) == 1, f"a configuration error must be exactly one line on stderr, got {len(lines)}: {lines}"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]
    assert proc.stdout.strip() == "", proc.stdout


# ---------------------------------------------------------------------------- airwave token
def test_token_command_verifies_with_pyjwt():
    user = uid("tok")
    p = run_cli(["token", "--user-id", user, "--username", "Tok User", "--jwt-secret", SECRET])
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    assert tok.count(".") == 2 and "\n" not in tok
    claims = jwt.decode(tok, SECRET, algorithms=["HS256"])
    assert claims["user_id"] == user
    assert claims["username"] == "Tok User"
    now = time.time()
    assert now + 3500 < claims["exp"] <= now + 3700
    assert jwt.get_unverified_header(tok)["alg"] == "HS256"


def test_token_command_ttl_issuer_audience():
    p = run_cli(["token", "--user-id", "u1", "--ttl", "60", "--jwt-secret", SECRET,
                 "--jwt-issuer", "iss-x", "--jwt-audience", "aud-y"])
    assert p.returncode == 0, p.stderr
    claims = jwt.decode(p.stdout.strip(), SECRET, algorithms=["HS256"], audience="aud-y", issuer="iss-x")
    assert 50 <= claims["exp"] - time.time() <= 70


def test_token_command_output_accepted_by_server(server):
    async def main():
        user = uid("cli")
        p = run_cli(["token", "--user-id", user, "--username", "From CLI", "--jwt-secret", SECRET])
        ws = await connect(server.ws(host_path(user, p.stdout.strip())))
        link = await recv_json(ws)
        assert link["type"] == "stream_link"
        m = await join(server, link["event_id"])
        assert m.state["host"]["username"] == "From CLI"
        await close_all(m, ws)
    run(main())


def test_token_command_errors():
    p = run_cli(["token", "--user-id", "u1", "--jwt-secret", "short"])
    assert_one_line_error(p)
    p = run_cli(["token", "--user-id", "u1", "--ttl", "0", "--jwt-secret", SECRET])
    assert_one_line_error(p, "ttl")


# ---------------------------------------------------------------------------- configuration errors
def test_short_jwt_secret_exit_2_one_line(tmp_path):
    data = str(tmp_path)
    p = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", "too-short"])
    assert_one_line_error(p, "32")


def test_unknown_flag_exit_2(tmp_path):
    data = str(tmp_path)
    p = run_cli(["serve", "--port", "0", "--data-dir", data, "--no-such-flag"])
    assert_one_line_error(p, "no-such-flag")


def test_bad_flag_values_exit_2(tmp_path):
    data = str(tmp_path)
    for args in (["--port", "notaport"], ["--port", "70000"], ["--host-grace", "-1"],
                 ["--jwt-public-key", os.path.join(data, "missing.pem")]):
        p = run_cli(["serve", "--data-dir", data, "--jwt-secret", SECRET, *args] +
                    ([] if "--port" in args else ["--port", "0"]))
        assert_one_line_error(p)


def test_bad_tuning_variable_exit_2(tmp_path):
    data = str(tmp_path)
    p = run_cli(["serve", "--port", "0", "--data-dir", data, "--jwt-secret", SECRET],
                env={"AIRWAVE_CHAT_RATE": "-3"})
    assert_one_line_error(p, "chat")


def test_port_in_use_exit_2_one_line(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        data = str(tmp_path)
        p = run_cli(["serve", "--port", str(port), "--data-dir", data, "--jwt-secret", SECRET], timeout=30)
        assert_one_line_error(p, str(port))
        assert "in use" in p.stderr
    finally:
        sock.close()


def test_webrtc_settings_errors_exit_2_one_line(tmp_path):
    data = str(tmp_path)
    base = ["serve", "--port", "0", "--data-dir", data, "--jwt-secret", SECRET]
    assert_one_line_error(run_cli(base + ["--webrtc-port", "70000"], timeout=30), "--webrtc-port")
    assert_one_line_error(run_cli(base + ["--webrtc-announce", "example.com"], timeout=30), "--webrtc-announce")
    assert_one_line_error(run_cli(base + ["--webrtc-max-sessions", "0"], timeout=30), "--webrtc-max-sessions")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        port = udp.getsockname()[1]
        p = run_cli(base + ["--webrtc-port", str(port)], timeout=30)
        assert_one_line_error(p, f"UDP port {port}", "in use")
    finally:
        udp.close()


# ---------------------------------------------------------------------------- environment variables
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_env_port_used_when_no_flag(start_server):
    port = free_port()
    srv = start_server(env={"AIRWAVE_PORT": str(port)}, port_flag=None)
    assert srv.port == port
    assert http_get(srv, "/healthz")[0] == 200


def test_port_flag_beats_env(start_server):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        srv = start_server(env={"AIRWAVE_PORT": str(taken)}, port_flag="0")
        assert srv.port != taken
        assert http_get(srv, "/healthz")[0] == 200
    finally:
        blocker.close()


def test_env_jwt_secret_used_when_no_flag(start_server):
    other = "env-secret-0123456789-0123456789-abcdef"
    srv = start_server(env={"AIRWAVE_JWT_SECRET": other}, secret=None)

    async def main():
        user = uid("env")
        ws, link = await go_live(srv, user, tok=token(user, secret=other))
        await close_all(ws)
        from awtest import expect_refusal
        await expect_refusal(srv.ws(host_path(user, token(user, secret=SECRET))), "unauthorized", 4401)
    run(main())


def test_jwt_secret_flag_beats_env(start_server):
    srv = start_server(env={"AIRWAVE_JWT_SECRET": "env-secret-0123456789-0123456789-abcdef"})  # flag: SECRET

    async def main():
        ws, link = await go_live(srv)  # signed with SECRET
        await close_all(ws)
    run(main())


# ---------------------------------------------------------------------------- shutdown
def test_sigterm_tells_everyone_and_exits_0(start_server):
    srv = start_server()

    async def main():
        ws, link = await go_live(srv)
        a = await join(srv, link["event_id"])
        b = await join(srv, link["event_id"], verified=True)
        d = await connect(srv.ws("/ws/active-streams/"))
        await recv_json(d)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for conn in (ws, a.ws, b.ws, d):
            frames, code = await drain_until_close(conn, timeout=10)
            types = [f.get("type") for f in frames if isinstance(f, dict)]
            assert "server_shutdown" in types, f"no server_shutdown, got {frames}, close {code}"
            assert types[-1] == "server_shutdown", f"server_shutdown must be the last frame: {types}"
        deadline = t0 + 10
        rc = await asyncio.get_running_loop().run_in_executor(None, lambda: srv.proc.wait(max(0.1, deadline - time.monotonic())))
        assert rc == 0, f"exit status {rc}\n{srv.stderr}"
        assert time.monotonic() - t0 < 10
    run(main())


def test_sigint_exits_0(start_server):
    srv = start_server()
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(10) == 0, srv.stderr


def test_restart_after_sigkill_keeps_chat_and_ends_event(start_server, tmp_path):
    data = str(tmp_path)
    srv = start_server(data_dir=data)
    received = []

    async def main():
        ws, link = await go_live(srv)
        a = await join(srv, link["event_id"])
        for i in range(20):
            await send(a.ws if i % 2 else ws, {"type": "broadcast_message", "message": f"durable {i}"})
        # Kill as soon as the first half has been seen; the rest may or may not have been stored.
        while len(received) < 10:
            msg, _ = await recv_until(a.ws, "message_broadcast", timeout=10)
            received.append(msg["message"])
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        # Whatever else a client saw before the socket died counts too.
        try:
            while True:
                msg = await recv_json(a.ws, 1)
                if msg["type"] == "message_broadcast":
                    received.append(msg["message"])
        except Exception:
            pass
        return link["event_id"]

    event_id = run(main())
    srv2 = start_server(data_dir=data)
    stored = http_json(srv2, f"/api/streams/{event_id}/chat?limit=500")["messages"]
    texts = [m["message"] for m in stored]
    missing = [t for t in received if t not in texts]
    assert not missing, f"messages clients saw but the store lost: {missing}"
    # Stored in the order clients saw them.
    assert [t for t in texts if t in received] == received, (texts, received)
    info = http_json(srv2, f"/api/streams/{event_id}")
    assert info["status"] == "ended", info
    assert event_id not in [s["event_id"] for s in http_json(srv2, "/api/streams")["streams"]]

    async def after():
        from awtest import expect_refusal, join_path
        await expect_refusal(srv2.ws(join_path(event_id, uid("late"))), "event_ended", 4410)
    run(after())
