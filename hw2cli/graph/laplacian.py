"""`hw2 graph laplacian`: D, L = D - A, its spectrum and L X. x^T L x = sum over edges of
w (x_i - x_j)^2 vanishes exactly on vectors constant per component, so the multiplicity of
eigenvalue 0 counts the components; the command shows it beside a graph search's count."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.graph.io import Graph, load_graph, read_table
from hw2cli.graph.matrices import (
    DENSE_EIG_MAX_NODES,
    GraphResult,
    Spectrum,
    degree_matrix,
    laplacian,
    neighbour_sums,
    normalized_laplacian,
    spectrum,
)
from hw2cli.graph.options import LaplacianOptions


@dataclass
class Features:
    x: np.ndarray  # n x f node features, in node order
    names: list[str]  # feature column names
    lx: np.ndarray  # L @ X
    neighbour_sums: np.ndarray  # sum_j A[i,j] (x_i - x_j), computed edge by edge


@dataclass
class LaplacianResult(GraphResult):
    degree_matrix: sp.csr_array
    laplacian: sp.csr_array
    normalized: sp.csr_array | None
    spectrum: Spectrum | None  # None when skipped (eigs 0, or a large graph without eigs)
    normalized_spectrum: Spectrum | None
    features: Features | None


def read_features(path: str | os.PathLike, graph: Graph) -> tuple[np.ndarray, list[str]]:
    x, names = read_table(path, "feature table", header=True)
    if x.shape[0] != graph.n:
        raise Hw2Error(
            f"feature table {path} has {x.shape[0]} rows but the graph has {graph.n} nodes; write one row "
            "per node, in node order"
        )
    return x, names or ([f"x{c + 1}" for c in range(x.shape[1])] if x.shape[1] > 1 else ["x"])


def run_laplacian(opts: LaplacianOptions, reporter: Reporter | None = None) -> LaplacianResult:
    reporter = reporter or Reporter()
    reporter.start("graph", "reading the graph", total=None)
    graph = load_graph(opts.edges, opts.matrix, opts.directed)
    features = read_features(opts.features, graph) if opts.features is not None else None
    result = laplacian_of(graph, opts, features, reporter)
    reporter.finish("graph")
    return result


def laplacian_of(
    graph: Graph,
    opts: LaplacianOptions,
    features: tuple[np.ndarray, list[str]] | None = None,
    reporter: Reporter | None = None,
) -> LaplacianResult:
    """`hw2 graph laplacian` on a graph (and features) already read; also how --json is read back."""
    reporter = reporter or Reporter()
    reporter.update("graph", description="building D and L")
    a, eigs = graph.adjacency, opts.eigs
    lap = laplacian(a)
    norm = normalized_laplacian(a) if opts.normalized else None
    spec = norm_spec = None
    if eigs != 0 and (eigs is not None or graph.n <= DENSE_EIG_MAX_NODES):
        reporter.update("graph", description="eigenvalues of L")
        k = eigs if eigs is not None and eigs < graph.n - 1 else None
        spec = spectrum(lap, symmetric=not graph.directed, k=k)
        norm_spec = spectrum(norm, symmetric=True, k=k) if norm is not None else None
    if features is not None:
        x, names = features
        features = Features(x, names, np.asarray(lap @ x), neighbour_sums(a, x))
    return LaplacianResult(graph, degree_matrix(a), lap, norm, spec, norm_spec, features)
