"""Printing a walk listing: one Rich string (the old render) against plain chunked writes.

`hw2 graph powers --walks I J --length K` used to hand the whole listing to Rich as one
string; Rich lays it out (wrapping, cell widths) before writing, which took about 100 s for
the 209,715 walks of length 10 between two nodes of K5. The listing now goes straight to the
console's file in chunks (`hw2cli.graph.render._print_lines`). Both are timed here on the same
walks, written to a temporary file (what a pipe or redirect gets), and the outputs are checked
to hold the same walk lines.

    python benchmarks/bench_walk_listing.py            # K5, length 8: 13,107 walks
    python benchmarks/bench_walk_listing.py --length 10   # 209,715 walks (the old path: minutes)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from hw2cli.graph.io import read_edgelist
from hw2cli.graph.render import _print_lines, _walk_text
from hw2cli.graph.walks import list_walks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edges = Path(tmp) / "k5.txt"
        edges.write_text("".join(f"{i} {j}\n" for i in range(1, 6) for j in range(i + 1, 6)))
        listing = list_walks(read_edgelist(edges), "1", "2", args.length, cap=1_000_000)
        lines = _walk_text(listing)
        times = {}
        for name in ("old: one Rich string", "new: chunked writes"):
            out = Path(tmp) / f"{name[:3]}.txt"
            with open(out, "w", encoding="utf-8") as fh:
                console = Console(file=fh, width=100, markup=False, highlight=False)
                t0 = time.perf_counter()
                if name.startswith("old"):
                    console.print("\n".join(lines), highlight=False, markup=False)
                else:
                    _print_lines(console, lines)
                times[name] = time.perf_counter() - t0
        old, new = (Path(tmp) / "old.txt").read_text(), (Path(tmp) / "new.txt").read_text()
        assert [x for x in old.splitlines() if "→" in x] == [x for x in new.splitlines() if "→" in x]
    print(f"K5, length {args.length}: {listing.count:,} walks")
    for name, seconds in times.items():
        print(f"  {name:24s} {seconds:8.3f} s")
    print(f"  ratio old/new: {times['old: one Rich string'] / times['new: chunked writes']:.0f}x")


if __name__ == "__main__":
    main()
