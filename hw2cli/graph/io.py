"""Reading graphs, hand-written matrices and node-feature tables; writing matrices out.

Edge lists: ``u v`` or ``u v weight`` per line (weight 1 without one), ``#`` comments, blank
lines ignored. Labels are integers (sorted numerically) when every label parses as one, else
names in order of first appearance; a repeated edge keeps its last weight, and ``u v`` is
``v u`` when undirected: networkx's rules (the tests check ``read_edgelist`` against its reader).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hw2cli.common.errors import Hw2Error
from hw2cli.common.inputs import read_input
from hw2cli.common.io import atomic_path
from hw2cli.common.options import OptionError

#: Matrices of graphs with more nodes than this are written to JSON in sparse (COO) form.
JSON_DENSE_MAX_NODES = 1000


@dataclass
class Graph:
    """A graph as a sparse adjacency matrix whose rows/columns follow ``nodes``."""

    nodes: list[int | str]  # node labels, in matrix order
    adjacency: sp.csr_array  # float64; A[i, j] = weight of edge i -> j (both ways if undirected)
    directed: bool
    source: str  # where it came from, for messages

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def weighted(self) -> bool:
        return bool(np.any(self.adjacency.data != 1.0))

    @property
    def n_edges(self) -> int:
        """Number of edges (an undirected edge, or a self-loop, counts once)."""
        a = self.adjacency
        if self.directed:
            return int(a.nnz)
        loops = int(np.count_nonzero(a.diagonal()))
        return (int(a.nnz) - loops) // 2 + loops

    def index(self, label: str) -> int:
        """Matrix index of the node written as ``label`` on the command line."""
        lookup = {str(node): i for i, node in enumerate(self.nodes)}
        if label not in lookup and isinstance(self.nodes[0], int) and _parses(label):
            label = str(int(label))
        if label not in lookup:
            shown = ", ".join(str(x) for x in self.nodes[:20]) + (", ..." if self.n > 20 else "")
            raise Hw2Error(
                f"{label!r} is not a node of {self.source} (nodes: {shown}); use one of its node labels"
            )
        return lookup[label]


def _checked(graph: Graph) -> Graph:
    """Refuse weights whose row sums (the degrees) overflow float64: D and L would hold inf."""
    with np.errstate(over="ignore"):
        sums = np.asarray(abs(graph.adjacency).sum(axis=1)).ravel()
    bad = np.flatnonzero(~np.isfinite(sums))
    if len(bad):
        raise Hw2Error(
            f"{graph.source}: the weights at node {graph.nodes[bad[0]]} sum beyond the largest float64 "
            "(about 1.8e308); scale the weights down"
        )
    return graph


def _read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of an input file, read with the bound of hw2cli.common.inputs (pipes work:
    ``hw2 graph powers /dev/stdin < g.txt``); a byte-order mark (Windows editors) is dropped."""
    try:
        return read_input(path, what).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Hw2Error(f"{what} {path} is not UTF-8 text; give a plain-text file") from None


def _parses(token: str, number: type = int) -> bool:
    """Whether ``number(token)`` (int or float) accepts the token."""
    try:
        number(token)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- edge lists


def _fields(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def _weight(fields: list[str], path: Path, number: int, line: str) -> float:
    """The weight of a line `u v weight`; any other line is refused naming it."""
    if len(fields) == 3:
        try:
            weight = float(fields[2])
        except ValueError:
            problem = f"weight {fields[2]!r} is not a number; write a number such as 1 or 0.5"
        else:
            if math.isfinite(weight):
                return weight
            problem = "weight must be finite; write a finite number"
    else:
        problem = f"expected `u v` or `u v weight` (found {len(fields)} fields); fix or comment out that line with #"
    raise Hw2Error(f"{path}, line {number}: {line.strip()!r}: {problem}")


def _adjacency(pairs: np.ndarray, w: np.ndarray, n: int, directed: bool) -> sp.csr_array:
    """Adjacency from (u, v) index pairs; a repeated edge keeps its last weight."""
    u, v = pairs[:, 0], pairs[:, 1]
    if not directed:
        u, v = np.minimum(u, v), np.maximum(u, v)
    # np.unique on the reversed keys: the first hit in reverse is the last in the file
    keys, first = np.unique((u * n + v)[::-1], return_index=True)
    w, rows, cols = w[::-1][first], keys // n, keys % n
    if not directed:
        off = rows != cols
        rows, cols, w = np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]]), np.r_[w, w[off]]
    return sp.csr_array((w, (rows, cols)), shape=(n, n))


