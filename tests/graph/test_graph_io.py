"""Reading edge lists, matrices and feature tables: formats, node order, errors; edge lists
checked against networkx's own reader."""

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


def test_integer_labels_sorted_numerically_comments_and_blank_lines(tmp_path):
    path = _write(tmp_path, "# a comment\n10 2\n\n2 9   # trailing comment\n   \n9 10\n")
    g = read_edgelist(path)
    assert g.nodes == [2, 9, 10]
    assert g.adjacency.toarray().tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    assert g.n_edges == 3 and not g.directed and not g.weighted


def test_names_keep_order_of_first_appearance(tmp_path):
    g = read_edgelist(_write(tmp_path, "carol alice\nbob carol\nalice dave 2.5\n"))
    assert g.nodes == ["carol", "alice", "bob", "dave"]
    a = g.adjacency.toarray()
    assert a[1, 3] == a[3, 1] == 2.5 and a[0, 1] == 1 and g.weighted


def test_repeated_edge_keeps_last_weight_and_directed(tmp_path):
    text = "1 2 3\n2 1 5\n2 3\n"
    und = read_edgelist(_write(tmp_path, text))
    assert und.adjacency.toarray().tolist() == [[0, 5, 0], [5, 0, 1], [0, 1, 0]]
    assert und.n_edges == 2
    di = read_edgelist(_write(tmp_path, text), directed=True)
    assert di.adjacency.toarray().tolist() == [[0, 3, 0], [5, 0, 1], [0, 0, 0]]
    assert di.n_edges == 3


def networkx_reads(path, directed: bool = False):
    """The independent reference: networkx's own edge-list reader (integer labels when all
    are integers, sorted; names in order of first appearance)."""
    lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
    lines = [line for line in lines if line.strip()]
    tokens = {t for line in lines for t in line.split()[:2]}
    nodetype = int if all(t.lstrip("-").isdigit() for t in tokens) else str
    graph = nx.parse_edgelist(
        [f"{line} 1" if len(line.split()) == 2 else line for line in lines],
        nodetype=nodetype,
        data=(("weight", float),),
        create_using=nx.DiGraph if directed else nx.Graph,
    )
    nodes = sorted(graph.nodes) if nodetype is int else list(graph.nodes)
    return nodes, nx.to_numpy_array(graph, nodelist=nodes), graph.number_of_edges()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("directed", [False, True])
def test_random_edge_lists_read_as_networkx_reads_them(tmp_path, seed, directed):
    """Random files with repeats, reversed repeats, self-loops, weights on some lines only."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(300):
        u, v = rng.integers(0, 60, 2)
        lines.append(f"{u} {v}" if rng.random() < 0.5 else f"{u} {v} {rng.integers(1, 5)}")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    graph = read_edgelist(path, directed)
    nodes, expected, n_edges = networkx_reads(path, directed)
    assert graph.nodes == nodes
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected)
    assert graph.n_edges == n_edges


def test_integer_weights_and_labels_beyond_int64(tmp_path):
    g = read_edgelist(_write(tmp_path, "1 2 3\n2 3 4\n"))
    assert g.adjacency.toarray().tolist() == [[0, 3, 0], [3, 0, 4], [0, 4, 0]]
    big = 2**70
    g = read_edgelist(_write(tmp_path, f"{big} 5\n5 -1\n"))
    assert g.nodes == [-1, 5, big]


def test_names_read_as_networkx_reads_them(tmp_path):
    rng = np.random.default_rng(3)
    names = [f"n{k}" for k in rng.permutation(40)]
    lines = [f"{names[u]} {names[v]}" for u, v in rng.integers(0, 40, (120, 2))]
    path = _write(tmp_path, "\n".join(lines))
    graph = read_edgelist(path)
    nodes, expected, _ = networkx_reads(path)
    assert graph.nodes == nodes
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected)


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
def test_bad_edge_lists_name_the_line(tmp_path, text, match):
    with pytest.raises(Hw2Error, match=match):
        read_edgelist(_write(tmp_path, text))


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
