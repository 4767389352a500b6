"""Property-based fuzzing (Hypothesis) of every parser of user files and read-backs: edge lists,
matrices (rows and nested lists), node-feature tables, and the JSON and CSV
files read back through hw2cli/common/schema.py.

Two properties: (1) arbitrary text or bytes never raise anything but Hw2Error (one line at the
CLI, never "error: unexpected"); (2) valid generated graphs and matrices round-trip exactly.
CI runs few examples (profile
"ci" in tests/conftest.py, derandomized); scripts/adversarial.py runs many ("thorough").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hw2cli.common import io, rundir, schema  # noqa: E402
from hw2cli.common.errors import Hw2Error  # noqa: E402
from hw2cli.graph.io import (  # noqa: E402
    graph_from_matrix,
    read_edgelist,
    read_square_matrix,
    read_table,
)

pytestmark = pytest.mark.kind("fuzzed parsers")

# Tokens that edge lists and matrices are made of, and their troublemakers.
TOKENS = [
    "1", "2", "3", "-1", "0", "01", "1.5", "1e300", "1e400", "-1e400", "inf", "-inf", "nan", "NaN",
    "9" * 30, "1e-400", "0x1A", "1_000", "a", "b", "é", "\ufeff", "#", "# c", ",", ";", "[", "]",
    "[[", "]]", "(", ")", "\t", "\x00", "\u00b2", "٣", "True", "None", "''", '"x"',
    "\U00020000", "\U000c13a5",  # numpy 2.4's loadtxt read the first as 131024, crashed on the second
]  # fmt: skip
token_lines = st.lists(
    st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=5).map(" ".join), max_size=8
).map("\n".join)
any_text = st.text(max_size=300) | token_lines


def write(folder: Path, data: str | bytes, name: str = "f.txt") -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


def only_hw2_errors(fn, *args, **kwargs):
    """``fn``'s result, or None when it refused the input with Hw2Error (anything else fails)."""
    try:
        return fn(*args, **kwargs)
    except Hw2Error:
        return None


# ----------------------------------------------------------------------------- edge lists