def read_edgelist(path: str | os.PathLike, directed: bool = False) -> Graph:
    """Read an edge-list file (the format: see the module docstring); an error names its line."""
    path = Path(path)
    lines = _read_text(path, "edge list").splitlines()
    tokens, weights = [], []  # flat, not a list per line: the garbage collector would walk those
    for number, line in enumerate(lines, 1):  # inlined: the loop is most of the reading time of a big file
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2:
            tokens += fields
            weights.append(1.0)
        elif fields:
            tokens += fields[:2]
            weights.append(_weight(fields, path, number, line))
    if not weights:
        raise Hw2Error(
            f"edge list {path} has no edges (empty, or only comments); write one edge `u v` per line"
        )
    try:  # every label an integer: sorted numerically (Python ints beyond int64 by a dict)
        inverse = np.fromiter(map(int, tokens), np.int64, len(tokens))
        nodes, inverse = np.unique(inverse, return_inverse=True)
        nodes = nodes.tolist()
    except (ValueError, OverflowError):
        try:
            labels = list(map(int, tokens))
            nodes = sorted(set(labels))
        except ValueError:  # names, in order of first appearance (Python strings: numpy drops trailing NULs)
            labels, nodes = tokens, list(dict.fromkeys(tokens))
        position = {node: k for k, node in enumerate(nodes)}
        inverse = np.fromiter(map(position.__getitem__, labels), np.int64, len(labels))
    adjacency = _adjacency(inverse.reshape(-1, 2), np.asarray(weights), len(nodes), directed)
    return _checked(Graph(nodes, adjacency, directed, str(path)))


# ----------------------------------------------------------------------------- number tables


def _as_float(x: int | float) -> float:
    """``x`` as a float64; integers beyond its range become inf (refused with the other non-finite values)."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _nested_list(path: Path, text: str, what: str) -> list[list[float]]:
    """The rows of a matrix written as a nested list, ``[[0,1],[1,0]]`` (JSON or Python syntax)."""
    # counted, not parsed: 100,000 brackets would exhaust the stack
    deepest = max(accumulate(1 if b in "[(" else -1 for b in re.findall(r"[][()]", text)), default=0)
    if deepest > 2:
        raise Hw2Error(
            f"{what} {path} nests brackets {deepest} levels deep; a matrix is a list of rows like "
            "[[0,1],[1,0]] (2 levels)"
        )
    try:
        rows = json.loads(text)
    except ValueError:  # not JSON (Python's own list syntax), or an integer of over 4,300 digits
        try:
            rows = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise Hw2Error(
                f"{what} {path} starts with '[' but is not a nested list of numbers like [[0,1],[1,0]]; "
                "fix its brackets, commas and numbers"
            ) from None
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, (list, tuple)) for r in rows):
        raise Hw2Error(f"{what} {path} must be a nested list of rows like [[0,1],[1,0]]")
    for i, row in enumerate(rows, start=1):
        for x in row:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                shown = repr(x) if len(repr(x)) <= 40 else repr(x)[:37] + "..."
                raise Hw2Error(f"{what} {path}, row {i}: {shown} is not a number; write numbers only")
    return [[_as_float(x) for x in row] for row in rows]


def read_table(
    path: str | os.PathLike, what: str = "matrix", header: bool = False
) -> tuple[np.ndarray, list[str] | None]:
    """A rectangular table of numbers (rows of numbers separated by spaces, commas or semicolons,
    or a nested list ``[[0,1],[1,0]]``) and its column names (a first row of names, with ``header``)."""
    path = Path(path)
    text = _read_text(path, what)
    names, rows = None, []  # (line number, line as shown, numbers)
    if text.lstrip().startswith("["):
        rows = [(i, str(r), r) for i, r in enumerate(_nested_list(path, text, what), start=1)]
    content = [] if rows else [(n, x.strip()) for n, x in enumerate(text.splitlines(), 1) if _fields(x)]
    for k, (number, line) in enumerate(content):
        tokens = line.split("#", 1)[0].replace(",", " ").replace(";", " ").split()
        bad = next((t for t in tokens if not _parses(t, float)), None)
        if bad is None:
            rows.append((number, line, [float(t) for t in tokens]))
        elif header and k == 0:
            names = tokens
        else:
            raise Hw2Error(
                f"{what} {path}, line {number}: {line!r}: {bad!r} is not a number; write numbers only"
            )
    if not rows:
        raise Hw2Error(
            f"{what} {path} has no rows of numbers (empty, or only comments); write one row per line"
        )
    width = len(rows[0][2])
    for number, line, values in rows:
        if len(values) != width:
            raise Hw2Error(
                f"{what} {path}, line {number}: {line!r} has {len(values)} numbers but the first row has "
                f"{width}; every row needs the same length"
            )
    array = np.asarray([values for _, _, values in rows], dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise Hw2Error(
            f"{what} {path} contains nan, inf or a number beyond float64 (about ±1.8e308); write finite numbers"
        )
    if names is not None and len(names) != width:
        raise Hw2Error(
            f"{what} {path}: header has {len(names)} names but rows have {width} numbers; make them match"
        )
    return array, names


def read_square_matrix(path: str | os.PathLike, what: str = "matrix") -> np.ndarray:
    """A square matrix of numbers (see ``read_table``), refused when it is not square."""
    array, _ = read_table(path, what)
    if array.shape[0] != array.shape[1]:
        raise Hw2Error(
            f"{what} {path} is {array.shape[0]}x{array.shape[1]}, not square; write one row per node with "
            f"one number per node"
        )
    return array


def graph_from_matrix(path: str | os.PathLike, directed: bool = False) -> Graph:
    """A graph given by its dense adjacency matrix; nodes are labelled 1..n."""
    array = read_square_matrix(path, "adjacency matrix")
    bad = np.argwhere(array != array.T)
    if not directed and len(bad):
        i, j = bad[0]
        raise OptionError(
            f"adjacency matrix {path} is not symmetric (row {i + 1}, column {j + 1} is {array[i, j]:g} "
            f"but row {j + 1}, column {i + 1} is {array[j, i]:g}); fix it or pass {{directed}}"
        )
    return _checked(Graph(list(range(1, len(array) + 1)), sp.csr_array(array), directed, str(path)))


def load_graph(
    edges: str | os.PathLike | None, matrix: str | os.PathLike | None, directed: bool = False
) -> Graph:
    """The graph from exactly one of an edge-list file and an adjacency-matrix file."""
    if (edges is None) == (matrix is None):
        raise OptionError(
            "give the graph either as an edge-list file {edges} or as {matrix} FILE (exactly one of them)"
        )
    return read_edgelist(edges, directed) if edges is not None else graph_from_matrix(matrix, directed)


# ----------------------------------------------------------------------------- output


def json_number(x: float) -> int | float:
    """``x`` as a JSON int when it is a whole number a float holds exactly (below 2^53), else
    a float: larger ints would print digits the float never had."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)


