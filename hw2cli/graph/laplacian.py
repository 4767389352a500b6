"""`hw2 graph laplacian`: degree matrix, L = D - A, its spectrum and what L does to features.

The number of connected components of an undirected graph equals the multiplicity of the
eigenvalue 0 of L (L is positive semi-definite; x^T L x = sum over edges of w (x_i - x_j)^2
vanishes exactly for vectors constant on each component).  The command states both counts,
the spectral one and the one found by a graph search (scipy.sparse.csgraph), side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import AfterValidator

from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.graph.io import Graph, load_graph, read_table
from hw2cli.graph.matrices import (
    DENSE_EIG_MAX_NODES,
    Components,
    Spectrum,
    components,
    degree_matrix,
    degrees,
    laplacian,
    neighbour_sums,
    normalized_laplacian,
    spectrum,
)
from hw2cli.graph.options import LaplacianOptions

#: A float array, read back (hw2cli.common.readback) from the nested lists of a --json file.
FloatArray = Annotated[list[list[float]], AfterValidator(lambda rows: np.asarray(rows, dtype=np.float64))]


@dataclass
class Features:
    x: FloatArray  # n x f node features, in node order
    names: list[str]  # feature column names
    lx: FloatArray  # L @ X
    neighbour_sums: FloatArray  # sum_j A[i,j] (x_i - x_j), computed edge by edge


@dataclass
class LaplacianResult:
    graph: Graph
    degrees: np.ndarray
    degree_matrix: sp.csr_array
    laplacian: sp.csr_array
    normalized: sp.csr_array | None
    spectrum: Spectrum | None  # None when skipped (a large graph without eigs)
    normalized_spectrum: Spectrum | None
    components: Components
    features: Features | None


def read_features(path: str | os.PathLike, graph: Graph) -> tuple[np.ndarray, list[str]]:
    """A feature table with one row per node, in node order (optional header row)."""
    x, names = read_table(path, "feature table", header=True)
    if x.shape[0] != graph.n:
        raise Hw2Error(
            f"feature table {path} has {x.shape[0]} rows but the graph has {graph.n} nodes; write one row "
            "per node, in node order"
        )
    names = names or ([f"x{c + 1}" for c in range(x.shape[1])] if x.shape[1] > 1 else ["x"])
    return x, names


def run_laplacian(opts: LaplacianOptions, reporter: Reporter | None = None) -> LaplacianResult:
    """D, L = D - A, the eigenvalues of L (all of them up to DENSE_EIG_MAX_NODES nodes, else
    the ``eigs`` smallest, or none), components, optionally the normalized Laplacian and L X."""
    reporter = reporter or Reporter()
    reporter.start("graph", "reading the graph", total=None)
    graph = load_graph(opts.edges, opts.matrix, opts.directed)
    x, names = read_features(opts.features, graph) if opts.features is not None else (None, None)
    reporter.update("graph", description="building D and L")
    a, eigs = graph.adjacency, opts.eigs
    lap = laplacian(a)
    norm = normalized_laplacian(a) if opts.normalized else None
    spec = norm_spec = None
    if eigs != 0 and (eigs is not None or graph.n <= DENSE_EIG_MAX_NODES):
        reporter.update("graph", description="eigenvalues of L")
        k = eigs if eigs is not None and eigs < graph.n - 1 else None
        spec = spectrum(lap, symmetric=not opts.directed, k=k)
        norm_spec = spectrum(norm, symmetric=True, k=k) if norm is not None else None
    feats = Features(x, names, np.asarray(lap @ x), neighbour_sums(a, x)) if x is not None else None
    reporter.finish("graph")
    comps = components(a, opts.directed)
    return LaplacianResult(graph, degrees(a), degree_matrix(a), lap, norm, spec, norm_spec, comps, feats)
