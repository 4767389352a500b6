"""`hw2 graph ...` end to end: printed tables, --json/--npz content, exit codes, bad input,
the large-graph summary, and that no graph command imports torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.graph.io import read_npz

runner = CliRunner()
G1 = "hw2cli/examples/graph1.txt"
G2 = "hw2cli/examples/graph2.txt"
WRONG_L = "hw2cli/examples/graph2_laplacian_wrong.txt"


def _ok(*args: str):
    result = runner.invoke(app, ["graph", *args])
    assert result.exit_code == 0, result.output + str(result.exception)
    return result.stdout


def test_powers_prints_matrices_walks_and_degrees(tmp_path):
    out = _ok(
        "powers",
        G1,
        "--max-power",
        "3",
        "--walks",
        "1",
        "3",
        "--length",
        "3",
        "--json",
        str(tmp_path / "p.json"),
    )
    assert "A²: entry [i, j] = number of walks of length 2 from i to j" in out
    assert "diag(A²) = (2, 2, 3, 1) = the degrees ✓" in out
    assert "4 walks, and (A³)[1, 3] = 4 ✓" in out
    for w in ("1 → 2 → 1 → 3", "1 → 3 → 1 → 3", "1 → 3 → 2 → 3", "1 → 3 → 4 → 3"):  # by hand
        assert w in out
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["command"] == "graph powers" and data["nodes"] == [1, 2, 3, 4]
    assert data["adjacency"] == [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]]
    a = np.array(data["adjacency"])
    assert data["powers"]["2"] == (a @ a).tolist() and data["powers"]["3"] == (a @ a @ a).tolist()
    assert data["walks"]["count"] == data["walks"]["matrix_entry"] == 4 and len(data["walks"]["walks"]) == 4
    assert data["degrees"] == [2, 2, 3, 1] and data["n_edges"] == 4 and data["components"] == 1


def test_powers_from_nested_list_matrix_and_walk_cap(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("[[0,1,1],[1,0,1],[1,1,0]]")
    out = _ok("powers", "--matrix", str(path), "--walks", "1", "2", "--length", "12", "--max-walks", "10")
    assert "there are 1,365 of them = (A¹²)[1, 2]; listing is capped at 10" in out  # (2^12 - 1) / 3


def test_laplacian_json_and_features(tmp_path):
    feats = tmp_path / "x.csv"
    feats.write_text("x\n1\n2\n3\n4\n0\n")
    out = _ok(
        "laplacian",
        G2,
        "--normalized",
        "--features",
        str(feats),
        "--json",
        str(tmp_path / "l.json"),
        "--npz",
        str(tmp_path / "l.npz"),
    )
    assert "eigenvalue 0 has multiplicity 1 = number of connected components (graph search: 1) ✓" in out
    assert "(4−1) + (4−3) + (4−0) = 8" in out
    data = json.loads((tmp_path / "l.json").read_text())
    g = nx.read_edgelist(G2, nodetype=int)
    nodes = data["nodes"]
    assert data["laplacian"] == nx.laplacian_matrix(g, nodelist=nodes).toarray().tolist()
    assert data["degree_matrix"] == np.diag([d for _, d in g.degree(nodes)]).tolist()
    np.testing.assert_allclose(data["eigenvalues"]["values"], np.sort(nx.laplacian_spectrum(g)), atol=1e-9)
    assert data["eigenvalues"]["zero_count"] == data["components"] == 1
    np.testing.assert_allclose(
        data["normalized_laplacian"], nx.normalized_laplacian_matrix(g, nodelist=nodes).toarray(), atol=1e-12
    )
    assert data["features"]["LX"] == data["features"]["neighbour_sums"] == [[-6], [0], [2], [8], [-4]]
    names, mats = read_npz(tmp_path / "l.npz")
    assert names == ["1", "2", "3", "4", "5"] and set(mats) == {"A", "D", "L", "L_sym", "X", "LX"}
    assert mats["L"].toarray().tolist() == data["laplacian"]


def test_laplacian_counts_components_of_disconnected_graph(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("1 2\n3 4\n4 5\n6 6\n")
    out = _ok("laplacian", str(path))
    assert "3 connected components" in out
    assert "eigenvalue 0 has multiplicity 3 = number of connected components (graph search: 3) ✓" in out


def test_check_planted_mistakes_exit_1(tmp_path):
    result = runner.invoke(
        app,
        [
            "graph",
            "check",
            G2,
            "--kind",
            "laplacian",
            "--matrix",
            WRONG_L,
            "--json",
            str(tmp_path / "c.json"),
        ],
    )
    assert result.exit_code == 1
    assert "wrong: [3, 3] is 2, should be 3" in result.stdout
    assert "wrong: [3, 5] is -1, should be 0" in result.stdout
    assert "row 3 sums to -2" in result.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["ok"] is False and data["kind"] == "laplacian"
    assert data["wrong_cells"] == [
        {"row": 3, "col": 3, "given": 2, "expected": 3},
        {"row": 3, "col": 5, "given": -1, "expected": 0},
    ]
    assert len(data["problems"]) == 2


def test_check_right_matrix_exit_0(tmp_path):
    path = tmp_path / "a2.txt"
    path.write_text("[[2,1,1,1],[1,2,1,1],[1,1,3,0],[1,1,0,1]]")
    out = _ok("check", G1, "--kind", "power", "--power", "2", "--matrix", str(path))
    assert "all 16 entries of A^2 are right ✓" in out


def test_large_graph_prints_summary_and_keeps_full_matrices(tmp_path):
    g = nx.gnm_random_graph(60, 150, seed=1)
    path = tmp_path / "big.txt"
    nx.write_edgelist(g, path, data=False)
    out = _ok("laplacian", str(path), "--json", str(tmp_path / "b.json"))
    assert "Summary (full matrices: --json / --npz)" in out and "nodes" in out
    assert f"eigenvalue 0 has multiplicity {nx.number_connected_components(g)}" in out
    data = json.loads((tmp_path / "b.json").read_text())
    assert len(data["laplacian"]) == data["n_nodes"] == g.number_of_nodes()
    out = _ok("powers", str(path), "--max-power", "3")
    assert "Powers of A" in out and "trace (closed walks)" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["powers", "nope.txt"], "edge list nope.txt does not exist"),
        (["powers", "EMPTY"], "has no edges"),
        (["powers", "MALFORMED"], "line 3: '2 3 4 5': expected `u v` or `u v weight`"),
        (["powers", "BADWEIGHT"], "line 1: '1 2 heavy': weight 'heavy' is not a number"),
        (["powers", "--matrix", "NONSQUARE"], "is 2x3, not square"),
        (["powers", G1, "--walks", "1", "9"], "'9' is not a node of hw2cli/examples/graph1.txt"),
        (["powers", G1, "--max-power", "0"], "--max-power 0 is out of range"),
        (["powers", G1, "--max-power", "1000000"], "--max-power 1000000 is out of range"),
        (["powers", G1, "--walks", "1", "2", "--length", "0"], "--length 0 is out of range"),
        (["powers"], "give the graph either as an edge-list file EDGES or as --matrix FILE"),
        (["laplacian", G1, "--directed", "--normalized"], "drop --directed or --normalized"),
        (["laplacian", G1, "--features", "NONSQUARE"], "has 2 rows but the graph has 4 nodes"),
        (
            ["check", G1, "--kind", "adjacency", "--matrix", WRONG_L],
            "is 5x5 but the graph hw2cli/examples/graph1.txt has 4 nodes",
        ),
        (["check", G1, "--kind", "power", "--power", "0", "--matrix", WRONG_L], "--power 0 is out of range"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    files = {
        "EMPTY": "",
        "MALFORMED": "# header\n1 2\n2 3 4 5\n",
        "BADWEIGHT": "1 2 heavy\n",
        "NONSQUARE": "0 1 0\n1 0 1\n",
    }
    argv = []
    for arg in args:
        if arg in files:
            (tmp_path / arg).write_text(files[arg])
            arg = str(tmp_path / arg)
        argv.append(arg)
    result = runner.invoke(app, ["graph", *argv])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_graph_commands_do_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from hw2cli.cli import app\n"
        "for argv in (['graph', 'powers', 'hw2cli/examples/graph1.txt', '--walks', '1', '4'],\n"
        "             ['graph', 'laplacian', 'hw2cli/examples/graph2.txt', '--normalized'],\n"
        "             ['graph', 'check', 'hw2cli/examples/graph2.txt', '--kind', 'laplacian', '--matrix', "
        "'hw2cli/examples/graph2_laplacian_wrong.txt']):\n"
        "    try:\n        app(argv, prog_name='hw2')\n    except SystemExit:\n        pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    mods = set(proc.stderr.split())
    assert "hw2cli.graph.walks" in mods and "hw2cli.graph.check" in mods and "scipy.sparse" in mods
    assert "torch" not in mods


def _edited(path, key: str, value):
    """``path``'s JSON with the value at dotted ``key`` replaced (``None``: the key removed)."""
    data = json.loads(path.read_text())
    *parents, last = key.split(".")
    inner = data
    for part in parents:
        inner = inner[int(part)] if isinstance(inner, list) else inner[part]
    last = int(last) if isinstance(inner, list) else last
    if value is None:
        del inner[last]
    else:
        inner[last] = value
    edited = path.with_name("edited.json")
    edited.write_text(json.dumps(data))
    return edited


