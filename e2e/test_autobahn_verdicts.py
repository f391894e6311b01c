"""tools/autobahn/run fails the CI run on a bad Autobahn verdict (issue 13): its verdict check
(tools/autobahn/verdicts.py) fed crafted kosoku reports, and the runner itself run with a fake
kosoku that writes such a report and a fake airwave-echo, so no real WebSocket case runs here."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

RUNNER = os.path.join(ROOT, "tools", "autobahn", "run")
CHECK = os.path.join(ROOT, "tools", "autobahn", "verdicts.py")

# A clean report as kosoku writes it (index.json: agent -> case id -> verdicts), cut to four cases.
CLEAN = {
    "1.1.1": ("OK", "OK"),
    "6.4.1": ("OK", "OK"),
    "9.1.2": ("OK", "OK"),
    "10.1.1": ("INFORMATIONAL", "INFORMATIONAL"),
}
# One bad verdict each: the bad case, (behavior, behaviorClose).
BAD = {
    "failed": ("9.1.2", ("FAILED", "OK")),
    "unclean": ("9.1.2", ("OK", "UNCLEAN")),
    "non-strict": ("6.4.1", ("NON-STRICT", "OK")),
    "error": ("1.1.1", ("ERROR", "OK")),
    "wrong close code": ("6.4.1", ("OK", "WRONG CODE")),
    "failed by client": ("9.1.2", ("OK", "FAILED BY CLIENT")),
    "unimplemented": ("1.1.1", ("UNIMPLEMENTED", "OK")),
}


def write_index(folder, verdicts) -> str:
    index = {"airwave-echo": {case: {"behavior": behavior, "behaviorClose": close, "remoteCloseCode": 1000,
                                     "duration": 1, "reportfile": f"airwave_echo_case_{case.replace('.', '_')}.json"}
                              for case, (behavior, close) in verdicts.items()}}
    path = os.path.join(folder, "index.json")
    with open(path, "w") as f:
        json.dump(index, f)
    return path


def with_bad(which):
    case, verdict = BAD[which]
    return case, {**CLEAN, case: verdict}


def test_the_check_passes_a_clean_report(tmp_path):
    result = subprocess.run([sys.executable, CHECK, write_index(tmp_path, CLEAN)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 cases: INFORMATIONAL 1, OK 3" in result.stdout


@pytest.mark.parametrize("which", sorted(BAD))
def test_the_check_fails_on_one_bad_verdict(tmp_path, which):
    case, verdicts = with_bad(which)
    result = subprocess.run([sys.executable, CHECK, write_index(tmp_path, verdicts)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    behavior, close = verdicts[case]
    assert f"{case}: behavior={behavior} close={close}" in result.stdout
    # Only the bad case is named.
    assert [line.strip().split(":")[0] for line in result.stdout.splitlines() if line.startswith("  ")] == [case]


def test_the_check_fails_on_an_empty_report(tmp_path):
    result = subprocess.run([sys.executable, CHECK, write_index(tmp_path, {})], capture_output=True, text=True)
    assert result.returncode == 1


@pytest.fixture
def fakes(tmp_path):
    """A `kosoku` on PATH that copies $FAKE_KOSOKU_INDEX to its -o folder, and an `airwave-echo`
    that prints its serving line and waits to be stopped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kosoku = bin_dir / "kosoku"
    kosoku.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, shutil, sys
        args = sys.argv[1:]
        assert args[0].startswith("ws://127.0.0.1:"), args
        outdir = args[args.index("-o") + 1]
        os.makedirs(outdir, exist_ok=True)
        shutil.copy(os.environ["FAKE_KOSOKU_INDEX"], os.path.join(outdir, "index.json"))
        """))
    echo = bin_dir / "airwave-echo"
    echo.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, time
        print("airwave-echo: serving on ws://127.0.0.1:9/", flush=True)
        time.sleep(60)
        """))
    for script in (kosoku, echo):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def run(verdicts):
        reports = tmp_path / "reports"
        reports.mkdir(exist_ok=True)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               "FAKE_KOSOKU_INDEX": write_index(reports, verdicts)}
        return subprocess.run([sys.executable, RUNNER, "--echo", str(echo)], env=env, capture_output=True, text=True,
                              timeout=60)

    return run


def test_the_runner_passes_a_clean_run(fakes):
    result = fakes(CLEAN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Autobahn (kosoku) against airwave-echo: 4 cases: INFORMATIONAL 1, OK 3" in result.stdout


@pytest.mark.parametrize("which", ["failed", "unclean", "non-strict"])
def test_the_runner_fails_on_a_bad_verdict(fakes, which):
    case, verdicts = with_bad(which)
    result = fakes(verdicts)
    assert result.returncode == 1, result.stdout + result.stderr
    behavior, close = verdicts[case]
    assert f"{case}: behavior={behavior} close={close}" in result.stdout
