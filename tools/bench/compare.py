#!/usr/bin/env python3
"""Airwave against the stack it replaces: runs the same `airwave-bench` load, in one run, against
Airwave and against a minimal Django Channels + daphne relay of the same URLs and frames
(tools/bench/django_relay, in-memory channel layer), for a list of listener counts, and writes
every number to one results folder (results.json, results.csv, results.md) plus a markdown
table on standard output.

    python3 tools/bench/compare.py                               # 1 speaker, N = 10 … 10000
    python3 tools/bench/compare.py --speakers 1 4 --listeners 100 1000 2000 --duration 10
    python3 tools/bench/compare.py --idle 10000 --plot docs/performance-compare.png

Django, Channels, daphne and matplotlib come from PyPI into a virtualenv (default
.build-bench/venv, made once). Each run starts a fresh server (airwave-bench --server-binary for
Airwave; a new daphne process for Django) and stops it afterwards. A system's series stops at
the first N where it is clearly overloaded (delivery below --stop-delivery, p99 above
--stop-p99-ms, or fewer than half of the listeners connected), so runs stay bounded.
"Capacity" is the largest N tried at which p99 ≤ --target-p99-ms with at least 99 % delivered
and every listener connected, and every smaller N met that too; between that N and the next one
tried it is also interpolated (log-log in N and p99).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RELAY_DIR = os.path.join(HERE, "django_relay")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
FIXTURE = os.path.join(ROOT, "Fixtures", "media", "speech.opus-packets")
SYSTEM_NAMES = {"airwave": "Airwave", "django": "Django Channels"}


def log(message: str) -> None:
    print(f"compare: {message}", file=sys.stderr, flush=True)


# MARK: environment

def ensure_venv(path: str) -> str:
    """Creates the virtualenv with tools/bench/requirements.txt once (again when the file
    changes); returns its python."""
    with open(REQUIREMENTS, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    python = os.path.join(path, "bin", "python")
    marker = os.path.join(path, ".requirements-sha256")
    if os.path.exists(python) and os.path.exists(marker) and open(marker).read().strip() == digest:
        return python
    log(f"installing {REQUIREMENTS} into {path} (once)")
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS],
                   check=True, timeout=1800)
    with open(marker, "w") as f:
        f.write(digest + "\n")
    return python


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_state() -> dict:
    with open("/proc/uptime") as f:
        uptime_s = float(f.read().split()[0])
    return {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "loadavg": [round(x, 2) for x in os.getloadavg()], "uptime_s": round(uptime_s)}


def package_versions(python: str) -> dict:
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "['Django', 'channels', 'daphne', 'Twisted', 'autobahn']}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    versions = json.loads(out.stdout) if out.returncode == 0 else {}
    versions["python"] = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                        capture_output=True, text=True, timeout=60).stdout.strip()
    return versions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# MARK: the systems

class Airwave:
    """`airwave-bench --server-binary`: the bench starts and stops a fresh `airwave serve`."""

    name = "airwave"

    def __init__(self, binary: str):
        self.binary = binary

    def start(self) -> None:
        pass

    def bench_args(self) -> list[str]:
        return ["--server-binary", self.binary]

    def stop(self) -> None:
        pass


class DjangoRelay:
    """A fresh `daphne relay.asgi:application` on a free port of 127.0.0.1 for each run."""

    name = "django"

    def __init__(self, venv_path: str, log_path: str):
        self.daphne = os.path.join(venv_path, "bin", "daphne")
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        for _ in range(5):
            self.port = free_port()
            log_file = open(self.log_path, "a")
            # daphne's access log (one line per connect and disconnect, as in production) goes
            # to stdout; it is discarded here.
            self.proc = subprocess.Popen(
                [self.daphne, "-b", "127.0.0.1", "-p", str(self.port), "relay.asgi:application"],
                cwd=RELAY_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "relay.settings", "PYTHONUNBUFFERED": "1"})
            log_file.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"daphne did not start; see {self.log_path}")

    def bench_args(self) -> list[str]:
        return ["--url", f"ws://127.0.0.1:{self.port}", "--server-pid", str(self.proc.pid), "--no-metrics", "--no-tokens"]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


# MARK: one run

def run_bench(bench: str, system, listeners: int, speakers: int, opts, idle: bool = False) -> tuple[dict | None, str]:
    """One airwave-bench run against a freshly started system: (report, error)."""
    # Generous: a busy server may accept far fewer than --connect-rate joins a second.
    timeout = 150 + listeners / 40 + opts.duration + opts.idle_settle
    try:
        system.start()
    except Exception as error:  # noqa: BLE001 — reported as this run's failure
        return None, str(error)
    cmd = [bench, *system.bench_args(), "--fixture", FIXTURE, "--listeners", str(listeners),
           "--speakers", str(speakers), "--rate", str(opts.rate), "--duration", str(opts.duration),
           "--connect-rate", str(opts.connect_rate), "--json"]
    if idle:
        cmd += ["--idle", "--settle", str(opts.idle_settle)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"airwave-bench did not finish within {timeout:.0f} s"
    finally:
        system.stop()
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    try:
        return json.loads(proc.stdout), ""
    except ValueError:
        return None, "airwave-bench printed no JSON"


def summarize(system: str, listeners: int, speakers: int, report: dict | None, error: str, idle: bool = False) -> dict:
    row = {"system": system, "speakers": speakers, "listeners": listeners, "idle": idle, "error": error}
    if report is None:
        return row
    lat, server, frames, connect = report["latency_listeners"], report["server"], report["frames"], report["connect"]
    row.update({
        "connected": connect["listeners_connected"],
        "connect_s": connect["wall_s"],
        "delivery": frames["delivery_ratio"],
        "p50_ms": lat["p50_ms"], "p90_ms": lat["p90_ms"], "p99_ms": lat["p99_ms"],
        "p999_ms": lat["p999_ms"], "max_ms": lat["max_ms"],
        "server_cpu_s_per_s": server["cpu_seconds_per_second"],
        "cpu_us_per_frame": server["cpu_us_per_delivered_frame"],
        "rss_kib_idle": server["rss_kib_idle"], "rss_kib_joined": server["rss_kib_joined"],
        "rss_kib_end": server["rss_kib_end"], "rss_kib_per_listener": server["rss_kib_per_listener"],
        "generator_cpu_s_per_s": report["generator"]["cpu_seconds_per_second"],
        "bench_errors": "; ".join(report["errors"]),
    })
    return row


def overloaded(row: dict, opts) -> str:
    """Why this system's series stops here, or ''."""
    if row["error"]:
        return row["error"]
    if row["connected"] < row["listeners"] / 2:
        return f"only {row['connected']} of {row['listeners']} listeners connected"
    if row["delivery"] < opts.stop_delivery:
        return f"delivery {row['delivery']:.1%} < {opts.stop_delivery:.0%}"
    if row["p99_ms"] > opts.stop_p99_ms:
        return f"p99 {row['p99_ms']:.0f} ms > {opts.stop_p99_ms:.0f} ms"
    return ""


