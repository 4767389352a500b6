"""`hw2 graph check`: compare a hand-written matrix with the right one for a graph.

Two kinds of findings: *wrong cells* (the given value differs from the correct one) and
*structural problems* that the given matrix shows on its own, whatever the graph: an
undirected graph's matrices are symmetric, an adjacency matrix without self-loops has a
zero diagonal and (unweighted) only 0/1 entries, a degree matrix is diagonal, a Laplacian's
rows sum to zero and its off-diagonal entries are <= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError
from hw2cli.graph.io import Graph, read_edgelist, read_square_matrix
from hw2cli.graph.matrices import degree_matrix, laplacian, matrix_powers
from hw2cli.graph.options import KINDS, CheckOptions

#: Values closer than this (relative to 1 + |right|) count as equal.
TOLERANCE = 1e-9
#: Graphs beyond this many nodes are too big to compare densely.
CHECK_MAX_NODES = 2000


@dataclass
class WrongCell:
    row: int  # matrix indices
    col: int
    given: float
    expected: float


@dataclass
class CheckResult:
    graph: Graph
    kind: str
    power: int | None
    given: np.ndarray
    expected: np.ndarray
    wrong: list[WrongCell]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.wrong and not self.problems

    @property
    def title(self) -> str:
        return {"adjacency": "A", "power": f"A^{self.power}", "degree": "D", "laplacian": "L = D - A"}[
            self.kind
        ]


def expected_matrix(graph: Graph, kind: str, power: int = 2) -> np.ndarray:
    """The correct matrix of ``kind`` for ``graph`` (dense)."""
    a = graph.adjacency
    if kind == "adjacency":
        m = a
    elif kind == "power":
        m = matrix_powers(a, power, field="power")[-1]
    elif kind == "degree":
        m = degree_matrix(a)
    elif kind == "laplacian":
        m = laplacian(a)
    else:
        raise OptionError(f"{{kind}} {kind!r} is not one of {', '.join(KINDS)}")
    dense = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
    return dense.astype(np.float64)


def structural_problems(given: np.ndarray, kind: str, graph: Graph) -> list[str]:
    """Problems the given matrix shows by itself (node labels in the messages)."""
    lab = graph.nodes
    out = []
    if not graph.directed:
        pairs = [(i, j) for i, j in np.argwhere(~np.isclose(given, given.T, rtol=0, atol=TOLERANCE)) if i < j]
        if pairs:
            cells = ", ".join(
                f"[{lab[i]},{lab[j]}]={given[i, j]:g} vs [{lab[j]},{lab[i]}]={given[j, i]:g}"
                for i, j in pairs[:10]
            )
            out.append(
                f"not symmetric although the graph is undirected: {cells}{' ...' if len(pairs) > 10 else ''}"
            )
    diag = np.diag(given)
    off = given - np.diag(diag)
    if kind == "adjacency":
        if not np.any(graph.adjacency.diagonal()) and np.any(diag != 0):
            nodes = ", ".join(str(lab[i]) for i in np.flatnonzero(diag))
            out.append(
                f"non-zero diagonal at node(s) {nodes} although the graph has no self-loops (A[i,i] counts loops at i)"
            )
        if not graph.weighted and np.any((given != 0) & (given != 1)):
            out.append("entries other than 0 and 1 in the adjacency matrix of an unweighted graph")
    if kind == "degree" and np.any(off != 0):
        out.append("non-zero entries off the diagonal: a degree matrix is diagonal")
    if kind == "laplacian":
        sums = given.sum(axis=1)
        bad = np.flatnonzero(~np.isclose(sums, 0, rtol=0, atol=TOLERANCE * (1 + np.abs(given).max())))
        if len(bad):
            rows = ", ".join(f"row {lab[i]} sums to {sums[i]:g}" for i in bad)
            out.append(f"rows not summing to zero (each row of L = D - A sums to deg - deg = 0): {rows}")
        if np.any(off > 0):
            out.append(
                "positive entries off the diagonal: L[i,j] = -A[i,j] is never positive for non-negative weights"
            )
    if (
        kind == "power"
        and not graph.directed
        and not np.any(graph.adjacency.diagonal())
        and np.any(given < 0)
    ):
        out.append("negative entries: walk counts are never negative")
    return out


def run_check(opts: CheckOptions) -> CheckResult:
    """Compare the matrix in file ``opts.matrix`` with the correct ``opts.kind`` matrix of the graph."""
    edges, matrix, kind = opts.edges, opts.matrix, opts.kind
    power = (opts.power or 2) if kind == "power" else None
    graph = read_edgelist(edges, opts.directed)
    if graph.n > CHECK_MAX_NODES:
        raise Hw2Error(
            f"the graph has {graph.n} nodes; check compares hand-written matrices of up to {CHECK_MAX_NODES} nodes"
        )
    given = read_square_matrix(matrix, "matrix to check")
    if given.shape[0] != graph.n:
        raise Hw2Error(
            f"matrix {matrix} is {given.shape[0]}x{given.shape[0]} but the graph {edges} has {graph.n} "
            f"nodes; write one row and column per node"
        )
    expected = expected_matrix(graph, kind, power or 2)
    wrong = [
        WrongCell(int(i), int(j), float(given[i, j]), float(expected[i, j]))
        for i, j in np.argwhere(~np.isclose(given, expected, rtol=TOLERANCE, atol=TOLERANCE))
    ]
    return CheckResult(graph, kind, power, given, expected, wrong, structural_problems(given, kind, graph))
