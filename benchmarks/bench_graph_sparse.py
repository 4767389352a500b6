"""Time reading a big edge list and building its Laplacian (scipy.sparse), against networkx.

Writes a random edge list (default: 1,000,000 edges on 200,000 nodes) to a temporary
folder and times what `hw2 graph laplacian` does before printing: read the file
(hw2's reader), build D and L = D - A, count the connected components.  The networkx-only
baseline (nx.read_edgelist + nx.laplacian_matrix + nx.number_connected_components) is
slow, so by default it runs on a smaller file (--baseline-edges), interleaved with the
new path on that same file, and the ratio is printed.  --baseline-edges 0 runs it on the
big file too.

    python benchmarks/bench_graph_sparse.py [--edges 1000000] [--nodes 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw2cli.graph.io import read_edgelist  # noqa: E402
from hw2cli.graph.matrices import components, laplacian  # noqa: E402


def write_random_edgelist(path: Path, edges: int, nodes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, nodes, size=(edges, 2))
    with open(path, "w") as fh:
        fh.write(f"# random graph: {edges} edges on up to {nodes} nodes, seed {seed}\n")
        fh.write("\n".join(f"{u} {v}" for u, v in pairs.tolist()))
        fh.write("\n")


def new_path(path: Path) -> dict[str, float]:
    """The hw2 path: hw2's reader -> sparse A, L = D - A, csgraph components."""
    t0 = time.perf_counter()
    graph = read_edgelist(path)
    t1 = time.perf_counter()
    lap = laplacian(graph.adjacency)
    t2 = time.perf_counter()
    comps = components(graph.adjacency, directed=False)
    t3 = time.perf_counter()
    assert lap.shape == (graph.n, graph.n)
    return {
        "read": t1 - t0,
        "laplacian": t2 - t1,
        "components": t3 - t2,
        "total": t3 - t0,
        "nodes": graph.n,
        "edges": graph.n_edges,
        "components_count": comps.count,
    }


def networkx_path(path: Path) -> dict[str, float]:
    """The networkx-only baseline doing the same work."""
    import networkx as nx

    t0 = time.perf_counter()
    g = nx.read_edgelist(path, nodetype=int)
    t1 = time.perf_counter()
    lap = nx.laplacian_matrix(g, nodelist=sorted(g.nodes))
    t2 = time.perf_counter()
    count = nx.number_connected_components(g)
    t3 = time.perf_counter()
    assert lap.shape[0] == g.number_of_nodes()
    return {
        "read": t1 - t0,
        "laplacian": t2 - t1,
        "components": t3 - t2,
        "total": t3 - t0,
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "components_count": count,
    }


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument(
        "--baseline-edges",
        type=int,
        default=100_000,
        help="size of the file for the networkx comparison (0: the big file)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, python "
        f"{platform.python_version()}, numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.txt"
        write_random_edgelist(big, args.edges, args.nodes)
        runs = [new_path(big) for _ in range(args.repeats)]
        r = runs[0]
        print(
            f"\nbig file: {args.edges:,} lines -> {r['nodes']:,} nodes, {r['edges']:,} distinct edges, "
            f"{r['components_count']:,} components"
        )
        print(
            f"hw2 (np.loadtxt + scipy.sparse), median of {args.repeats}: read {median(runs, 'read'):.2f} s, "
            f"Laplacian {median(runs, 'laplacian'):.3f} s, components {median(runs, 'components'):.3f} s, "
            f"total {median(runs, 'total'):.2f} s"
        )

        small = big
        if args.baseline_edges:
            small = Path(tmp) / "small.txt"
            write_random_edgelist(
                small, args.baseline_edges, max(2, args.nodes * args.baseline_edges // args.edges), seed=1
            )
        new_runs, nx_runs = [], []
        for _ in range(args.repeats):  # interleaved, so shared-machine load hits both alike
            nx_runs.append(networkx_path(small))
            new_runs.append(new_path(small))
        assert (nx_runs[0]["nodes"], nx_runs[0]["edges"], nx_runs[0]["components_count"]) == (
            new_runs[0]["nodes"],
            new_runs[0]["edges"],
            new_runs[0]["components_count"],
        ), "the two paths disagree"
        n_new, n_nx = median(new_runs, "total"), median(nx_runs, "total")
        lines = args.baseline_edges or args.edges
        print(
            f"\nbaseline file: {lines:,} lines -> {new_runs[0]['nodes']:,} nodes, "
            f"{new_runs[0]['edges']:,} distinct edges (both paths agree)"
        )
        print(
            f"networkx only (read_edgelist + laplacian_matrix + components): {n_nx:.2f} s "
            f"(read {median(nx_runs, 'read'):.2f}, Laplacian {median(nx_runs, 'laplacian'):.2f}, "
            f"components {median(nx_runs, 'components'):.2f})"
        )
        print(f"hw2 path on the same file: {n_new:.3f} s")
        print(f"speed-up: {n_nx / n_new:.1f}x")


if __name__ == "__main__":
    main()
