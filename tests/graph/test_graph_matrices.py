"""Every matrix against hand-worked graphs and independent references (networkx, numpy,
scipy.sparse.csgraph, brute-force walk enumeration)."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse import csgraph

from hw2cli.common.errors import Hw2Error
from hw2cli.graph.check import run_check
from hw2cli.graph.io import Graph, read_edgelist
from hw2cli.graph.laplacian import run_laplacian
from hw2cli.graph.matrices import (
    components,
    laplacian,
    matrix_powers,
    neighbour_sums,
    normalized_laplacian,
    spectrum,
)
from hw2cli.graph.options import MAX_POWER, CheckOptions, LaplacianOptions, PowersOptions
from hw2cli.graph.walks import list_walks, run_powers

# examples/graph1.txt worked by hand: triangle 1-2-3 with a tail 3-4
A1 = [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]]
A1_SQUARED = [[2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 3, 0], [1, 1, 0, 1]]
A1_CUBED = [[2, 3, 4, 1], [3, 2, 4, 1], [4, 4, 2, 3], [1, 1, 3, 0]]
L1 = [[2, -1, -1, 0], [-1, 2, -1, 0], [-1, -1, 3, -1], [0, 0, -1, 1]]


def _dense(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m, dtype=np.float64)


def _graph(g: nx.Graph, directed=False) -> Graph:
    nodes = sorted(g.nodes)
    return Graph(
        nodes, sp.csr_array(nx.to_scipy_sparse_array(g, nodelist=nodes, dtype=float)), directed, "test"
    )


def test_hand_worked_example_graph1():
    result = run_powers(PowersOptions("hw2cli/examples/graph1.txt", max_power=3))
    assert result.graph.nodes == [1, 2, 3, 4]
    assert [_dense(m).tolist() for m in result.powers] == [A1, A1_SQUARED, A1_CUBED]
    assert result.degrees.tolist() == [2, 2, 3, 1] == np.diag(A1_SQUARED).tolist()
    lap = run_laplacian(LaplacianOptions("hw2cli/examples/graph1.txt"))
    assert lap.degree_matrix.toarray().tolist() == np.diag([2, 2, 3, 1]).tolist()
    assert lap.laplacian.toarray().tolist() == L1
    assert lap.components.count == 1 and lap.spectrum.zero_count == 1


@pytest.mark.parametrize(
    "graph, eigenvalues",
    [
        (nx.path_graph(3), [0, 1, 3]),
        (nx.complete_graph(4), [0, 4, 4, 4]),
        (nx.cycle_graph(4), [0, 2, 2, 4]),
        (nx.star_graph(3), [0, 1, 1, 4]),
    ],
)
def test_known_laplacian_spectra(graph, eigenvalues):
    spec = spectrum(laplacian(_graph(graph).adjacency), symmetric=True)
    np.testing.assert_allclose(spec.values, eigenvalues, atol=1e-10)
    assert spec.complete and spec.zero_count == 1


@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_match_networkx_and_csgraph(seed):
    """Sparse-ish random graphs, often disconnected, some with weights."""
    g = nx.gnp_random_graph(25, 0.08, seed=seed)
    if seed % 2:
        rng = np.random.default_rng(seed)
        for u, v in g.edges:
            g.edges[u, v]["weight"] = float(rng.integers(1, 4))
    graph = _graph(g)
    nodes = graph.nodes
    a = graph.adjacency
    np.testing.assert_array_equal(_dense(a), nx.to_numpy_array(g, nodelist=nodes))
    lap = laplacian(a)
    np.testing.assert_array_equal(lap.toarray(), nx.laplacian_matrix(g, nodelist=nodes).toarray())
    np.testing.assert_allclose(lap.toarray(), csgraph.laplacian(a.toarray()))
    np.testing.assert_allclose(
        normalized_laplacian(a).toarray(),
        nx.normalized_laplacian_matrix(g, nodelist=nodes).toarray(),
        atol=1e-12,
    )
    spec = spectrum(lap, symmetric=True)
    np.testing.assert_allclose(spec.values, np.sort(nx.laplacian_spectrum(g)), atol=1e-9)
    assert spec.zero_count == components(a, False).count == nx.number_connected_components(g)
    assert spectrum(normalized_laplacian(a), symmetric=True).zero_count == spec.zero_count
    powers = matrix_powers(a, 4)
    for k, m in enumerate(powers, start=1):
        np.testing.assert_array_equal(
            _dense(m), np.linalg.matrix_power(nx.to_numpy_array(g, nodelist=nodes), k)
        )


def test_directed_laplacian_uses_out_degree_like_networkx():
    g = nx.gnp_random_graph(12, 0.25, seed=5, directed=True)
    graph = _graph(g, directed=True)
    np.testing.assert_array_equal(
        laplacian(graph.adjacency).toarray(), nx.laplacian_matrix(g, nodelist=graph.nodes).toarray()
    )
    assert components(graph.adjacency, True).count == nx.number_weakly_connected_components(g)


def test_sparse_eigsh_matches_dense_smallest():
    g = nx.connected_watts_strogatz_graph(300, 6, 0.2, seed=0)
    lap = laplacian(_graph(g).adjacency)
    full = spectrum(lap, symmetric=True)
    few = spectrum(lap, symmetric=True, k=5)
    assert not few.complete and len(few.values) == 5
    np.testing.assert_allclose(few.values, full.values[:5], atol=1e-6)
    # a fixed start vector: the same numbers every time (a --json file is read back by recomputing)
    assert np.array_equal(spectrum(lap, symmetric=True, k=5).values, few.values)


def test_powers_stay_exact_where_int64_would_overflow():
    a = sp.csr_array(nx.to_scipy_sparse_array(nx.complete_graph(40), dtype=float))
    top = matrix_powers(a, 20)[-1]
    # (A^k)[i, i] for K_n: ((n-1)^k + (n-1)(-1)^k) / n, far beyond 2^63 for n=40, k=20
    assert top[0, 0] == (39**20 + 39) // 40
    assert top[0, 0] > 2**63


def test_big_graph_powers_fall_back_to_float_with_a_note(tmp_path):
    path, w = tmp_path / "path.txt", 3037000500  # w^2 > 2^63: int64 would wrap
    path.write_text("".join(f"{i} {i + 1} {w}\n" for i in range(201)))  # past the 200 nodes of exact ints
    result = run_powers(PowersOptions(str(path), max_power=3))
    assert result.powers[-1].dtype == np.float64
    assert result.powers[1][0, 2] == pytest.approx(w**2, rel=1e-12)  # the one walk 0 -> 1 -> 2
    assert result.powers[-1][0, 1] == pytest.approx(2 * w**3, rel=1e-12)  # 0-1-0-1 and 0-1-2-1
    assert any("floating-point" in note for note in result.notes)


def test_power_range_is_checked_by_the_options():
    """The options are the one place the ranges are checked: every library caller builds them."""
    for bad in (0, -1, MAX_POWER + 1, 10**9):
        for field in ("max_power", "length"):
            with pytest.raises(Hw2Error, match=f"{field} {bad:,} is out of range"):
                PowersOptions("g.txt", **{field: bad})
        with pytest.raises(Hw2Error, match=f"power {bad:,} is out of range"):
            CheckOptions("g.txt", "m.txt", "power", bad)


def _brute_force_walks(adj: np.ndarray, i: int, j: int, k: int) -> list[tuple]:
    n = len(adj)
    out = []
    for middle in itertools.product(range(n), repeat=k - 1):
        walk = (i, *middle, j)
        if all(adj[walk[t], walk[t + 1]] for t in range(k)):
            out.append(walk)
    return out


@pytest.mark.parametrize("directed", [False, True])
def test_walk_listing_matches_matrix_power_and_brute_force(directed):
    g = nx.gnp_random_graph(7, 0.4, seed=11, directed=directed)
    graph = _graph(g, directed)
    adj = graph.adjacency.toarray()
    for k in (1, 2, 3, 4):
        power = np.linalg.matrix_power(adj, k)
        for i, j in itertools.product(range(7), repeat=2):
            listing = list_walks(graph, str(i), str(j), k)
            assert listing.count == listing.matrix_entry == power[i, j]
            assert [tuple(w) for w in listing.walks] == _brute_force_walks(adj, i, j, k)


def test_weighted_walks_sum_of_weight_products(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("a b 2\nb c 3\na c 0.5\n")
    graph = read_edgelist(path)
    listing = list_walks(graph, "a", "c", 3)
    a = graph.adjacency.toarray()
    assert [w for w in listing.walks] == [list("abac"), list("acac"), list("acbc")]  # by hand
    assert listing.count == 3
    assert listing.count == np.linalg.matrix_power((a != 0).astype(int), 3)[0, 2]
    assert sum(listing.weights) == pytest.approx(np.linalg.matrix_power(a, 3)[0, 2])
    assert listing.matrix_entry == pytest.approx(np.linalg.matrix_power(a, 3)[0, 2])


def test_walk_listing_cap_and_bad_endpoint():
    graph = _graph(nx.complete_graph(6))
    listing = list_walks(graph, "0", "1", 8, cap=100)
    assert not listing.listed and listing.count == (5**8 - (-1) ** 8) // 6
    with pytest.raises(Hw2Error, match=r"'9' is not a node .*nodes: 0, 1, 2, 3, 4, 5"):
        list_walks(graph, "0", "9", 2)
    with pytest.raises(Hw2Error, match="max_walks 0 is out of range"):
        PowersOptions("g.txt", walks=("0", "1"), max_walks=0)


def test_neighbour_sums_equal_laplacian_times_features():
    g = nx.gnp_random_graph(15, 0.3, seed=2)
    for u, v in g.edges:
        g.edges[u, v]["weight"] = 1.0 + (u + v) % 3
    a = _graph(g).adjacency
    x = np.random.default_rng(0).standard_normal((15, 3))
    expected = np.array(
        [
            [sum(g.edges[i, j]["weight"] * (x[i, c] - x[j, c]) for j in g[i]) for c in range(3)]
            for i in range(15)
        ]
    )
    np.testing.assert_allclose(neighbour_sums(a, x), expected)
    np.testing.assert_allclose(laplacian(a) @ x, expected)


def test_check_finds_planted_mistakes():
    result = run_check(
        CheckOptions("hw2cli/examples/graph2.txt", "hw2cli/examples/graph2_laplacian_wrong.txt", "laplacian")
    )
    assert not result.ok
    assert {(c.row, c.col, c.given, c.expected) for c in result.wrong} == {
        (2, 2, 2.0, 3.0),
        (2, 4, -1.0, 0.0),
    }
    assert any("not symmetric" in p and "[3,5]=-1 vs [5,3]=0" in p for p in result.problems)
    assert any("row 3 sums to -2" in p for p in result.problems)


@pytest.mark.parametrize(
    "kind, power", [("adjacency", None), ("power", 2), ("power", 3), ("degree", None), ("laplacian", None)]
)
def test_check_accepts_right_matrices_and_flags_structure(tmp_path, kind, power):
    g = nx.Graph([(1, 2), (2, 3), (3, 4), (4, 1), (1, 3), (4, 5)])  # examples/graph2.txt
    a = nx.to_numpy_array(g, nodelist=[1, 2, 3, 4, 5])
    right = {
        "adjacency": a,
        "power": np.linalg.matrix_power(a, power or 1),
        "degree": np.diag(a.sum(1)),
        "laplacian": np.diag(a.sum(1)) - a,
    }[kind]
    path = tmp_path / "m.txt"
    path.write_text("\n".join(" ".join(f"{v:g}" for v in row) for row in right))
    result = run_check(CheckOptions("hw2cli/examples/graph2.txt", str(path), kind, power))
    assert result.ok and not result.wrong and not result.problems
    bad = right.copy()
    bad[0, 0] += 1  # breaks the zero diagonal of A / the row sums of L
    bad[0, 1] += 1
    path.write_text("\n".join(" ".join(f"{v:g}" for v in row) for row in bad))
    result = run_check(CheckOptions("hw2cli/examples/graph2.txt", str(path), kind, power))
    assert {(c.row, c.col) for c in result.wrong} == {(0, 0), (0, 1)}
    assert any("not symmetric" in p for p in result.problems)
    if kind == "adjacency":
        assert any("non-zero diagonal at node(s) 1" in p for p in result.problems)
        assert any("other than 0 and 1" in p for p in result.problems)
    if kind == "laplacian":
        assert any("row 1 sums to 2" in p for p in result.problems)
    if kind == "degree":
        assert any("off the diagonal" in p for p in result.problems)
