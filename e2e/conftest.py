"""Harness for Airwave's end-to-end tests: starts the real `airwave serve` binary on a
free port of 127.0.0.1 and stops it again (SIGTERM, then SIGKILL after 10 s), through
airwave_server.py, which the browser suite uses too.

Fixtures
  server          one shared server per test module (fast notices, generous chat rate)
  start_server    factory for servers with their own flags/env, stopped after the test
Every server's stderr is captured and attached to the report of a failing test; after a test,
its servers' logs are checked for lines that always mean a bug (check_logs).
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import awtest  # noqa: E402
# Test modules import these from conftest.
from airwave_server import (AIRWAVE_BIN, FORBIDDEN_LOG_LINES, ROOT, ServerProcess, attach_stderr,  # noqa: E402,F401
                            base_env, check_logs, make_server, remove_data_dirs, run_cli, stop_all, wait_for_binary)


# Settings of the shared server: notices coalesced every 200 ms (fast tests) and a chat
# rate that lets one test send a hundred messages quickly.
SHARED_ENV = {
    "AIRWAVE_NOTICE_INTERVAL_MS": "200",
    "AIRWAVE_CHAT_RATE": "500",
    "AIRWAVE_CHAT_BURST": "500",
}


# AIRWAVE_E2E_LISTENERS_ON_EDGE=1 (with AIRWAVE_TEST_POSTGRES_URL): the shared server is the origin
# of two nodes on a fresh database, and every listener `awtest.join` connects goes to the other
# node, an edge (PROTOCOL.md 8, issue 16): the live-event suite run across the cascade.
LISTENERS_ON_EDGE = os.environ.get("AIRWAVE_E2E_LISTENERS_ON_EDGE") == "1"


@pytest.fixture(scope="module")
def server():
    if LISTENERS_ON_EDGE:
        yield from _origin_with_an_edge()
        return
    srv = make_server(env=SHARED_ENV)
    yield srv
    stop_all([srv])


def _origin_with_an_edge():
    from test_cluster import CLUSTER_SECRET, free_port
    from test_postgres import URL, fresh_database
    assert URL, "AIRWAVE_E2E_LISTENERS_ON_EDGE needs AIRWAVE_TEST_POSTGRES_URL"
    database = fresh_database(URL)
    nodes = []
    for name in ("origin", "edge"):
        port = free_port()
        nodes.append(make_server(args=("--database", database, "--node-url", f"http://127.0.0.1:{port}", "--cluster-secret",
                                       CLUSTER_SECRET, "--node-id", name), env=SHARED_ENV, port_flag=str(port)))
    origin, edge = nodes
    origin.listener_node = edge
    yield origin
    stop_all(nodes)


@pytest.fixture
def start_server():
    started = []

    def factory(*args, env=None, data_dir=None, secret=awtest.SECRET, port_flag="0", wait=True, startup_timeout=30.0):
        srv = make_server(args=args, env=env, data_dir=data_dir, secret=secret, port_flag=port_flag, wait=wait,
                          startup_timeout=startup_timeout)
        started.append(srv)
        return srv

    yield factory
    stop_all(started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    attach_stderr(outcome.get_result())
