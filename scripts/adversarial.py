#!/usr/bin/env python
"""Run hw2's adversarial suite, every kind of it, and print the counts per class.

A *kind* is one class of bad input or fault (an edge list with a byte-order mark, a --json
name of 304 bytes, SIGINT while hw2 starts), tried by one test marked
``@pytest.mark.kind(CLASS)`` (tests/conftest.py). CI (a plain ``pytest``) runs the fast kinds
with 25 fuzzing examples per parser; this script runs all of them (``--all-kinds``: the slow
kinds marked ``thorough`` too) with Hypothesis's "thorough" profile (1,000 examples).

    python scripts/adversarial.py              # everything (about 10 minutes on 2 busy cores)
    python scripts/adversarial.py --fast       # the CI subset
    python scripts/adversarial.py --list       # the kinds per class; nothing runs
    python scripts/adversarial.py -- -x -k bom # more pytest arguments after --

Outcomes: *held* (passed), *expected failure* (marked xfail: a kind another branch fixes, see
tests/common/test_adversarial_families.py), *failed*, *skipped* (a slow kind under --fast, or one
that needs what this machine lacks). The exit status is pytest's; it is 1 as well when fewer
than MIN_KINDS kinds were found.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MIN_KINDS = 200  # issue 22: the suite holds at least this many kinds
COLUMNS = ("held", "expected failure", "failed", "skipped")


class Tally:
    """A pytest plugin: each kind's class and its final outcome."""

    def __init__(self) -> None:
        self.cls: dict[str, str] = {}
        self.outcome: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            marker = item.get_closest_marker("kind")
            if marker is not None:
                self.cls[item.nodeid] = marker.args[0]

    def pytest_runtest_logreport(self, report) -> None:
        if report.nodeid not in self.cls:
            return
        if report.failed:
            outcome = "failed"  # also a strict xfail that passed, and an error in set-up or teardown
        elif report.skipped:
            outcome = "expected failure" if hasattr(report, "wasxfail") else "skipped"
        elif report.when == "call":
            outcome = "held"
        else:
            return
        if self.outcome.get(report.nodeid) != "failed":
            self.outcome[report.nodeid] = outcome

    def table(self, markdown: bool = False) -> str:
        counts: dict[str, Counter] = defaultdict(Counter)
        for nodeid, cls in self.cls.items():
            counts[cls][self.outcome.get(nodeid, "not run")] += 1
        total = Counter()
        rows = []
        for cls in sorted(counts, key=lambda c: (-sum(counts[c].values()), c)):
            total.update(counts[cls])
            rows.append((cls, sum(counts[cls].values()), *(counts[cls][c] for c in COLUMNS)))
        rows.append(("total", sum(total.values()), *(total[c] for c in COLUMNS)))
        header = ("class", "kinds", *COLUMNS)
        if markdown:
            lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
            lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
            return "\n".join(lines)
        width = max(len(r[0]) for r in rows)
        fmt = f"{{:<{width}}}" + "  {:>6}" + "".join(f"  {{:>{len(c)}}}" for c in COLUMNS)
        return "\n".join(fmt.format(*r) for r in [header, *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the kinds CI runs, CI's fuzzing profile")
    parser.add_argument("--list", action="store_true", help="list the kinds per class without running them")
    parser.add_argument("--markdown", action="store_true", help="print the counts as a Markdown table")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    tally = Tally()
    argv = ["tests", "-m", "kind", "-q", "-p", "no:cacheprovider", *args.pytest_args]
    if args.list:
        argv.append("--collect-only")
    elif not args.fast:
        argv += ["--all-kinds", "--hypothesis-profile=thorough"]
    code = pytest.main(argv, plugins=[tally])
    if args.list:
        by_class = defaultdict(list)
        for nodeid, cls in tally.cls.items():
            by_class[cls].append(nodeid)
        for cls in sorted(by_class):
            print(f"\n{cls} ({len(by_class[cls])})")
            print("\n".join(f"  {nodeid}" for nodeid in by_class[cls]))
    print()
    print(tally.table(markdown=args.markdown))
    if len(tally.cls) < MIN_KINDS:
        print(f"adversarial.py: only {len(tally.cls)} kinds, fewer than {MIN_KINDS}", file=sys.stderr)
        return int(code) or 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