def test_json_is_read_back_by_recomputing_it(tmp_path):
    """A --json file is read back by recomputing its result from the graph and the options it
    records: the result prints what the command printed (notes included), and an edited
    derived value (a power, a walk count, a Laplacian cell, an eigenvalue, a wrong cell) or a
    missing key is refused naming the field."""
    import io

    from rich.console import Console

    from hw2cli.common.errors import Hw2Error
    from hw2cli.common.schema import load
    from hw2cli.graph import render

    graph = tmp_path / "loops.txt"
    graph.write_text("1 1\n1 2\n2 3\n")
    files = {name: tmp_path / f"{name}.json" for name in ("powers", "laplacian", "check")}
    printed = _ok("powers", str(graph), "--walks", "1", "1", "--length", "2", "--json", str(files["powers"]))
    assert "note: the graph has self-loops" in printed
    _ok("laplacian", str(graph), "--json", str(files["laplacian"]))
    runner.invoke(
        app, ["graph", "check", G2, "--kind", "laplacian", "--matrix", WRONG_L, "--json", str(files["check"])]
    )
    results = {name: load(path, render.from_json, render.to_json, "rerun") for name, path in files.items()}
    console = Console(file=io.StringIO(), width=100, markup=False, highlight=False)
    render.render(results["powers"], console)
    assert console.file.getvalue() == printed
    assert [(c.row, c.col) for c in results["check"].wrong] == [(2, 2), (2, 4)]
    edits = [
        ("powers", "powers.2.0.0", 7, "field powers.2.0.0: is 7, but the rest of the file gives 2"),
        ("powers", "walks.count", 3, "field walks.count: is 3, but the rest of the file gives 2"),
        ("laplacian", "laplacian.1.1", 5, "field laplacian.1.1: is 5"),
        ("laplacian", "eigenvalues.values.2", 9.5, "field eigenvalues.values.2: is 9.5"),
        (
            "check",
            "wrong_cells.0.given",
            7,
            "field wrong_cells.0.given: is 7, but the rest of the file gives 2",
        ),
        ("laplacian", "degree_matrix", None, "field degree_matrix: field required"),
    ]
    for name, key, value, says in edits:
        with pytest.raises(Hw2Error, match=re.escape(says)):
            load(_edited(files[name], key, value), render.from_json, render.to_json, "rerun")


def test_labels_print_as_written(tmp_path):
    """Lines go out as plain text: a label that looks like markup or an emoji code stays as it is."""
    graph, matrix = tmp_path / "g.txt", tmp_path / "a.txt"
    graph.write_text(":smile: [b]\n")
    matrix.write_text("0 1\n0 0\n")
    result = runner.invoke(
        app, ["graph", "check", str(graph), "--kind", "adjacency", "--matrix", str(matrix)]
    )
    assert result.exit_code == 1
    assert "wrong: [[b], :smile:] is 0, should be 1" in result.stdout