def matrix_to_json(m) -> list | dict:
    """Nested lists (ints where integral) for up to JSON_DENSE_MAX_NODES rows; else a
    ``{"format": "coo", "shape", "row", "col", "data"}`` object."""
    if sp.issparse(m) and m.shape[0] > JSON_DENSE_MAX_NODES:
        coo = sp.coo_array(m)
        data = [json_number(x) for x in coo.data.tolist()]
        return {
            "format": "coo",
            "shape": list(coo.shape),
            "row": coo.row.tolist(),
            "col": coo.col.tolist(),
            "data": data,
        }
    dense = m.toarray() if sp.issparse(m) else np.asarray(m)
    if dense.dtype == object:
        return [[int(x) for x in row] for row in dense]
    return [[json_number(x) for x in row] for row in dense.tolist()]


def write_npz(path: str | os.PathLike, nodes: Sequence, matrices: dict) -> Path:
    """All ``matrices`` (name -> sparse or dense) in one compressed .npz, CSR parts per name:
    ``NAME.data``, ``NAME.indices``, ``NAME.indptr``, ``NAME.shape``; plus ``nodes`` (``read_npz``)."""
    arrays = {"nodes": np.asarray([str(x) for x in nodes])}
    for name, m in matrices.items():
        csr = sp.csr_array(m.astype(np.float64))
        arrays |= {f"{name}.{part}": getattr(csr, part) for part in ("data", "indices", "indptr")}
        arrays[f"{name}.shape"] = np.asarray(csr.shape)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def read_npz(path: str | os.PathLike) -> tuple[list[str], dict[str, sp.csr_array]]:
    """Node labels (as strings) and the matrices written by ``write_npz``."""
    with np.load(path) as z:
        names = sorted({key.rsplit(".", 1)[0] for key in z.files if key != "nodes"})
        parts = {n: (z[f"{n}.data"], z[f"{n}.indices"], z[f"{n}.indptr"]) for n in names}
        return z["nodes"].tolist(), {n: sp.csr_array(parts[n], shape=tuple(z[f"{n}.shape"])) for n in names}
