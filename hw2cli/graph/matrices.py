"""A graph's matrices, sparse so that a million edges stay cheap (only small graphs go dense).
networkx's conventions: degree = row sum of A (out-degree when directed, weighted, a self-loop
once); L = D - A; the normalized Laplacian D^-1/2 L D^-1/2 has zero rows at isolated nodes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError
from hw2cli.graph.io import Graph

#: Spectra of graphs up to this many nodes are computed densely (all eigenvalues).
DENSE_EIG_MAX_NODES = 2000
#: Refuse a sparse product that could hold more non-zeros than this.
MAX_PRODUCT_NNZ = 50_000_000
#: Eigenvalues with |lambda| below this (times the largest |lambda|, at least 1) count as zero.
ZERO_TOL = 1e-8
FLOAT64_LIMIT = 2**1024


def is_integral(a: sp.sparray) -> bool:
    return bool(np.all(a.data == np.round(a.data)))


def _beyond_float64(m) -> bool:
    values = m.data if sp.issparse(m) else m
    if values.dtype == object:
        return any(abs(x) >= FLOAT64_LIMIT for x in values.flat)
    return not np.all(np.isfinite(values))


def matrix_powers(a: sp.csr_array, max_power: int, field: str = "max_power") -> list:
    """[A, A^2, ..., A^max_power]: exact for integer A (int64 where nothing can overflow, else
    Python ints for up to 200 nodes), else float64. A product that could exceed MAX_PRODUCT_NNZ
    non-zeros, or an entry beyond float64's range, is refused naming option ``field`` (its
    range is the options' to check)."""
    n = a.shape[0]
    growth = float(abs(a).sum(axis=1).max()) if a.nnz else 0.0  # max |row sum| bounds entry growth
    if is_integral(a) and growth < 2 ** (62 / max_power):  # every entry of A^max_power fits in int64
        base = sp.csr_array(a.astype(np.int64))
    elif is_integral(a) and n <= 200:  # exact Python ints: int64 would wrap at 2^63 (1e19 -> negative)
        base = np.vectorize(int, otypes=[object])(a.toarray())
    else:
        base = sp.csr_array(a)
    out = [base]
    for k in range(2, max_power + 1):
        prev = out[-1]
        if sp.issparse(prev):
            # nnz(P @ B) <= sum over k of (entries in column k of P) * (entries in row k of B)
            counts = np.bincount(prev.indices, minlength=n).astype(np.int64) * np.diff(base.indptr)
            bound = min(int(counts.sum()), n * n)
            if bound > MAX_PRODUCT_NNZ:
                raise OptionError(
                    f"A^{k} of this {n}-node graph could have up to {bound:,} non-zeros, too many to "
                    f"hold; lower {{{field}}} to {k - 1}"
                )
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                out.append(sp.csr_array(prev @ base))
        else:
            out.append(prev.dot(base))
        if _beyond_float64(out[-1]):
            raise OptionError(
                f"A^{k} has entries beyond the largest float64 (about 1.8e308); use {{{field}}} {k - 1} or "
                "smaller weights"
            )
    return out


def degrees(a: sp.csr_array) -> np.ndarray:
    return np.asarray(a.sum(axis=1)).ravel()


def degree_matrix(a: sp.csr_array) -> sp.csr_array:
    return sp.csr_array(sp.diags_array(degrees(a)))


def laplacian(a: sp.csr_array) -> sp.csr_array:
    return sp.csr_array(degree_matrix(a) - a)


def normalized_laplacian(a: sp.csr_array) -> sp.csr_array:
    """D^-1/2 L D^-1/2; zero rows at isolated nodes (as networkx), so the multiplicity of
    eigenvalue 0 still counts the components."""
    d = degrees(a)
    if np.any(d < 0):
        raise Hw2Error(
            "the normalized Laplacian needs non-negative degrees, but some node's weights sum below 0; "
            "use non-negative weights"
        )
    s = sp.diags_array(np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0))
    return sp.csr_array(s @ laplacian(a) @ s)


@dataclass
class Components:
    count: int
    sizes: list[int]  # largest first


def components(a: sp.csr_array, directed: bool) -> Components:
    """Connected components (weakly connected when directed)."""
    count, labels = csgraph.connected_components(a, directed=directed, connection="weak")
    sizes = np.bincount(labels, minlength=count)
    return Components(int(count), sorted(sizes.tolist(), reverse=True))


@dataclass
class GraphResult:
    """What the powers and laplacian results share."""

    graph: Graph

    @cached_property
    def degrees(self) -> np.ndarray:
        return degrees(self.graph.adjacency)

    @cached_property
    def components(self) -> Components:
        return components(self.graph.adjacency, self.graph.directed)


def _is_zero(values: np.ndarray) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(values)))) if len(values) else 1.0
    return np.abs(values) < ZERO_TOL * scale


@dataclass
class Spectrum:
    values: np.ndarray  # ascending by real part; complex only for a directed graph
    complete: bool  # all n eigenvalues (dense) or only the k smallest (ARPACK)

    @property
    def zero_count(self) -> int:
        return int(np.count_nonzero(_is_zero(self.values)))


def spectrum(lap: sp.csr_array, symmetric: bool, k: int | None = None) -> Spectrum:
    """All eigenvalues of L (dense, up to DENSE_EIG_MAX_NODES nodes) when ``k`` is None, else the
    ``k`` (1 to n - 2) smallest (eigsh, symmetric L only, from a fixed start: the same graph, the
    same numbers)."""
    n = lap.shape[0]
    if k is None or (n <= DENSE_EIG_MAX_NODES and k >= n - 1):
        if n > DENSE_EIG_MAX_NODES:
            raise OptionError(
                f"all {n} eigenvalues of this graph are too costly; pass {{eigs}} K for the K smallest"
            )
        dense = lap.toarray()
        values = np.linalg.eigvalsh(dense) if symmetric else np.linalg.eigvals(dense)
    else:
        if not symmetric:
            raise OptionError(
                "{eigs} needs an undirected graph (its Laplacian is symmetric); drop {eigs} or {directed}"
            )
        from scipy.sparse.linalg import eigsh

        start = np.random.default_rng(0).standard_normal(n)
        values = eigsh(lap.astype(np.float64), k=k, which="SA", tol=1e-8, v0=start, return_eigenvectors=False)
    if np.iscomplexobj(values) and np.allclose(values.imag, 0, atol=ZERO_TOL):
        values = values.real
    if np.iscomplexobj(values):
        values = values[np.lexsort((values.imag, values.real))]
    else:
        values = np.sort(values)
        values = np.where(_is_zero(values), 0.0, values)
    return Spectrum(values, complete=k is None or k >= n - 1)


def neighbour_sums(a: sp.csr_array, x: np.ndarray) -> np.ndarray:
    """sum_j A[i,j] (x[i] - x[j]) edge by edge, not as L @ X: an independent check of L X."""
    coo = sp.coo_array(a)
    out = np.zeros_like(x, dtype=np.float64)
    np.add.at(out, coo.row, coo.data[:, None] * (x[coo.row] - x[coo.col]))
    return out
