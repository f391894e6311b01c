"""The tree itself: it works from a fresh clone anywhere, on any file system."""

import collections
import os
import subprocess

from conftest import ROOT


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True).stdout
    return [name.decode() for name in out.split(b"\0") if name]


def test_no_tracked_file_holds_the_path_of_this_checkout():
    """Everything is found from the repository root or a flag: a fresh clone elsewhere works."""
    needle = os.path.abspath(ROOT).encode()
    offenders = []
    for name in tracked_files():
        path = os.path.join(ROOT, name)
        if os.path.isfile(path) and os.path.getsize(path) < 5_000_000:
            with open(path, "rb") as f:
                if needle in f.read():
                    offenders.append(name)
    assert offenders == [], f"files naming {needle.decode()}: {offenders}"


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