def meets_target(row: dict, target_ms: float) -> bool:
    return (not row["error"] and row["connected"] == row["listeners"] and row["delivery"] >= 0.99
            and row["p99_ms"] <= target_ms)


def capacity(rows: list[dict], target_ms: float) -> dict:
    """Largest N (all smaller N passing too) with p99 ≤ target, and an interpolated estimate."""
    rows = sorted(rows, key=lambda r: r["listeners"])
    passed, first_fail = 0, None
    for row in rows:
        if meets_target(row, target_ms):
            passed = row["listeners"]
        else:
            first_fail = row
            break
    result = {"measured": passed, "next_failed": first_fail["listeners"] if first_fail else None,
              "interpolated": None}
    if first_fail is None:
        result["note"] = f"≥ {passed}: met at every N tried" if passed else "no run"
        return result
    lower = next((r for r in rows if r["listeners"] == passed), None)
    if (lower is not None and not first_fail["error"] and first_fail["delivery"] >= 0.99
            and first_fail["connected"] == first_fail["listeners"] and lower["p99_ms"] > 0
            and first_fail["p99_ms"] > lower["p99_ms"]):
        a, b = math.log(lower["listeners"]), math.log(first_fail["listeners"])
        pa, pb = math.log(lower["p99_ms"]), math.log(first_fail["p99_ms"])
        result["interpolated"] = round(math.exp(a + (math.log(target_ms) - pa) * (b - a) / (pb - pa)))
    if passed == 0:
        result["note"] = f"< {first_fail['listeners']}: missed at the smallest N"
    else:
        result["note"] = f"{passed} ≤ capacity < {first_fail['listeners']}"
    return result


# MARK: output

def fmt_ms(ms) -> str:
    if ms is None:
        return "—"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def fmt_n(n) -> str:
    return "—" if n is None else f"{n:,}"


