"""Reading edge lists, matrices and feature tables: formats, node order, both engines, errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from hw2cli.common.errors import Hw2Error
from hw2cli.graph.io import (
    graph_from_matrix,
    read_edgelist,
    read_npz,
    read_square_matrix,
    read_table,
    write_npz,
)


def _write(tmp_path, text, name="g.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("engine", ["networkx", "numpy"])
def test_integer_labels_sorted_numerically_comments_and_blank_lines(tmp_path, engine):
    path = _write(tmp_path, "# a comment\n10 2\n\n2 9   # trailing comment\n   \n9 10\n")
    g = read_edgelist(path, engine=engine)
    assert g.nodes == [2, 9, 10]
    assert g.adjacency.toarray().tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    assert g.n_edges == 3 and not g.directed and not g.weighted


@pytest.mark.parametrize("engine", ["networkx", "numpy"])
def test_names_keep_order_of_first_appearance(tmp_path, engine):
    g = read_edgelist(_write(tmp_path, "carol alice\nbob carol\nalice dave 2.5\n"), engine=engine)
    assert g.nodes == ["carol", "alice", "bob", "dave"]
    a = g.adjacency.toarray()
    assert a[1, 3] == a[3, 1] == 2.5 and a[0, 1] == 1 and g.weighted


@pytest.mark.parametrize("engine", ["networkx", "numpy"])
def test_repeated_edge_keeps_last_weight_and_directed(tmp_path, engine):
    text = "1 2 3\n2 1 5\n2 3\n"
    und = read_edgelist(_write(tmp_path, text), engine=engine)
    assert und.adjacency.toarray().tolist() == [[0, 5, 0], [5, 0, 1], [0, 1, 0]]
    assert und.n_edges == 2
    di = read_edgelist(_write(tmp_path, text), directed=True, engine=engine)
    assert di.adjacency.toarray().tolist() == [[0, 3, 0], [5, 0, 1], [0, 0, 0]]
    assert di.n_edges == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("directed", [False, True])
def test_engines_agree_with_networkx_on_random_edge_lists(tmp_path, seed, directed):
    """Random files with repeats, reversed repeats, self-loops, weights on some lines only."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(300):
        u, v = rng.integers(0, 60, 2)
        lines.append(f"{u} {v}" if rng.random() < 0.5 else f"{u} {v} {rng.integers(1, 5)}")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    a = read_edgelist(path, directed, engine="networkx")
    b = read_edgelist(path, directed, engine="numpy")
    assert a.nodes == b.nodes
    assert (a.adjacency != b.adjacency).nnz == 0
    # an independent reference: networkx's own reader on the same lines
    ref = nx.DiGraph() if directed else nx.Graph()
    for line in lines:
        u, v, *w = line.split()
        ref.add_edge(int(u), int(v), weight=float(w[0]) if w else 1.0)
    expected = nx.to_numpy_array(ref, nodelist=sorted(ref.nodes))
    np.testing.assert_array_equal(b.adjacency.toarray(), expected)
    assert b.n_edges == ref.number_of_edges()


@pytest.mark.parametrize("engine", ["networkx", "numpy"])
def test_integer_weights_and_labels_beyond_int64(tmp_path, engine):
    g = read_edgelist(_write(tmp_path, "1 2 3\n2 3 4\n"), engine=engine)
    assert g.adjacency.toarray().tolist() == [[0, 3, 0], [3, 0, 4], [0, 4, 0]]
    big = 2**70
    g = read_edgelist(_write(tmp_path, f"{big} 5\n5 -1\n"), engine=engine)
    assert g.nodes == [-1, 5, big]


def test_numpy_engine_on_names_matches_networkx(tmp_path):
    rng = np.random.default_rng(3)
    names = [f"n{k}" for k in rng.permutation(40)]
    lines = [f"{names[u]} {names[v]}" for u, v in rng.integers(0, 40, (120, 2))]
    path = _write(tmp_path, "\n".join(lines))
    a, b = read_edgelist(path, engine="networkx"), read_edgelist(path, engine="numpy")
    assert a.nodes == b.nodes and (a.adjacency != b.adjacency).nnz == 0


@pytest.mark.parametrize("engine", ["networkx", "numpy"])
@pytest.mark.parametrize(
    "text, match",
    [
        ("1 2\n2 3 4 5\n", r"line 2: '2 3 4 5': expected `u v` or `u v weight`"),
        ("1 2\n\n# c\n7\n", r"line 4: '7'"),
        ("1 2\n2 3 heavy\n", r"line 2: '2 3 heavy': weight 'heavy' is not a number"),
        ("1 2 nan\n", r"line 1: .*must be finite"),
        ("", r"has no edges"),
        ("# only a comment\n\n", r"has no edges"),
    ],
)
def test_bad_edge_lists_name_the_line(tmp_path, engine, text, match):
    with pytest.raises(Hw2Error, match=match):
        read_edgelist(_write(tmp_path, text), engine=engine)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(Hw2Error, match="does not exist"):
        read_edgelist(tmp_path / "nope.txt")
    with pytest.raises(Hw2Error, match="is a directory"):
        read_edgelist(tmp_path)


def test_matrix_formats(tmp_path):
    rows = read_square_matrix(_write(tmp_path, "# A\n0 1 0\n1, 0, 1\n0 1 0\n"))
    nested = read_square_matrix(_write(tmp_path, "[[0,1,0],[1,0,1],[0,1,0]]"))
    np.testing.assert_array_equal(rows, nested)
    g = graph_from_matrix(_write(tmp_path, "[[0,1],[1,0]]"))
    assert g.nodes == [1, 2] and g.n_edges == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("0 1 0\n1 0 1\n", "is 2x3, not square"),
        ("0 1\n1\n", "line 2: '1' has 1 numbers but the first row has 2"),
        ("0 x\n1 0\n", "line 1: '0 x': 'x' is not a number"),
        ("[[0,1],[1,0]", "not a nested list"),
        ("[[0,'a'],[1,0]]", "'a' is not a number"),
        ("\n\n", "has no rows"),
    ],
)
def test_bad_matrices(tmp_path, text, match):
    with pytest.raises(Hw2Error, match=match):
        read_square_matrix(_write(tmp_path, text))


def test_asymmetric_matrix_needs_directed(tmp_path):
    path = _write(tmp_path, "0 1\n0 0\n")
    with pytest.raises(
        Hw2Error, match=r"not symmetric \(row 1, column 2 is 1 but row 2, column 1 is 0\).*pass directed"
    ):
        graph_from_matrix(path)
    assert graph_from_matrix(path, directed=True).n_edges == 1


def test_feature_table_with_header(tmp_path):
    x, names = read_table(_write(tmp_path, "age,score\n1,2.5\n3,4\n"), header=True)
    assert names == ["age", "score"] and x.tolist() == [[1, 2.5], [3, 4]]


def test_npz_round_trip(tmp_path):
    g = read_edgelist(_write(tmp_path, "a b 2\nb c\n"))
    path = write_npz(tmp_path / "out.npz", g.nodes, {"A": g.adjacency, "X": np.eye(3)})
    nodes, mats = read_npz(path)
    assert nodes == ["a", "b", "c"]
    np.testing.assert_array_equal(mats["A"].toarray(), g.adjacency.toarray())
    np.testing.assert_array_equal(mats["X"].toarray(), np.eye(3))
