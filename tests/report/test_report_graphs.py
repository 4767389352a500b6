"""hw2cli/examples/report_graph*: the homework's own graphs and hand answers, checked by `hw2 graph check`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.graph.io import read_table

EX = Path(__file__).resolve().parents[2] / "hw2cli" / "examples"


def check(tmp_path, graph: int, name: str, kind: str):
    out = tmp_path / f"{graph}_{name}.json"
    args = [
        "graph",
        "check",
        str(EX / f"report_graph{graph}.txt"),
        "--kind",
        kind,
        "--matrix",
        str(EX / f"report_graph{graph}_{name}.txt"),
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(out.read_text())


def test_report_graph2_edges_agree_with_its_degree_matrix_and_symmetric_rows():
    printed, _ = read_table(EX / "report_graph2_adjacency.txt", "matrix")
    degree, _ = read_table(EX / "report_graph2_degree.txt", "matrix")
    a = np.zeros((6, 6))
    for line in open(EX / "report_graph2.txt"):
        if line.strip() and not line.startswith("#"):
            u, v = (int(x) - 1 for x in line.split())
            a[u, v] = a[v, u] = 1
    consistent = [0, 1, 3, 4, 5]  # rows 1, 2, 4, 5, 6; row 3 is the broken one
    np.testing.assert_array_equal(a[consistent], printed[consistent])
    np.testing.assert_array_equal(np.diag(a.sum(1)), degree)


def test_right_answers_pass(tmp_path):
    for graph, name, kind in [(1, "adjacency", "adjacency"), (1, "power2", "power"), (2, "degree", "degree")]:
        code, report = check(tmp_path, graph, name, kind)
        assert code == 0 and report["ok"] and not report["wrong_cells"], (graph, name)


def test_graph2_row_3_is_found_wrong(tmp_path):
    code, report = check(tmp_path, 2, "adjacency", "adjacency")
    assert code == 1
    assert [(c["row"], c["col"]) for c in report["wrong_cells"]] == [(3, 2), (3, 3), (3, 4), (3, 5)]
    code, report = check(tmp_path, 2, "laplacian", "laplacian")
    assert code == 1
    assert [(c["row"], c["col"], c["given"], c["expected"]) for c in report["wrong_cells"]] == [
        (3, 4, 0, -1),
        (3, 5, -1, 0),
    ]
