"""The tree itself: it works from a fresh clone anywhere, on any file system."""

import collections
import os
import re
import subprocess

from conftest import ROOT


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True).stdout
    return [name.decode() for name in out.split(b"\0") if name]


# An absolute path of a developer's or a CI machine: a checkout, a home folder, a fixed temporary
# folder. Not preceded by a name character, a dot or `~`, so relative paths (`docs/work/`,
# `.build/tmp/`) and URL paths (`example.com/home/x/`) are not taken for one; the match runs to the
# end of the path, so an allowed path is named whole.
MACHINE_PATH = re.compile(rb"""(?<![\w.~-])(?:
      /(?:work|workspace|workspaces)/[\w.-]
    | /home/[\w.-]+/
    | /Users/[\w.-]+/
    | /root/
    | /(?:private/)?tmp/[\w.-]
    | /private/var/
    | /var/folders/
    | /mnt/[\w.-]
    | [A-Za-z]:\\{1,2}Users\\{1,2}
    )[^\s"'`<>()\[\]{},;]*""", re.VERBOSE)

# (file, path) pairs that are not a machine's path in code, each with why.
ALLOWED_MACHINE_PATHS = {
    # The --out and --plot a past comparison run was given, kept in its parameters as a record
    # (tools/bench/compare.py writes paths below the repository relative to it, others as given).
    ("docs/performance-compare.json", "/tmp/perf/compare"),
    ("docs/performance-compare.json", "/tmp/perf/compare.png"),
}


def machine_paths(text: bytes) -> list[str]:
    return [match.group().decode("utf-8", "replace") for match in MACHINE_PATH.finditer(text)]


def test_the_machine_path_pattern():
    """What the tree check below finds and what it leaves alone."""
    found = [
        b'ROOT = "/work/main"', b"cd /work/airwave && swift test", b"conftest at /home/alice/airwave/e2e",
        b"/Users/bob/src/airwave/.build", b"/root/.pyenv/shims/python3", b'out = "/tmp/ci-run4.log"',
        b"open('/tmp/aw-bin/airwave')", b"/private/tmp/x", b"/private/var/folders/ab/T/x",
        b"/var/folders/zz/T/airwave", b"/mnt/data/airwave", b"C:\\Users\\carol\\airwave", b"C:\\\\Users\\\\carol",
        b"/workspace/airwave/Sources",
    ]
    for text in found:
        assert machine_paths(text), text
    assert machine_paths(b'binary = "/home/alice/airwave/.build/debug/airwave"') == [
        "/home/alice/airwave/.build/debug/airwave"]
    left_alone = [
        b'os.environ.get("TMPDIR", "/tmp")', b"${TMPDIR:-/tmp}/airwave-loopback-floor", b"/usr/bin/chromium",
        b"/proc/net/dev", b"/var/cache/nginx/airwave", b"docs/work/notes.md", b".build/tmp/x",
        b"https://example.com/home/alice/", b"https://github.com/root/repo", b"/api/streams/{id}",
        b"/ws/active-streams/", b"~/work/airwave", b"/home", b"/Users",
    ]
    for text in left_alone:
        assert machine_paths(text) == [], text


def test_no_tracked_file_holds_an_absolute_path_of_a_machine():
    """Everything is found from the repository root or a flag: a fresh clone elsewhere works.
    Issue 13 found a checkout's path in three files; any checkout's, home's or fixed temporary
    folder's path is looked for, and this checkout's own wherever it is."""
    here = os.path.abspath(ROOT).encode()
    this_file = os.path.relpath(os.path.abspath(__file__), ROOT)
    offenders = []
    for name in tracked_files():
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path) or os.path.getsize(path) >= 5_000_000:
            continue
        if name == this_file:
            continue  # its pattern and examples name such paths on purpose
        with open(path, "rb") as f:
            text = f.read()
        if here in text:
            offenders.append((name, here.decode()))
        offenders += [(name, found) for found in machine_paths(text) if (name, found) not in ALLOWED_MACHINE_PATHS]
    assert offenders == [], f"tracked files naming a machine's absolute path: {sorted(set(offenders))}"


def test_no_two_paths_differ_only_by_case():
    """macOS is a declared platform and its file system ignores case: `Tests/` beside `tests/`
    would be one folder there."""
    seen = collections.defaultdict(set)
    for name in tracked_files():
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            seen[prefix.lower()].add(prefix)
    clashes = sorted(sorted(names) for names in seen.values() if len(names) > 1)
    assert clashes == [], clashes
