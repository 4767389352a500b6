"""`hw2 graph powers`: (A^k)[i, j] = sum over v1..v(k-1) of A[i,v1] ... A[v(k-1),j] counts the
walks of length k from i to j (each term is 1 exactly for a walk; weighted: weight products)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.graph.io import Graph, load_graph
from hw2cli.graph.matrices import FLOAT64_LIMIT, GraphResult, is_integral, matrix_powers
from hw2cli.graph.options import DEFAULT_MAX_WALKS, PowersOptions


def walk_vectors(a: sp.csr_array, target: int, length: int) -> list[np.ndarray]:
    """[A^r e_target for r = 0..length]: exact Python ints for integer A (no overflow), else float64."""
    exact = is_integral(a)
    dtype = object if exact else np.float64
    data = np.array([int(x) for x in a.data], dtype=object) if exact else a.data  # int64 would wrap at 2^63
    nonempty = np.diff(a.indptr) > 0
    vec = np.zeros(a.shape[0], dtype=dtype)
    vec[target] = 1
    out = [vec]
    for _ in range(length):
        with np.errstate(over="ignore", invalid="ignore"):  # list_walks refuses what overflowed
            terms = data * vec[a.indices]
        vec = np.zeros(a.shape[0], dtype=dtype)
        if len(terms):
            vec[nonempty] = np.add.reduceat(terms, a.indptr[:-1][nonempty])
        out.append(vec)
    return out


@dataclass
class WalkListing:
    """The walks of a given length between two nodes (only their count past the cap)."""

    source: object  # node label
    target: object
    length: int
    count: int  # number of walks (exact)
    matrix_entry: float | int  # (A^length)[source, target]
    walks: list[list] | None  # node-label sequences; None when count > cap
    weights: list[float] | None  # product of edge weights per walk (weighted graphs only)
    cap: int
    weighted: bool

    @property
    def listed(self) -> bool:
        return self.walks is not None


def _too_big(what: str) -> OptionError:
    return OptionError(
        f"{what} beyond the largest float64 (about 1.8e308); use a smaller {{length}} or smaller weights"
    )


def list_walks(
    graph: Graph, source: str, target: str, length: int, cap: int = DEFAULT_MAX_WALKS
) -> WalkListing:
    """Every walk of ``length`` steps from ``source`` to ``target`` (labels as typed), when at
    most ``cap``; the count is always exact. ``length`` and ``cap`` are in the ranges that
    PowersOptions checks."""
    i, j = graph.index(source), graph.index(target)
    a = sp.csr_array(graph.adjacency, copy=True)
    a.eliminate_zeros()  # a zero-weight entry is no edge
    a.sort_indices()  # so that walks come out in node order
    pattern = sp.csr_array((np.ones_like(a.data), a.indices, a.indptr), shape=a.shape)
    reach = walk_vectors(pattern, j, length)  # reach[r][u] = number of r-step walks u -> target
    count = int(reach[length][i])
    entry = (walk_vectors(a, j, length) if graph.weighted else reach)[length][i]  # unweighted: a == pattern
    entry = int(entry) if isinstance(entry, int) else float(entry)
    if not abs(entry) < FLOAT64_LIMIT:  # also NaN (inf - inf)
        raise _too_big(f"(A^{length})[{graph.nodes[i]}, {graph.nodes[j]}] is")
    listing = WalkListing(
        graph.nodes[i], graph.nodes[j], length, count, entry, None, None, cap, graph.weighted
    )
    if count > cap:
        return listing
    walks, weights = [], []

    def extend(path: list[int], weight: float, remaining: int) -> None:
        """Depth first, stepping only where the target is still reachable in the steps left."""
        if remaining == 0:
            walks.append([graph.nodes[x] for x in path])
            weights.append(weight)
            return
        for p in range(a.indptr[path[-1]], a.indptr[path[-1] + 1]):
            if reach[remaining - 1][a.indices[p]] > 0:
                extend([*path, a.indices[p]], weight * a.data[p], remaining - 1)

    with np.errstate(over="ignore"):
        extend([i], 1.0, length)
    if not all(math.isfinite(w) for w in weights):
        raise _too_big(f"a walk of length {length} has a weight product")
    listing.walks, listing.weights = walks, (weights if graph.weighted else None)
    return listing


@dataclass
class PowersResult(GraphResult):
    powers: list  # [A, A^2, ..., A^max_power] (sparse, or dense object arrays of exact ints)
    walks: WalkListing | None = None
    notes: list[str] = field(default_factory=list)


def run_powers(opts: PowersOptions, reporter: Reporter | None = None) -> PowersResult:
    reporter = reporter or Reporter()
    reporter.start("graph", "reading the graph", total=None)
    result = powers_of(load_graph(opts.edges, opts.matrix, opts.directed), opts, reporter)
    reporter.finish("graph")
    return result


def powers_of(graph: Graph, opts: PowersOptions, reporter: Reporter | None = None) -> PowersResult:
    """`hw2 graph powers` on a graph already read (also how its --json is read back)."""
    reporter = reporter or Reporter()
    a = graph.adjacency
    reporter.update("graph", description=f"powers of A up to A^{opts.max_power}")
    powers = matrix_powers(a, opts.max_power)
    listing = None
    if opts.walks is not None:
        reporter.update("graph", description=f"walks of length {opts.length}")
        listing = list_walks(graph, *opts.walks, opts.length, opts.max_walks)
    notes = []
    if is_integral(a) and getattr(powers[-1], "dtype", None) == np.float64:
        notes.append(
            f"entries of A^{opts.max_power} could exceed 2^62, so they are floating-point numbers (rounded above 2^53)"
        )
    if a.nnz and float(np.max(np.abs(a.data))) > 2**53:
        notes.append(
            "some weights exceed 2^53: they are read as float64 and may be rounded to the nearest float64 "
            "(products and sums of whole numbers stay exact Python integers)"
        )
    if np.any(a.diagonal() != 0):
        notes.append(
            "the graph has self-loops: a loop at i is one walk i -> i of length 1, so diag(A^2) is no "
            "longer just the degree"
        )
    return PowersResult(graph, powers, listing, notes)
