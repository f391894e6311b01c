"""The web client is served at / from the folder --web-dir names (or the one found next to the
binary / in the source tree), with the right Content-Types and never a file outside it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import AIRWAVE_BIN, ROOT, Server, awtest


def get(srv, path):
    """GET over a raw socket, so the path reaches the server exactly as written (no client
    normalisation of `..`). Returns (status, headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if headers.get("transfer-encoding") == "chunked":
        decoded, rest = b"", body
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        body = decoded
    return status, headers, body


def test_pages_and_modules_have_their_content_types(server):
    status, headers, body = get(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<title>Airwave</title>" in body
    for path, kind in [("/host.html", "text/html"), ("/listen.html", "text/html"), ("/room.html", "text/html"),
                       ("/js/protocol.js", "text/javascript"), ("/js/audio-worklets.js", "text/javascript"),
                       ("/css/style.css", "text/css")]:
        status, headers, body = get(server, path)
        assert status == 200, path
        assert headers["content-type"].startswith(kind), (path, headers["content-type"])
        assert body == open(os.path.join(ROOT, "Web", path.lstrip("/")), "rb").read(), path
    # The API and the WebSocket routes are untouched by the file server.
    assert get(server, "/healthz")[0] == 200
    assert get(server, "/no-such-file.js")[0] == 404
    assert "web client" in server.stderr


@pytest.fixture
def jail():
    """A web folder with a secret file beside it (one level up) that must never be served."""
    top = tempfile.mkdtemp(prefix="airwave-jail-")
    web = os.path.join(top, "web")
    os.makedirs(os.path.join(web, "js"))
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>jail</title>")
    with open(os.path.join(web, "js", "app.js"), "w") as f:
        f.write("export const ok = 1;\n")
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write("TOP-SECRET-BESIDE-THE-WEB-FOLDER")
    yield top, web
    shutil.rmtree(top, ignore_errors=True)


def test_no_path_leaves_the_web_folder(start_server, jail):
    top, web = jail
    srv = start_server("--web-dir", web)
    assert get(srv, "/js/app.js")[0] == 200
    attempts = [
        "/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/js/..%2F..%2Fsecret.txt", "/.%2e/secret.txt",
        "/..", "/../", "//../secret.txt", "/" + top.lstrip("/") + "/secret.txt", "/js/..", "/%00/../secret.txt",
    ]
    for path in attempts:
        status, _, body = get(srv, path)
        assert status in (301, 400, 404), (path, status)
        assert b"TOP-SECRET" not in body, path
    assert srv.proc.poll() is None, "a traversal attempt must not stop the server"
    assert get(srv, "/")[0] == 200


def test_odd_paths_are_refused_not_served_or_redirected(start_server, jail):
    """PROTOCOL.md 10 / issue 13: `/index.html%00.js` was served as JavaScript and `/%2fjs`
    redirected to `//js/` (another host, for a browser)."""
    _, web = jail
    srv = start_server("--web-dir", web)
    for path in ["/index.html%00.js", "/js/app.js%00.html", "/%2fjs", "/%2Fjs/", "//js", "//js/", "/js%2fapp.js",
                 "/js%5capp.js", "/js\\app.js", "/./js/app.js", "/js/./app.js", "/js//app.js", "/%09js/app.js"]:
        status, headers, body = get(srv, path)
        assert status == 400, (path, status, headers)
        assert "location" not in headers, path
        assert b"export const ok" not in body and b"<title>jail" not in body, path
        assert b"bad_request" in body, path
    # Ordinary paths still work, directories still redirect to their slash form on the same host.
    assert get(srv, "/js/app.js")[0] == 200
    status, headers, _ = get(srv, "/js")
    assert status in (301, 404)
    assert not headers.get("location", "/").startswith("//")
    assert get(srv, "/")[0] == 200


def test_web_dir_none_answers_404_with_a_hint(start_server):
    srv = start_server("--web-dir", "none")
    status, _, body = get(srv, "/")
    assert status == 404 and b"--web-dir" in body
    assert get(srv, "/index.html")[0] == 404
    assert "no web client folder found" in srv.stderr


def test_missing_web_dir_is_a_configuration_error(tmp_path):
    result = subprocess.run([AIRWAVE_BIN, "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
                             "--jwt-secret", awtest.SECRET, "--web-dir", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--web-dir" in lines[0], result.stderr


def test_web_dir_from_environment(start_server, jail):
    _, web = jail
    srv = start_server(env={"AIRWAVE_WEB_DIR": web})
    status, _, body = get(srv, "/")
    assert status == 200 and b"<title>jail</title>" in body


def test_moved_binary_finds_web_next_to_it(tmp_path):
    """A binary copied elsewhere serves the Web/ folder beside it, and never crashes."""
    bin_dir = tmp_path / "bin"
    (bin_dir / "Web").mkdir(parents=True)
    shutil.copy2(AIRWAVE_BIN, bin_dir / "airwave")
    (bin_dir / "Web" / "index.html").write_text("<!doctype html><title>beside the binary</title>")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    srv = Server(binary=str(bin_dir / "airwave"), cwd=str(cwd))
    try:
        status, _, body = get(srv, "/")
        assert status == 200 and b"beside the binary" in body
    finally:
        srv.stop()
