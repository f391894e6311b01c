#!/usr/bin/env python3
"""The verdict check of tools/autobahn/run: reads the index.json kosoku wrote and fails (exit 1,
naming the cases) unless every case's behavior and closing behavior is OK or INFORMATIONAL.

    tools/autobahn/verdicts.py INDEX_JSON

Anything else fails the run: FAILED and UNCLEAN; NON-STRICT (6.4.1-6.4.4 were NON-STRICT while
invalid UTF-8 was found only at the end of a message, issue 13: it must fail at the first bad
fragment); ERROR (a case that did not run to a verdict); WRONG CODE and FAILED BY CLIENT
(closing behaviors); UNIMPLEMENTED (the permessage-deflate groups, which the runner leaves out)."""

from __future__ import annotations

import collections
import json
import sys

GOOD = {"OK", "INFORMATIONAL"}


def load(path: str) -> dict:
    """The cases of the one agent in kosoku's index.json: {case id: {"behavior", "behaviorClose", ...}}."""
    with open(path) as f:
        index = json.load(f)
    if len(index) != 1:
        raise ValueError(f"{path}: expected the report of one agent, found {sorted(index)}")
    return next(iter(index.values()))


def check(cases: dict) -> tuple[str, list[str]]:
    """(a one-line summary of the behaviors, the cases with a verdict that is not good)."""
    counts = collections.Counter()
    bad = []
    for case, result in cases.items():
        behavior, close = result.get("behavior"), result.get("behaviorClose")
        counts[behavior] += 1
        if close not in GOOD and behavior in GOOD:
            counts[f"{close} (close)"] += 1
        if behavior not in GOOD or close not in GOOD:
            bad.append(f"{case}: behavior={behavior} close={close}")
    summary = ", ".join(f"{verdict} {count}" for verdict, count in sorted(counts.items(), key=lambda kv: str(kv[0])))
    return f"{len(cases)} cases: {summary}", sorted(bad, key=case_order)


def case_order(line: str):
    """Case ids sort by number ("9.1.10" after "9.1.2")."""
    case = line.split(":", 1)[0]
    return [int(part) if part.isdigit() else part for part in case.split(".")]


def report(cases: dict) -> int:
    """Prints the summary and the bad cases; 1 when there is one, else 0."""
    summary, bad = check(cases)
    print(f"Autobahn (kosoku) against airwave-echo: {summary}")
    if not cases:
        print("no cases in the report")
        return 1
    if bad:
        print("not OK or INFORMATIONAL:\n  " + "\n  ".join(bad))
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    return report(load(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
