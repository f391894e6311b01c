"""Harness for the browser tests: a real `airwave serve`, Debian's Chromium driven by Playwright
(never Playwright's own browser download), fake microphones that play tone WAVs made here, and
screenshots saved to e2e-browser/artifacts/.

The tests must run in a network namespace with only loopback: start them with e2e-browser/run.

Fixtures
  server        one server for the module (fast notices), serving the web client from Web/
  start_server  factory for servers with their own flags, stopped after the test
  launch        factory for Chromium processes: launch(tone_hz=440) gives that browser a
                microphone playing a 440 Hz tone (a fake capture file is per process)
  shot          shot(page, "name") saves artifacts/name.png
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import sys
import tempfile
import wave

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import awtest  # noqa: E402  (tokens and the shared secret of the e2e tests)
import airwave_server  # noqa: E402  (the server launcher of both suites)
from airwave_server import AIRWAVE_BIN, ROOT  # noqa: E402,F401  (test modules import these from here)

CHROMIUM = os.environ.get("AIRWAVE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.path.join(HERE, "artifacts")
SAMPLE_RATE = 48000


def pytest_configure(config):
    # /proc/net/dev belongs to the current network namespace (/sys/class/net may not).
    with open("/proc/net/dev") as f:
        interfaces = sorted(line.split(":", 1)[0].strip() for line in f.readlines()[2:])
    if interfaces != ["lo"]:
        pytest.exit(f"the browser tests run in a network namespace with only loopback (found {interfaces}): "
                    "start them with e2e-browser/run", returncode=2)


# ---------------------------------------------------------------------------- server
class Server(airwave_server.ServerProcess):
    """One running `airwave serve --port 0` (airwave_server.py) with a data folder of its own,
    removed when it stops. `binary` and `cwd` run another copy of the server from elsewhere."""

    def __init__(self, args=(), env=None, binary=None, cwd=None):
        super().__init__(args, env, tempfile.mkdtemp(prefix="airwave-browser-"), awtest.SECRET, binary=binary, cwd=cwd,
                         owns_data_dir=True)

    def stop(self):
        super().stop()
        airwave_server.remove_data_dirs([self])


# Settings of the module's server: notices and the live directory pushed every 200 ms.
SHARED_ENV = {"AIRWAVE_NOTICE_INTERVAL_MS": "200", "AIRWAVE_DIRECTORY_INTERVAL_MS": "200"}


@pytest.fixture(scope="module")
def server():
    srv = Server(env=SHARED_ENV)
    yield srv
    airwave_server.stop_all([srv])


@pytest.fixture
def start_server():
    started = []

    def factory(*args, env=None):
        srv = Server(args, env)
        started.append(srv)
        return srv

    yield factory
    airwave_server.stop_all(started)


# ---------------------------------------------------------------------------- media files
def write_tone(path, frequency, seconds=4.0, amplitude=0.4):
    """A mono 16-bit 48 kHz sine; a whole number of cycles, so Chromium's looping is seamless."""
    frames = int(SAMPLE_RATE * seconds)
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)))
                                 for i in range(frames)))


@pytest.fixture(scope="session")
def media_dir():
    folder = tempfile.mkdtemp(prefix="airwave-tones-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------- browsers
@pytest.fixture(scope="session")
def playwright():
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: tools/setup --tests installs Debian's chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch(playwright, media_dir):
    browsers = []

    def factory(tone_hz=None):
        args = [
            "--use-fake-ui-for-media-stream",          # grant microphone and screen without a prompt
            "--use-fake-device-for-media-stream",      # fake camera/screen pictures
            "--autoplay-policy=no-user-gesture-required",
            "--auto-select-desktop-capture-source=Entire screen",
            "--allow-loopback-in-peer-connection",     # WebRTC candidates on 127.0.0.1 (the only address here)
        ]
        if tone_hz is not None:
            path = os.path.join(media_dir, f"tone-{tone_hz}.wav")
            if not os.path.exists(path):
                write_tone(path, tone_hz)
            args.append(f"--use-file-for-fake-audio-capture={path}")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        browsers.append(browser)
        return browser

    yield factory
    for browser in browsers:
        browser.close()


def new_page(browser, logs=None):
    """A page in its own context (own storage), 1280×800, console errors collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20000)
    if logs is not None:
        page.on("console", lambda m: logs.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: logs.append(f"[pageerror] {e}"))
    return page


@pytest.fixture
def shot():
    os.makedirs(ARTIFACTS, exist_ok=True)

    def save(page, name):
        page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"))

    return save


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    airwave_server.attach_stderr(outcome.get_result())