@given(text=any_text | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
@example(text="0\t\x00")  # found by the thorough run: numpy arrays drop a label's trailing NUL
@example(text="\U00020000 1\n\U000c13a5 2\n")  # numpy 2.4's loadtxt: 131024, then SIGSEGV
def test_edge_list_text_only_ever_raises_hw2error(tmp_path, text):
    for directed in (False, True):
        graph = only_hw2_errors(read_edgelist, write(tmp_path, text), directed)
        if graph is not None:
            assert len(set(graph.nodes)) == len(graph.nodes) == graph.adjacency.shape[0]
            if not directed:
                assert (graph.adjacency != graph.adjacency.T).nnz == 0


@given(data=st.binary(max_size=300))
def test_edge_list_bytes_only_ever_raise_hw2error(tmp_path, data):
    only_hw2_errors(read_edgelist, write(tmp_path, data))


weights = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
int_labels = st.integers(min_value=-5, max_value=40)
name_labels = st.text(alphabet="abcXYZ_é", min_size=1, max_size=4)


@given(
    edges=st.one_of(
        st.lists(st.tuples(int_labels, int_labels, weights | st.none()), min_size=1, max_size=25),
        st.lists(st.tuples(name_labels, name_labels, weights | st.none()), min_size=1, max_size=25),
    ),
    directed=st.booleans(),
    bom=st.booleans(),
)
def test_a_generated_graph_round_trips_exactly(tmp_path, edges, directed, bom):
    """Nodes sorted (integers) or in order of first appearance (names), the last weight of a
    repeated edge kept, u v and v u one edge when undirected, weights exact (repr)."""
    lines = [f"{u} {v}" if w is None else f"{u} {v} {w!r}" for u, v, w in edges]
    path = write(tmp_path, ("\ufeff" if bom else "") + "\n".join(lines) + "\n")
    labels = [x for u, v, _ in edges for x in (u, v)]
    nodes = sorted(set(labels)) if isinstance(labels[0], int) else list(dict.fromkeys(labels))
    index = {node: i for i, node in enumerate(nodes)}
    expected = np.zeros((len(nodes), len(nodes)))
    for u, v, w in edges:
        expected[index[u], index[v]] = 1.0 if w is None else w
        if not directed:
            expected[index[v], index[u]] = expected[index[u], index[v]]
    graph = read_edgelist(path, directed)
    assert graph.nodes == nodes
    assert np.array_equal(graph.adjacency.toarray(), expected)


# ----------------------------------------------------------------------------- matrices and tables


@given(text=any_text | st.just("[" * 5000) | st.just("[" * 50 + "]" * 50))
def test_matrix_text_only_ever_raises_hw2error(tmp_path, text):
    path = write(tmp_path, text)
    only_hw2_errors(read_table, path)
    only_hw2_errors(read_table, path, header=True)
    only_hw2_errors(read_square_matrix, path)
    only_hw2_errors(graph_from_matrix, path, directed=False)
    nested = write(tmp_path, "[" + text, "n.txt")  # the nested-list parser
    only_hw2_errors(read_table, nested)


@given(data=st.binary(max_size=300))
def test_matrix_bytes_only_ever_raise_hw2error(tmp_path, data):
    only_hw2_errors(read_table, write(tmp_path, data))


finite = st.floats(allow_nan=False, allow_infinity=False)
matrices = st.integers(1, 6).flatmap(
    lambda width: st.lists(
        st.lists(finite | st.integers(-(2**70), 2**70), min_size=width, max_size=width),
        min_size=1,
        max_size=6,
    )
)


@given(rows=matrices, style=st.sampled_from(["spaces", "commas", "nested"]), bom=st.booleans())
def test_a_generated_matrix_round_trips_exactly(tmp_path, rows, style, bom):
    if style == "nested":
        text = json.dumps(rows)
    else:
        sep = " " if style == "spaces" else ", "
        text = "\n".join(sep.join(repr(x) for x in row) for row in rows) + "\n"
    array, names = read_table(write(tmp_path, ("\ufeff" if bom else "") + text))
    assert names is None
    assert array.tolist() == [[float(x) for x in row] for row in rows]


@given(
    names=st.lists(st.text(alphabet="xyzé_", min_size=1, max_size=3), min_size=1, max_size=4),
    data=st.data(),
)
def test_a_feature_table_with_a_header_round_trips(tmp_path, names, data):
    rows = data.draw(
        st.lists(st.lists(finite, min_size=len(names), max_size=len(names)), min_size=1, max_size=5)
    )
    text = " ".join(names) + "\n" + "\n".join(" ".join(repr(x) for x in row) for row in rows)
    array, got = read_table(write(tmp_path, text), header=True)
    assert got == names and array.tolist() == rows


# ----------------------------------------------------------------------------- files read back

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def read_back_models() -> list[type]:
    from hw2cli.gpt.saved import State
    from hw2cli.rotation.saved import ModelsConfig

    return [State, ModelsConfig, schema.WrittenFiles, schema.ManifestFields]


def state_json() -> dict:
    """A valid state.json of a GPT run (the manifest), for mutating."""
    entry = {"size": 10, "sha256": "0" * 64}
    return {
        "step": 6,
        "total_steps": 12,
        "best_val_loss": 2.5,
        "finished": False,
        "files": {"model.safetensors": entry, "metrics.csv": entry},
        "staged": [],
        "remove": [],
        "param_groups": [],
    }


def mutate(value, path: list, new):
    """``value`` with the element at ``path`` (keys/indices, wrapped around) replaced by ``new``."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return new
    if isinstance(value, dict):
        key = sorted(value)[path[0] % len(value)]
        return {**value, key: mutate(value[key], path[1:], new)}
    i = path[0] % len(value)
    return [*value[:i], mutate(value[i], path[1:], new), *value[i + 1 :]]


@given(
    data=st.binary(max_size=300)
    | any_text.map(str.encode)
    | json_values.map(lambda v: json.dumps(v).encode())
)
def test_json_read_backs_only_ever_raise_hw2error(tmp_path, data):
    path = write(tmp_path, data, "state.json")
    for model in read_back_models():
        only_hw2_errors(schema.load_json, path, model, "fix")


@given(path=st.lists(st.integers(0, 9), max_size=4), new=json_values)
def test_an_edited_manifest_is_accepted_or_refused_in_one_line(tmp_path, path, new):
    """A valid state.json with one value, anywhere, replaced by any JSON value: either still
    valid or Hw2Error, and read_checkpoint (which also checks the files it lists) the same."""
    from hw2cli.gpt.saved import State

    folder = tmp_path / "run"
    folder.mkdir(exist_ok=True)
    write(folder, json.dumps(mutate(state_json(), path, new)), "state.json")
    only_hw2_errors(schema.load_json, folder / "state.json", State, "fix")
    only_hw2_errors(rundir.read_checkpoint, folder, "state.json", State, "fix")


@given(text=any_text | st.text(alphabet=',"\n\r\x00x1.', max_size=200))
def test_csv_read_backs_only_ever_raise_hw2error(tmp_path, text):
    from hw2cli.gpt.saved import METRIC_FIELDS, MetricRow

    path = write(tmp_path, text, "metrics.csv")
    only_hw2_errors(schema.load_csv, path, MetricRow, METRIC_FIELDS, "fix")
    header = write(tmp_path, ",".join(METRIC_FIELDS) + "\n" + text, "metrics.csv")
    only_hw2_errors(schema.load_csv, header, MetricRow, METRIC_FIELDS, "fix")


@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_a_damaged_marker_never_raises_and_claims_nothing_it_should_not(tmp_path, data):
    """Whatever the marker holds, written_by_hw2 answers, and only with files that exist."""
    (tmp_path / "a.txt").write_text("a")
    write(tmp_path, data, io.MARKER)
    assert io.written_by_hw2(tmp_path) <= {"a.txt"}


@given(obj=json_values)
def test_json_written_is_json_and_keeps_every_finite_value(tmp_path, obj):
    """write_json: valid JSON (no NaN tokens); finite values kept, non-finite ones null and listed."""
    path = io.write_json(tmp_path / "o.json", obj)
    back = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))

    def finite_only(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, list):
            return [finite_only(v) for v in x]
        if isinstance(x, dict):
            return {k: finite_only(v) for k, v in x.items()}
        return x

    expected = finite_only(obj)
    if isinstance(back, dict) and "non_finite" in back and back != expected:
        listed = back.pop("non_finite")
        assert listed and all(entry["value"] in ("nan", "inf", "-inf") for entry in listed)
        back = back.get("value", back) if not isinstance(expected, dict) else back
    assert back == expected
