"""`hw2 graph check`: a hand-written matrix against the right one: wrong cells, and the
structural problems the given matrix shows on its own (symmetry, diagonal, row sums, signs)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hw2cli.common.errors import Hw2Error
from hw2cli.graph.io import Graph, read_edgelist, read_square_matrix
from hw2cli.graph.matrices import degree_matrix, laplacian, matrix_powers
from hw2cli.graph.options import CheckOptions

TOLERANCE = 1e-9  # values closer than this (relative to 1 + |right|) count as equal
CHECK_MAX_NODES = 2000
TITLES = {"adjacency": "A", "power": "A^{power}", "degree": "D", "laplacian": "L = D - A"}


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
    problems: list[str]

    @cached_property
    def wrong(self) -> list[WrongCell]:
        close = np.isclose(self.given, self.expected, rtol=TOLERANCE, atol=TOLERANCE)
        given, expected = self.given, self.expected
        return [
            WrongCell(int(i), int(j), float(given[i, j]), float(expected[i, j]))
            for i, j in np.argwhere(~close)
        ]

    @property
    def ok(self) -> bool:
        return not self.wrong and not self.problems

    @property
    def title(self) -> str:
        return TITLES[self.kind].format(power=self.power)


def expected_matrix(graph: Graph, kind: str, power: int | None) -> np.ndarray:
    a = graph.adjacency
    if kind == "power":
        a = matrix_powers(a, power, field="power")[-1]
    elif kind == "degree":
        a = degree_matrix(a)
    elif kind == "laplacian":
        a = laplacian(a)
    return (a.toarray() if hasattr(a, "toarray") else a).astype(np.float64)


def structural_problems(given: np.ndarray, kind: str, graph: Graph) -> list[str]:
    lab, out = graph.nodes, []
    if not graph.directed:
        pairs = [(i, j) for i, j in np.argwhere(~np.isclose(given, given.T, rtol=0, atol=TOLERANCE)) if i < j]
        if pairs:
            cells = ", ".join(
                f"[{lab[i]},{lab[j]}]={given[i, j]:g} vs [{lab[j]},{lab[i]}]={given[j, i]:g}"
                for i, j in pairs[:10]
            )
            more = " ..." if len(pairs) > 10 else ""
            out.append(f"not symmetric although the graph is undirected: {cells}{more}")
    diag = np.diag(given)
    off = given - np.diag(diag)
    loops = np.any(graph.adjacency.diagonal())
    if kind == "adjacency" and not loops and np.any(diag != 0):
        nodes = ", ".join(str(lab[i]) for i in np.flatnonzero(diag))
        out.append(
            f"non-zero diagonal at node(s) {nodes} although the graph has no self-loops (A[i,i] counts loops at i)"
        )
    if kind == "adjacency" and not graph.weighted and np.any((given != 0) & (given != 1)):
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
    if kind == "power" and not graph.directed and not loops and np.any(given < 0):
        out.append("negative entries: walk counts are never negative")
    return out


def run_check(opts: CheckOptions) -> CheckResult:
    power = (opts.power or 2) if opts.kind == "power" else None
    graph = read_edgelist(opts.edges, opts.directed)
    if graph.n > CHECK_MAX_NODES:
        raise Hw2Error(
            f"the graph has {graph.n} nodes; check compares hand-written matrices of up to {CHECK_MAX_NODES} nodes"
        )
    given = read_square_matrix(opts.matrix, "matrix to check")
    if given.shape[0] != graph.n:
        raise Hw2Error(
            f"matrix {opts.matrix} is {given.shape[0]}x{given.shape[0]} but the graph {opts.edges} has "
            f"{graph.n} nodes; write one row and column per node"
        )
    expected = expected_matrix(graph, opts.kind, power)
    return CheckResult(graph, opts.kind, power, given, expected, structural_problems(given, opts.kind, graph))
