"""The docs name what exists: the engine's inputs and outputs in docs/architecture.md are the
cases of `LiveEvent.Input` and `LiveEvent.Output`, and every test docs/security.md names as
the test of a limit is there (issue 14 asked for docs/architecture.md "true again"; an audit
found one input missing and a type named as a test)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess

from conftest import ROOT

IO_SWIFT = os.path.join(ROOT, "Sources", "AirwaveCore", "LiveEvent", "LiveEvent+IO.swift")


def read(*parts) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def repository_files() -> list[str]:
    """Tracked files and new ones not ignored (a fresh clone has only the former)."""
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    return sorted({name.decode() for name in out.split(b"\0") if name})


def enum_cases(swift: str, enum: str) -> list[str]:
    """The case names of `enum` (declared at one indentation, closed by a brace at the same one)."""
    match = re.search(rf"^( *)public enum {enum}\b[^{{]*{{\n(.*?)^\1}}", swift, re.M | re.S)
    assert match, f"no enum {enum}"
    return re.findall(r"^\s*case (\w+)", match.group(2), re.M)


def contract_names(doc: str) -> tuple[list[str], list[str]]:
    """The inputs and the outputs "The core's contract" lists (the names in backquotes)."""
    section = doc.split("## The core's contract", 1)[1]
    inputs = section.split("`handle(_ input:, now:)`", 1)[1].split("`pollOutput()`", 1)[0]
    outputs = section.split("`pollOutput()` returns", 1)[1].split("`nextWakeUp`", 1)[0]
    return re.findall(r"`(\w+)", inputs), re.findall(r"`(\w+)", outputs)


def test_the_core_contract_lists_every_input_and_output():
    swift = open(IO_SWIFT, encoding="utf-8").read()
    inputs, outputs = contract_names(read("docs", "architecture.md"))
    assert sorted(inputs) == sorted(enum_cases(swift, "Input")), "docs/architecture.md, The core's contract: inputs"
    assert sorted(outputs) == sorted(enum_cases(swift, "Output")), "docs/architecture.md, The core's contract: outputs"


def test_the_contract_parser():
    swift = "    public enum Input: Sendable {\n        /// a\n        case a(X)\n        case b\n    }\n" \
            "    public enum Output {\n        case c\n    }\n"
    assert enum_cases(swift, "Input") == ["a", "b"] and enum_cases(swift, "Output") == ["c"]
    doc = "## The core's contract\n\n`handle(_ input:, now:)` takes `a(x, y:)` and `b`; `pollOutput()` returns `c(M, R)`; " \
          "`nextWakeUp` says when the next `tick` is due."
    assert contract_names(doc) == (["a", "b"], ["c"])


TEST_NAME = re.compile(r"(?:[\w/.-]+\.py::)?test_\w+…?|\w+Tests(?:\.\w+)?|[\w*-]+\.json|\*-[\w-]+|[\w/-]*test_\w+\.py")


def security_test_names(doc: str) -> list[str]:
    """Names in docs/security.md that name a test: a Python test (`test_…`, `file.py::test_…`, a
    trailing `…` for a name cut short), a Swift suite or test (`XTests`, `XTests.method`), a
    fixture (`name.json`, with `*`) or a test file."""
    return [name for name in sorted(set(re.findall(r"`([^`\n]+)`", doc))) if TEST_NAME.fullmatch(name)]


def names_in_tested_by_column(doc: str) -> list[str]:
    """The names in the "tested by" column of docs/security.md's tables, but for remarks in
    parentheses: each must be a test."""
    names, column = [], False
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            column = False
            continue
        if line.startswith("|---"):
            continue
        last = line.strip().strip("|").split("|")[-1].strip()
        if i + 1 < len(lines) and lines[i + 1].startswith("|---"):  # a header row
            column = last.startswith("tested by")
        elif column:
            names += re.findall(r"`([^`\n]+)`", re.sub(r"\([^)]*\)", "", last))
    return names


def test_every_test_docs_security_names_exists():
    files = repository_files()
    python = {f: open(os.path.join(ROOT, f), encoding="utf-8", errors="replace").read()
              for f in files if f.endswith(".py") and os.path.isfile(os.path.join(ROOT, f))}
    swift = {f: open(os.path.join(ROOT, f), encoding="utf-8", errors="replace").read()
             for f in files if f.startswith("Tests/") and f.endswith(".swift") and os.path.isfile(os.path.join(ROOT, f))}
    doc = read("docs", "security.md")
    column = names_in_tested_by_column(doc)
    assert len(column) >= 40, column  # the tables' "tested by" column, read at all
    assert [name for name in column if not TEST_NAME.fullmatch(name)] == [], "not tests, in a tested-by column"
    names = security_test_names(doc)
    missing = []
    for name in names:
        if name.endswith(".json") or name.startswith("*-"):
            pattern = name if name.endswith(".json") else name + ".json"
            found = any(fnmatch.fnmatch(os.path.basename(f), pattern) for f in files if f.startswith("Fixtures/"))
        elif name.endswith(".py"):
            found = any(f == name or f.endswith("/" + name) for f in files)
        elif "Tests" in name and "test_" not in name:
            suite, _, method = name.partition(".")
            holders = [text for text in swift.values() if re.search(rf"\b(?:struct|class|enum|extension) {suite}\b", text)]
            found = bool(holders) and (not method or any(re.search(rf"\bfunc {method}\(", text) for text in holders))
        else:
            path, _, function = name.rpartition("::")
            rest = r"\w*" if function.endswith("…") else ""  # a name cut short: any ending
            pattern = re.compile(r"^\s*(?:async\s+)?def " + re.escape(function.rstrip("…")) + rest + r"\(", re.M)
            found = any(pattern.search(text) for f, text in python.items() if not path or f.endswith("/" + path))
        if not found:
            missing.append(name)
    assert missing == [], f"docs/security.md names tests that do not exist: {missing}"


def test_a_type_is_not_taken_for_a_test():
    doc = "| limit | tested by |\n|---|---|\n| origin rows | `OriginPublication`, `OriginPublicationTests.changesCoalescePerEvent` " \
          "(`/healthz` answers) |\n"
    assert names_in_tested_by_column(doc) == ["OriginPublication", "OriginPublicationTests.changesCoalescePerEvent"]
    assert security_test_names(doc) == ["OriginPublicationTests.changesCoalescePerEvent"]
