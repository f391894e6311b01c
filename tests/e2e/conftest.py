"""Harness for Airwave's end-to-end tests: starts the real `airwave serve` binary on a
free port of 127.0.0.1 and stops it again (SIGTERM, then SIGKILL after 10 s).

Fixtures
  server          one shared server per test module (fast notices, generous chat rate)
  start_server    factory for servers with their own flags/env, stopped after the test
Every server's stderr is captured and attached to the report of a failing test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import awtest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AIRWAVE_BIN = os.environ.get("AIRWAVE_BIN", os.path.join(ROOT, ".build", "debug", "airwave"))

_running: list["ServerProcess"] = []


def wait_for_binary(timeout: float = 180.0) -> str:
    """The binary is rebuilt from time to time: wait (bounded) until it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(AIRWAVE_BIN) and os.access(AIRWAVE_BIN, os.X_OK):
            return AIRWAVE_BIN
        time.sleep(0.5)
    pytest.fail(f"airwave binary not found at {AIRWAVE_BIN} (set AIRWAVE_BIN)")


def run_cli(args, env=None, timeout=60.0, cwd=None):
    """Runs `airwave ARGS` to completion; returns CompletedProcess (text mode)."""
    binary = wait_for_binary()
    full_env = base_env()
    if env:
        full_env.update(env)
    for attempt in range(3):
        try:
            return subprocess.run([binary, *args], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except (FileNotFoundError, PermissionError, OSError):
            # Replaced while we tried to execute it: wait and retry.
            if attempt == 2:
                raise
            time.sleep(2)
            wait_for_binary()


def base_env() -> dict:
    """The process environment without any AIRWAVE_ variable of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWAVE_")}
    return env


class ServerProcess:
    """One running `airwave serve`."""

    def __init__(self, args, env, data_dir, secret, port_flag="0", startup_timeout=30.0, wait=True):
        self.data_dir = data_dir
        self.secret = secret
        self.args = list(args)
        self.env = dict(env or {})
        self.port_flag = port_flag
        self.lines: list[str] = []
        self.port: int | None = None
        self._serving = threading.Event()
        self._lock = threading.Lock()
        self.returncode: int | None = None
        self._start(startup_timeout, wait)

    # -- life cycle ---------------------------------------------------------------
    def _start(self, startup_timeout, wait):
        binary = wait_for_binary()
        cmd = [binary, "serve", "--data-dir", self.data_dir]
        if self.port_flag is not None:
            cmd += ["--port", str(self.port_flag)]
        if self.secret is not None:
            cmd += ["--jwt-secret", self.secret]
        cmd += self.args
        env = base_env()
        env.update(self.env)
        self.cmd = cmd
        for attempt in range(3):
            try:
                self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True, errors="replace")
                break
            except OSError:
                if attempt == 2:
                    raise
                time.sleep(2)
                wait_for_binary()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        _running.append(self)
        if wait:
            self.wait_serving(startup_timeout)

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
            if self.port is None and "serving" in line and "address=http://" in line:
                try:
                    addr = line.split("address=http://", 1)[1].split()[0]
                    self.port = int(addr.rsplit(":", 1)[1])
                    self._serving.set()
                except (IndexError, ValueError):
                    pass
        self._serving.set()

    def wait_serving(self, timeout=30.0):
        self._serving.wait(timeout)
        if self.port is None:
            self.stop()
            pytest.fail(f"airwave did not report 'serving' within {timeout} s; cmd={self.cmd}\nstderr:\n{self.stderr}")

    @property
    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout=10.0) -> int:
        """SIGTERM, wait up to `timeout`; returns the exit status (None if still running)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait(10)
        self._reader.join(5)

    def stop(self):
        if self.proc.poll() is None:
            if self.terminate(10.0) is None:
                self.kill()
        if self in _running:
            _running.remove(self)

    # -- addresses ----------------------------------------------------------------
    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def make_server(args=(), env=None, data_dir=None, secret=awtest.SECRET, port_flag="0", wait=True, startup_timeout=30.0):
    owned = data_dir is None
    if owned:
        data_dir = tempfile.mkdtemp(prefix="airwave-e2e-")
    srv = ServerProcess(args, env, data_dir, secret, port_flag=port_flag, wait=wait, startup_timeout=startup_timeout)
    srv.owns_data_dir = owned
    return srv


# Lines a server must never log, in any test: they mean a bug even when the test passed.
FORBIDDEN_LOG_LINES = ("Cannot schedule tasks on an EventLoop that has already shut down",)


def check_logs(servers):
    for srv in servers:
        for line in FORBIDDEN_LOG_LINES:
            assert line not in srv.stderr, f"server on port {srv.port} logged: {line}"


def remove_data_dirs(servers):
    for srv in servers:
        if getattr(srv, "owns_data_dir", False):
            shutil.rmtree(srv.data_dir, ignore_errors=True)


# Settings of the shared server: notices coalesced every 200 ms (fast tests) and a chat
# rate that lets one test send a hundred messages quickly.
SHARED_ENV = {
    "AIRWAVE_NOTICE_INTERVAL_MS": "200",
    "AIRWAVE_CHAT_RATE": "500",
    "AIRWAVE_CHAT_BURST": "500",
}


@pytest.fixture(scope="module")
def server():
    srv = make_server(env=SHARED_ENV)
    yield srv
    srv.stop()
    remove_data_dirs([srv])
    check_logs([srv])


@pytest.fixture
def start_server():
    started = []

    def factory(*args, env=None, data_dir=None, secret=awtest.SECRET, port_flag="0", wait=True, startup_timeout=30.0):
        srv = make_server(args=args, env=env, data_dir=data_dir, secret=secret, port_flag=port_flag, wait=wait,
                          startup_timeout=startup_timeout)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()
    remove_data_dirs(started)
    check_logs(started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, srv in enumerate(list(_running)):
            tail = "\n".join(srv.lines[-150:])
            report.sections.append((f"airwave server {i} stderr (port {srv.port})", tail))
