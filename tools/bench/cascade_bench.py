#!/usr/bin/env python3
"""Cascade benchmark (issue 16, PROTOCOL.md 8): what one edge saves its event's origin, and what
the hop costs. Two release nodes on one PostgreSQL database; `wsfan` (../shared/perf) streams one
host's 120-byte Opus frames at 50/s on node A to N listeners, connected either to A itself
(direct) or to node B (one link from A to B, B fans out). It reports, per N:

- the origin's CPU (A, from /proc) per second and per delivered frame, direct and through the edge,
  and the edge's CPU (B) for the same run;
- delivery and the send → receive latency (p50/p99) both ways; with a small N the difference is
  the added latency of one hop.

    python3 tools/bench/cascade_bench.py --database postgres://postgres@127.0.0.1:5432/postgres \\
        [--binary .build/release/airwave] [--listeners 1000 3000] [--hop-listeners 100] [--seconds 20]

Every run gets a fresh database (CREATE DATABASE on the cluster of --database, dropped after).
wsfan is built from ../shared/perf into a temporary folder unless --wsfan names one.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster_bench import CLUSTER_SECRET, SECRET, Node, drop_database, fresh_database, free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOIN = "/ws/stream/live/join/event/{eventId}/{userId}/"


def build_wsfan():
    folder = tempfile.mkdtemp(prefix="wsfan-")
    shutil.copytree(os.path.join(ROOT, "..", "shared", "perf"), folder, dirs_exist_ok=True)
    subprocess.run(["make", "-C", folder], check=True, capture_output=True)
    return os.path.join(folder, "wsfan")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def token(binary, user_id):
    return subprocess.check_output([binary, "token", "--user-id", user_id, "--jwt-secret", SECRET], text=True).strip()


def run_wsfan(wsfan, binary, origin, listener_node, listeners, seconds, edge=None):
    """One wsfan run: host on `origin`, listeners on `listener_node`; the edge's CPU over the run too."""
    host = f"host{time.monotonic_ns()}"
    edge_cpu0 = cpu_seconds(edge.proc.pid) if edge else None
    started = time.monotonic()
    out = subprocess.run(
        [wsfan, "--server", f"127.0.0.1:{origin.port}", "--listener-path", f"ws://127.0.0.1:{listener_node.port}{JOIN}",
         "--listeners", str(listeners), "--rate", "50", "--duration", str(seconds), "--token", token(binary, host),
         "--broadcaster-user", host, "--user-prefix", f"l{time.monotonic_ns()}-", "--server-pid", str(origin.proc.pid),
         "--settle", "2", "--json", "--quiet"],
        check=True, capture_output=True, text=True, timeout=seconds + 240)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if edge:
        # Over the whole run (connecting included), for the order of magnitude of the edge's share.
        result["edge_cpu_per_s"] = (cpu_seconds(edge.proc.pid) - edge_cpu0) / (time.monotonic() - started)
    return result


def summary(result):
    frames_per_s = result["frames_received"] / result["window_s"] if result["window_s"] else 0
    return {
        "delivery": result["delivery"], "origin_cpu_per_s": result["server_cpu_per_s"],
        "origin_us_per_delivered_frame": 1e6 * result["server_cpu_per_s"] / frames_per_s if frames_per_s else None,
        "lat_p50_ms": result["lat_p50_us"] / 1000, "lat_p99_ms": result["lat_p99_us"] / 1000,
        "edge_cpu_per_s": result.get("edge_cpu_per_s"), "listeners_ok": result["listeners_ok"],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "airwave"))
    parser.add_argument("--wsfan")
    parser.add_argument("--listeners", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--hop-listeners", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wsfan = args.wsfan or build_wsfan()
    name, database = fresh_database(args.database)
    caps = ["--max-connections", "1000000", "--max-connections-per-ip", "1000000"]
    nodes = []
    try:
        for node_id in ("a", "b"):
            port = free_port()
            nodes.append(Node(args.binary, ["--database", database, "--node-url", f"http://127.0.0.1:{port}",
                                            "--cluster-secret", CLUSTER_SECRET, "--node-id", node_id, *caps], port=port))
        a, b = nodes
        report = {"hop": {}, "fan_out": {}}
        for label, target, edge in (("direct", a, None), ("edge", b, b)):
            report["hop"][label] = summary(run_wsfan(wsfan, args.binary, a, target, args.hop_listeners, args.seconds, edge))
        for n in args.listeners:
            report["fan_out"][n] = {label: summary(run_wsfan(wsfan, args.binary, a, target, n, args.seconds, edge))
                                    for label, target, edge in (("direct", a, None), ("edge", b, b))}
        print(json.dumps(report, indent=2))
    finally:
        for node in nodes:
            node.stop()
        drop_database(args.database, name)


if __name__ == "__main__":
    main()
