"""The load generator's own correctness (issue 5): run `airwave-bench` briefly against a real
server it starts itself and check that what it reports agrees with itself and with the
server's /metrics; its idle mode and its options for servers that are not Airwave.

The bench binary comes from AIRWAVE_BENCH_BIN (default: `airwave-bench` next to AIRWAVE_BIN),
the server from AIRWAVE_BIN (as in conftest.py). The comparison harness and the Django relay
are tested in test_bench_compare.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import AIRWAVE_BIN, base_env, wait_for_binary

AIRWAVE_BENCH_BIN = os.environ.get("AIRWAVE_BENCH_BIN", os.path.join(os.path.dirname(AIRWAVE_BIN), "airwave-bench"))
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "media", "speech.opus-packets")

LISTENERS = 50
SPEAKERS = 2
RATE = 50
DURATION = 3


def bench_binary() -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if os.path.isfile(AIRWAVE_BENCH_BIN) and os.access(AIRWAVE_BENCH_BIN, os.X_OK):
            return AIRWAVE_BENCH_BIN
        time.sleep(0.5)
    pytest.fail(f"airwave-bench not found at {AIRWAVE_BENCH_BIN} (set AIRWAVE_BENCH_BIN)")


def run_bench(*extra, timeout=120):
    server = wait_for_binary()
    cmd = [bench_binary(), "--server-binary", server, "--fixture", os.path.abspath(FIXTURE),
           "--listeners", str(LISTENERS), "--speakers", str(SPEAKERS), "--rate", str(RATE),
           "--duration", str(DURATION), "--connect-rate", "500", *extra]
    return subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report():
    proc = run_bench("--json")
    assert proc.returncode == 0, f"bench exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_every_listener_joins(report):
    assert report["connect"]["listeners_connected"] == LISTENERS, report["connect"]
    assert report["connect"]["listeners_failed"] == 0
    assert report["errors"] == []


def test_speakers_send_at_the_rate(report):
    frames = report["frames"]
    assert len(frames["sent_per_speaker"]) == SPEAKERS
    assert frames["sent_per_speaker"] == [RATE * DURATION] * SPEAKERS
    assert frames["sent_total"] == RATE * DURATION * SPEAKERS


def test_delivery_and_counts_agree(report):
    frames = report["frames"]
    sent = frames["sent_total"]
    listeners = report["connect"]["listeners_connected"]
    assert frames["expected_per_listener"] == sent
    assert frames["listeners_expected"] == sent * listeners
    assert frames["delivery_ratio"] >= 0.99, frames
    # What the listeners received is what was sent times the listeners, up to the last
    # frames in flight when the bench stopped waiting.
    tolerance = SPEAKERS * 2 * listeners
    assert abs(frames["listeners_received"] - sent * listeners) <= tolerance, frames
    assert frames["listeners_received"] <= sent * listeners
    # Each speaker hears every other speaker; nobody hears themselves.
    assert frames["speakers_expected"] == sum(sent - s for s in frames["sent_per_speaker"])
    assert abs(frames["speakers_received"] - frames["speakers_expected"]) <= SPEAKERS * 2
    assert frames["received_total"] == frames["listeners_received"] + frames["speakers_received"]
    assert frames["gaps"] == 0 and frames["reordered"] == 0 and frames["unmatched"] == 0 and frames["bad_frames"] == 0
    assert frames["source_id_mismatches"] == 0


def test_server_metrics_match_the_bench(report):
    server = report["server"]
    frames = report["frames"]
    assert server["metrics_available"]
    # Every frame goes to every connection of the event but its sender.
    connections = report["connect"]["listeners_connected"] + SPEAKERS
    should_forward = sum(s * (connections - 1) for s in frames["sent_per_speaker"])
    assert server["forwarded_expected"] == should_forward
    assert server["forwarded_audio_delta"] == should_forward, server
    assert server["frames_in_opus_delta"] == frames["sent_total"]
    assert server["frames_dropped_delta"] == 0
    # The server forwarded exactly what the bench's connections counted.
    assert abs(server["forwarded_audio_delta"] - frames["received_total"]) <= tolerance_in_flight(report), (server, frames)


def tolerance_in_flight(report):
    return SPEAKERS * 2 * (report["connect"]["listeners_connected"] + SPEAKERS)


def test_latency_and_server_numbers_are_sane(report):
    lat = report["latency_listeners"]
    assert lat["samples"] == report["frames"]["listeners_received"]
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["p999_ms"] <= lat["max_ms"]
    assert lat["max_ms"] < 5000
    server = report["server"]
    assert server["window_s"] >= DURATION
    assert server["cpu_seconds"] > 0
    assert server["rss_kib_idle"] > 0 and server["rss_kib_joined"] > 0


def test_human_readable_table():
    proc = run_bench("--listeners", "10", "--speakers", "1", "--duration", "1")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    for word in ("delivery", "p50", "p90", "p99", "p99.9", "max", "server CPU", "server RSS", "forwarded audio"):
        assert word in out, out


def test_bad_arguments_exit_nonzero():
    proc = subprocess.run([bench_binary(), "--listeners", "5"], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "--server-binary" in proc.stderr


def test_idle_mode_measures_memory_without_media():
    proc = run_bench("--listeners", "20", "--speakers", "1", "--idle", "--settle", "0.5", "--json")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["config"]["idle"] is True
    assert report["connect"]["listeners_connected"] == 20
    assert report["frames"]["sent_total"] == 0 and report["frames"]["listeners_received"] == 0
    assert report["latency_listeners"]["samples"] == 0
    server = report["server"]
    assert server["rss_kib_joined"] > server["rss_kib_idle"] > 0
    assert server["rss_kib_per_listener"] == round((server["rss_kib_joined"] - server["rss_kib_idle"]) / 20, 3)
    # Nothing was spoken, so the server forwarded nothing.
    assert server["metrics_available"] and server["forwarded_audio_delta"] == 0
    assert report["errors"] == []


def test_no_metrics_skips_the_cross_check():
    proc = run_bench("--listeners", "5", "--speakers", "1", "--duration", "1", "--no-metrics", "--json")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["config"]["metrics_read"] is False
    assert report["server"]["metrics_available"] is False
    assert report["errors"] == []
    assert report["frames"]["delivery_ratio"] >= 0.99


def test_no_tokens_is_refused_by_airwave():
    # Airwave checks the host's token, so without minting the host cannot go live: the bench
    # says so and exits non-zero (the Django relay, which ignores tokens, is the other case).
    proc = run_bench("--listeners", "1", "--speakers", "1", "--duration", "1", "--no-tokens")
    assert proc.returncode != 0
    assert "host could not go live" in proc.stderr, proc.stderr


def test_compare_whep_measures_both_transports_in_one_run():
    # A small run of the WHEP comparison (docs/performance.md): the mix reaches 10 WebSocket
    # listeners and then 10 WHEP listeners (ICE, DTLS, SRTP over 127.0.0.1) from one server.
    cmd = [bench_binary(), "--server-binary", wait_for_binary(), "--fixture", os.path.abspath(FIXTURE), "--compare-whep",
           "--listeners", "10", "--duration", "2", "--baseline", "1", "--settle", "1", "--json"]
    proc = subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    phases = {p["phase"]: p for p in report["phases"]}
    assert set(phases) == {"baseline", "ws", "whep"}, list(phases)
    for name in ("ws", "whep"):
        phase = phases[name]
        assert phase["listeners_connected"] == 10 and phase["listeners_receiving"] == 10, phase
        assert phase["delivery_ratio_by_sequence"] >= 0.99 and phase["gaps"] == 0, phase
        assert phase["server_cpu_us_per_packet"] > 0, phase
    whep = phases["whep"]["whep"]
    assert whep["decrypt_failures"] == 0 and whep["wrong_payload_type"] == 0, whep
    assert whep["checks_answered"] > 0
    assert phases["whep"]["teardown"].get("200") == 10, phases["whep"]["teardown"]
    assert report["whep_over_ws_cpu_per_packet"] > 0
    assert report["errors"] == []