def markdown(results: dict) -> str:
    opts = results["parameters"]
    out = []
    for speakers in opts["speakers"]:
        out.append(f"### {speakers} speaker{'s' if speakers > 1 else ''} × {opts['rate']} frames/s for {opts['duration']:g} s\n")
        out.append("| listeners | system | connected | delivery | p50 | p90 | p99 | p99.9 | max | server CPU (s/s) "
                   "| µs CPU per delivered frame | server RSS (MiB) | generator CPU (s/s) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for row in results["runs"]:
            if row["speakers"] != speakers or row["idle"]:
                continue
            name = SYSTEM_NAMES[row["system"]]
            if row["error"]:
                out.append(f"| {fmt_n(row['listeners'])} | {name} | failed: {row['error'][:80]} |" + " |" * 10)
                continue
            out.append(f"| {fmt_n(row['listeners'])} | {name} | {fmt_n(row['connected'])} | {row['delivery'] * 100:.2f} % "
                       f"| {fmt_ms(row['p50_ms'])} | {fmt_ms(row['p90_ms'])} | {fmt_ms(row['p99_ms'])} "
                       f"| {fmt_ms(row['p999_ms'])} | {fmt_ms(row['max_ms'])} | {row['server_cpu_s_per_s']:.2f} "
                       f"| {row['cpu_us_per_frame']:.1f} | {row['rss_kib_end'] / 1024:.0f} | {row['generator_cpu_s_per_s']:.2f} |")
        for system, why in results["stopped"].get(str(speakers), {}).items():
            out.append(f"\n{SYSTEM_NAMES[system]} stopped after N = {why['listeners']:,}: {why['reason']}.")
        out.append("")
    target = opts["target_p99_ms"]
    out.append(f"### Listener capacity at p99 ≤ {target:g} ms (≥ 99 % delivered)\n")
    out.append("| speakers | Airwave | Django Channels | ratio (measured) | Airwave (interpolated) | Django (interpolated) | ratio (interpolated) |")
    out.append("|---|---|---|---|---|---|---|")
    for speakers in opts["speakers"]:
        caps = results["capacity"].get(str(speakers), {})
        a, d = caps.get("airwave"), caps.get("django")

        def cell(c):
            return "—" if c is None else f"{fmt_n(c['measured'])} ({c['note']})"

        def ratio(x, y):
            return f"{x / y:.1f} ×" if x and y else "—"
        ai, di = (a or {}).get("interpolated"), (d or {}).get("interpolated")
        out.append(f"| {speakers} | {cell(a)} | {cell(d)} | {ratio((a or {}).get('measured'), (d or {}).get('measured'))} "
                   f"| {fmt_n(ai)} | {fmt_n(di)} | {ratio(ai, di)} |")
    out.append("")
    idle = [r for r in results["runs"] if r["idle"]]
    if idle:
        out.append("### Idle connections (joined, no media)\n")
        out.append("| system | idle listeners | connected | server RSS before (MiB) | joined (MiB) | KiB per idle listener |")
        out.append("|---|---|---|---|---|---|")
        for row in idle:
            if row["error"]:
                out.append(f"| {SYSTEM_NAMES[row['system']]} | {fmt_n(row['listeners'])} | failed: {row['error'][:80]} | | | |")
                continue
            out.append(f"| {SYSTEM_NAMES[row['system']]} | {fmt_n(row['listeners'])} | {fmt_n(row['connected'])} "
                       f"| {row['rss_kib_idle'] / 1024:.1f} | {row['rss_kib_joined'] / 1024:.1f} | {row['rss_kib_per_listener']:.1f} |")
        out.append("")
    before, after = results["machine"]["before"], results["machine"]["after"]
    out.append(f"Machine: {results['machine']['cores']} cores, load average before {before['loadavg'][0]:.2f} / "
               f"after {after['loadavg'][0]:.2f} (1 min); Django relay: "
               + ", ".join(f"{k} {v}" for k, v in results["machine"]["django_versions"].items()) + ".")
    return "\n".join(out) + "\n"


def write_csv(path: str, runs: list[dict]) -> None:
    keys = []
    for row in runs:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(runs)


# MARK: main

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    # 10, 30 and 300 as well: the Django relay misses the target below 100 listeners on the
    # 2-core box, and a capacity ratio needs a passing N for both systems.
    parser.add_argument("--listeners", type=int, nargs="+", default=[10, 30, 100, 300, 1000, 2000, 5000, 10000])
    parser.add_argument("--speakers", type=int, nargs="+", default=[1], help="a series per value (1…64)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of speaking per run")
    parser.add_argument("--rate", type=int, default=50, help="frames/s per speaker")
    parser.add_argument("--connect-rate", type=int, default=500, help="new listener connections/s")
    parser.add_argument("--systems", nargs="+", choices=["airwave", "django"], default=["airwave", "django"])
    parser.add_argument("--idle", type=int, default=0, metavar="N",
                        help="also measure RSS per idle listener with N joined listeners (e.g. 10000)")
    parser.add_argument("--idle-settle", type=float, default=5, help="seconds between the last join and the RSS reading")
    parser.add_argument("--target-p99-ms", type=float, default=50)
    parser.add_argument("--stop-delivery", type=float, default=0.5)
    parser.add_argument("--stop-p99-ms", type=float, default=5000)
    parser.add_argument("--airwave-bin", default=os.path.join(ROOT, ".build", "release", "airwave"))
    parser.add_argument("--bench-bin", default=os.path.join(ROOT, ".build", "release", "airwave-bench"))
    parser.add_argument("--venv", default=os.path.join(ROOT, ".build-bench", "venv"))
    parser.add_argument("--out", help="results folder (default .build-bench/results/<UTC time>)")
    parser.add_argument("--plot", help="also draw the results with plot.py into this PNG")
    opts = parser.parse_args(argv)
    if not all(1 <= s <= 64 for s in opts.speakers) or not all(1 <= n <= 100_000 for n in opts.listeners):
        parser.error("--speakers must be 1…64 and --listeners 1…100000")
    opts.listeners = sorted(set(opts.listeners))
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    for path in (opts.bench_bin, *([opts.airwave_bin] if "airwave" in opts.systems else [])):
        if not os.access(path, os.X_OK):
            sys.exit(f"compare: {path} is not an executable (swift build -c release --product airwave-bench "
                     f"&& swift build -c release --product airwave, or pass --bench-bin/--airwave-bin)")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = opts.out or os.path.join(ROOT, ".build-bench", "results", stamp)
    os.makedirs(out_dir, exist_ok=True)
    python = ensure_venv(opts.venv) if ("django" in opts.systems or opts.plot) else sys.executable
    fd_limit = raise_fd_limit()
    need = max([*opts.listeners, opts.idle]) + 100
    if fd_limit < need:
        log(f"warning: open-file limit {fd_limit} < {need}; the largest runs will fail to connect")

    systems = {"airwave": Airwave(opts.airwave_bin), "django": DjangoRelay(opts.venv, os.path.join(out_dir, "daphne.log"))}
    results = {
        # Paths inside the checkout are recorded relative to it: results stay true in any clone.
        "parameters": {k: (os.path.relpath(v, ROOT) if isinstance(v, str) and v.startswith(ROOT + os.sep) else v)
                       for k, v in vars(opts).items()},
        "machine": {"before": machine_state(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "open_file_limit": fd_limit,
                    "django_versions": package_versions(python) if "django" in opts.systems else {}},
        "runs": [], "stopped": {}, "capacity": {}, "reports": [],
    }

    def record(row, report):
        results["runs"].append(row)
        results["reports"].append({"system": row["system"], "listeners": row["listeners"], "speakers": row["speakers"],
                                   "idle": row["idle"], "report": report})

    for speakers in opts.speakers:
        stopped = results["stopped"].setdefault(str(speakers), {})
        for n in opts.listeners:
            for name in opts.systems:
                if name in stopped:
                    continue
                log(f"{SYSTEM_NAMES[name]}: {n} listeners, {speakers} speaker(s), {opts.duration:g} s")
                report, error = run_bench(opts.bench_bin, systems[name], n, speakers, opts)
                row = summarize(name, n, speakers, report, error)
                record(row, report)
                if not error:
                    log(f"  delivery {row['delivery']:.2%}, p50 {fmt_ms(row['p50_ms'])}, p99 {fmt_ms(row['p99_ms'])}, "
                        f"server CPU {row['server_cpu_s_per_s']:.2f} s/s, {row['cpu_us_per_frame']:.1f} µs/frame")
                why = overloaded(row, opts)
                if why:
                    log(f"  {SYSTEM_NAMES[name]} stops here: {why}")
                    stopped[name] = {"listeners": n, "reason": why}
        results["capacity"][str(speakers)] = {
            name: capacity([r for r in results["runs"] if r["system"] == name and r["speakers"] == speakers and not r["idle"]],
                           opts.target_p99_ms)
            for name in opts.systems}

    if opts.idle:
        for name in opts.systems:
            log(f"{SYSTEM_NAMES[name]}: {opts.idle} idle listeners")
            report, error = run_bench(opts.bench_bin, systems[name], opts.idle, 1, opts, idle=True)
            row = summarize(name, opts.idle, 1, report, error, idle=True)
            record(row, report)
            if not error:
                log(f"  {row['connected']} connected, {row['rss_kib_per_listener']:.1f} KiB per idle listener")

    results["machine"]["after"] = machine_state()
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_csv(os.path.join(out_dir, "results.csv"), results["runs"])
    table = markdown(results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table)
    if opts.plot:
        subprocess.run([python, os.path.join(HERE, "plot.py"), os.path.join(out_dir, "results.json"), "--out", opts.plot],
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        log(f"plot: {opts.plot}")
    log(f"results: {out_dir}/results.json, results.csv, results.md")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
