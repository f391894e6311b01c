"""Starts and stops the real `airwave serve` for the Python suites (e2e and e2e-browser
import it): a free port of 127.0.0.1 (`--port 0`, the port read from the "serving" log line), a
temporary data folder, stderr kept for the report of a failing test, SIGTERM then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import awtest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRWAVE_BIN = os.environ.get("AIRWAVE_BIN", os.path.join(ROOT, ".build", "debug", "airwave"))

# Every server started and not yet stopped, oldest first: a failing test's report shows their stderr.
running: list["ServerProcess"] = []

# Lines a server must never log, in any test: they mean a bug even when the test passed.
FORBIDDEN_LOG_LINES = ("Cannot schedule tasks on an EventLoop that has already shut down",)


def wait_for_binary(binary: str | None = None, timeout: float = 180.0) -> str:
    """The binary is rebuilt from time to time: wait (bounded) until it is there."""
    binary = binary or AIRWAVE_BIN
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return binary
        time.sleep(0.5)
    pytest.fail(f"airwave binary not found at {binary} (set AIRWAVE_BIN)")


def base_env() -> dict:
    """The process environment without any AIRWAVE_ variable of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRWAVE_")}


def run_cli(args, env=None, timeout=60.0, cwd=None):
    """Runs `airwave ARGS` to completion; returns CompletedProcess (text mode)."""
    binary = wait_for_binary()
    full_env = base_env()
    if env:
        full_env.update(env)
    for attempt in range(3):
        try:
            return subprocess.run([binary, *args], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except OSError:
            # Replaced while we tried to execute it: wait and retry.
            if attempt == 2:
                raise
            time.sleep(2)
            wait_for_binary()


class ServerProcess:
    """One running `airwave serve`. `binary` and `cwd` default to AIRWAVE_BIN and ours."""

    def __init__(self, args, env, data_dir, secret, port_flag="0", startup_timeout=30.0, wait=True, binary=None,
                 cwd=None, owns_data_dir=False, prefix=(), address="127.0.0.1"):
        self.data_dir = data_dir
        # A folder made for this server alone: `remove_data_dirs` removes it.
        self.owns_data_dir = owns_data_dir
        self.secret = secret
        self.args = list(args)
        self.env = dict(env or {})
        self.port_flag = port_flag
        self.binary = binary
        self.cwd = cwd
        # A command the server runs under (e.g. `ip netns exec NS`), and where clients reach it.
        self.prefix = list(prefix)
        self.address = address
        self.lines: list[str] = []
        self.port: int | None = None
        self._serving = threading.Event()
        self._lock = threading.Lock()
        self.returncode: int | None = None
        self._start(startup_timeout, wait)

    # -- life cycle ---------------------------------------------------------------
    def _start(self, startup_timeout, wait):
        binary = wait_for_binary(self.binary)
        cmd = [*self.prefix, binary, "serve", "--data-dir", self.data_dir]
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
                                             stderr=subprocess.PIPE, text=True, errors="replace", cwd=self.cwd)
                break
            except OSError:
                if attempt == 2:
                    raise
                time.sleep(2)
                wait_for_binary(self.binary)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        running.append(self)
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

    def terminate(self, timeout=10.0) -> int | None:
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
        """Stops the process (SIGTERM, SIGKILL after 10 s); the data folder stays (a test may
        start another server on it): `remove_data_dirs` removes it."""
        if self.proc.poll() is None:
            if self.terminate(10.0) is None:
                self.kill()
        if self in running:
            running.remove(self)

    # -- addresses ----------------------------------------------------------------
    @property
    def http(self) -> str:
        return f"http://{self.address}:{self.port}"

    def ws(self, path: str) -> str:
        return f"ws://{self.address}:{self.port}{path}"


def make_server(args=(), env=None, data_dir=None, secret=awtest.SECRET, port_flag="0", wait=True, startup_timeout=30.0,
                binary=None, cwd=None, prefix="airwave-e2e-", command_prefix=(), address="127.0.0.1"):
    """A started server (with the tests' JWT secret unless told otherwise); without `data_dir` it
    gets a new temporary folder that it owns."""
    owned = data_dir is None
    if owned:
        data_dir = tempfile.mkdtemp(prefix=prefix)
    return ServerProcess(args, env, data_dir, secret, port_flag=port_flag, wait=wait, startup_timeout=startup_timeout,
                         binary=binary, cwd=cwd, owns_data_dir=owned, prefix=command_prefix, address=address)


def check_logs(servers):
    for srv in servers:
        for line in FORBIDDEN_LOG_LINES:
            if line in srv.stderr:
                at = srv.stderr.index(line)
                context = srv.stderr[max(0, at - 3000):at + 12000]
                raise AssertionError(f"server on port {srv.port} logged: {line}\n--- its log around it ---\n{context}")


def remove_data_dirs(servers):
    for srv in servers:
        if srv.owns_data_dir:
            shutil.rmtree(srv.data_dir, ignore_errors=True)


def stop_all(servers):
    """Teardown of a fixture's servers: stop each, remove the folders they own, check their logs."""
    for srv in servers:
        srv.stop()
    remove_data_dirs(servers)
    check_logs(servers)


def attach_stderr(report, lines=150):
    """Adds the stderr of every running server to a failing test's report."""
    if report.failed:
        for i, srv in enumerate(list(running)):
            report.sections.append((f"airwave server {i} stderr (port {srv.port})", "\n".join(srv.lines[-lines:])))
