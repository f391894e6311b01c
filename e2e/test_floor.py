"""tools/bench/floor: the kernel-floor program builds, writes exactly what it says, and reports it."""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loopback_floor_counts_every_write():
    env = dict(os.environ, RATE="50", DURATION="0.4", FRAME_BYTES="115")
    out = subprocess.run([os.path.join(ROOT, "tools/bench/floor/run"), "20"], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["connections"] == 20
    assert report["writes"] == 20 * 20 and report["short_writes"] == 0, report
    # µs per write is the writer's CPU time over its writes (both rounded in the report).
    assert abs(report["us_per_write"] - report["writer_cpu_s"] * 1e6 / report["writes"]) <= 0.01 * report["us_per_write"] + 3, report


def test_loopback_floor_refuses_out_of_range_arguments():
    binary = os.path.join(os.environ.get("TMPDIR", "/tmp"), "airwave-loopback-floor")
    subprocess.run([os.path.join(ROOT, "tools/bench/floor/run"), "1"], env=dict(os.environ, DURATION="0.05"),
                   capture_output=True, timeout=60, check=True)
    result = subprocess.run([binary, "0"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "CONNECTIONS" in result.stderr
