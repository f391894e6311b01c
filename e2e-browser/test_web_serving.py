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


# What the server answers each traversal attempt, exactly. Three answers are possible:
# GUARD    400 with `bad_request` from WebPathGuard (an encoded slash, backslash or NUL, a control
#          character, an empty, `.` or `..` segment, or a path that does not percent-decode);
# FILES    400 with no body from Hummingbird's FileMiddleware, which refuses any path containing
#          `..` (reached only when the guard let the path through: `..` inside a longer name);
# MISSING  404: the path is a plain name inside the web folder that does not exist there.
GUARD, FILES, MISSING = "guard", "files", "missing"
# {top} is the folder that holds the web folder and secret.txt (an absolute path, no leading slash).
TRAVERSAL_ATTEMPTS = [
    ("/../secret.txt", GUARD),
    ("/js/../../secret.txt", GUARD),
    ("/js/../../../secret.txt", GUARD),
    ("/js/./../../secret.txt", GUARD),
    ("/../../../../../../../../etc/passwd", GUARD),
    ("/..", GUARD),
    ("/../", GUARD),
    ("/js/..", GUARD),
    ("//../secret.txt", GUARD),
    ("/../secret.txt?x=1", GUARD),
    ("/../{top}/secret.txt", GUARD),
    # Percent-encoded dots and slashes, either case.
    ("/%2e%2e/secret.txt", GUARD),
    ("/%2E%2E%2Fsecret.txt", GUARD),
    ("/.%2e/secret.txt", GUARD),
    ("/js/%2e%2e/%2e%2e/secret.txt", GUARD),
    ("/..%2fsecret.txt", GUARD),
    ("/js/..%2F..%2Fsecret.txt", GUARD),
    ("/%2f..%2fsecret.txt", GUARD),
    # Backslashes, raw and encoded.
    ("/..\\secret.txt", GUARD),
    ("/..%5csecret.txt", GUARD),
    ("/js/..%5c..%5csecret.txt", GUARD),
    # NUL and control characters, overlong UTF-8 and IIS-style %u escapes.
    ("/%00/../secret.txt", GUARD),
    ("/..%00/secret.txt", GUARD),
    ("/..%09/secret.txt", GUARD),
    ("/%c0%ae%c0%ae/secret.txt", GUARD),
    ("/%u002e%u002e/secret.txt", GUARD),
    # `..` inside a longer segment: not a `..` segment, refused by the file server.
    ("/..;/secret.txt", FILES),
    ("/.../secret.txt", FILES),
    # Double encoding stays a literal name (`%2e%2e`), and an absolute path is looked up inside
    # the folder: neither exists there.
    ("/%252e%252e/secret.txt", MISSING),
    ("/{top}/secret.txt", MISSING),
]


def test_no_path_leaves_the_web_folder(start_server, jail):
    """The 30 traversal attempts of docs/security.md, each with the one answer it gets today."""
    top, web = jail
    srv = start_server("--web-dir", web)
    assert get(srv, "/js/app.js")[0] == 200
    assert len(TRAVERSAL_ATTEMPTS) == 30 and len({path for path, _ in TRAVERSAL_ATTEMPTS}) == 30
    answers = {}
    for template, _ in TRAVERSAL_ATTEMPTS:
        path = template.format(top=top.lstrip("/"))
        status, headers, body = get(srv, path)
        assert b"TOP-SECRET" not in body, path
        assert "location" not in headers, (path, headers)
        if status == 400 and b"bad_request" in body:
            answers[template] = GUARD
        elif status == 400 and body == b"":
            answers[template] = FILES
        elif status == 404:
            answers[template] = MISSING
        else:
            answers[template] = (status, body[:200])
    assert answers == dict(TRAVERSAL_ATTEMPTS)
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
    assert (status, headers.get("location")) == (301, "/js/")
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
