"""Rich tables, JSON and .npz of the three graph results (PowersResult, LaplacianResult,
CheckResult). ``from_json`` recomputes a result from the inputs its file records (graph and
options; for a check, the given and right matrices), so schema.load checks every other key
against a value derived afresh and ``to_json`` stays the one codec."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.common.schema import ResultError, build, one_of, require, typed
from hw2cli.graph.check import CheckResult
from hw2cli.graph.io import Graph, json_number, matrix_to_json
from hw2cli.graph.laplacian import LaplacianResult, laplacian_of
from hw2cli.graph.matrices import GraphResult, Spectrum
from hw2cli.graph.options import KINDS, MAX_MAX_WALKS, LaplacianOptions, PowersOptions
from hw2cli.graph.walks import PowersResult, WalkListing, powers_of

#: Graphs with more nodes than this print a summary instead of full tables.
SUMMARY_NODES = 30
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
WALK_KEYS = ("source", "target", "length", "count", "matrix_entry", "listed", "cap", "walks", "weights")


def sup(k: int) -> str:
    return "A" if k == 1 else "A" + str(k).translate(_SUP)


def fmt(x) -> str:
    """Integers without a decimal point, other numbers with 4 significant digits."""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex) or np.iscomplexobj(x):
        return f"{x.real:.4g}{x.imag:+.4g}i" if abs(x.imag) > 0 else fmt(x.real)
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.4g}"


def _big(x) -> str:
    text = fmt(x)
    return f"{int(text):,}" if text.lstrip("-").isdigit() else text


def _dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def _console(console: Console | None, width: int = 100) -> Console:
    """``console``, else stdout at least ``width`` wide even when piped (no squashed tables)."""
    if console is not None:
        return console
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=max(console.width, width, 100), markup=False, highlight=False)
    return console


def _width(nodes: list, m) -> int:
    cell = max([len(str(x)) for x in nodes] + [len(fmt(v)) for v in _dense(m).ravel()])
    return (cell + 3) * (len(nodes) + 1) + 4


def _print(console: Console, *items) -> None:
    """Each line or table in turn; lines as plain Text, so no label is read as markup or emoji."""
    for item in items:
        console.print(Text(item) if isinstance(item, str) else item)


def table(columns: list[tuple[str, str]], rows, **options) -> Table:
    """``rows`` under ``columns``: (header, justify) pairs, "bold" a left-justified label column."""
    out = Table(**options)
    for name, how in columns:
        bold = how == "bold"
        out.add_column(name, style="bold" if bold else None, justify="left" if bold else how)
    for row in rows:
        out.add_row(*row)
    return out


def matrix_table(m, nodes: list, wrong: dict | None = None) -> Table:
    """Matrix ``m`` with node labels on both sides; ``wrong`` maps (i, j) -> right value."""
    m, wrong = _dense(m), wrong or {}

    def cell(i: int, j: int) -> Text:
        if (i, j) not in wrong:
            return Text(fmt(m[i, j]))
        return Text.assemble((fmt(m[i, j]), "bold red reverse"), (f" →{fmt(wrong[i, j])}", "green"))

    rows = ([str(node)] + [cell(i, j) for j in range(len(nodes))] for i, node in enumerate(nodes))
    columns = [("", "bold")] + [(str(node), "right") for node in nodes]
    return table(columns, rows, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)


def _graph_tables(result: GraphResult, blocks: list, widest, console: Console | None) -> Console:
    """The header line, then each (title, matrix) of ``blocks``, or the summary of a big graph."""
    graph, comps = result.graph, result.components
    small = graph.n <= SUMMARY_NODES
    console = _console(console, _width(graph.nodes, widest) if small else 100)
    kinds = ("directed" if graph.directed else "undirected", "weighted" if graph.weighted else "unweighted")
    weakly = "weakly " if graph.directed else ""
    plural = "s" if comps.count != 1 else ""
    edges = f"{graph.n:,} nodes, {graph.n_edges:,} edges, {', '.join(kinds)}"
    _print(console, f"{graph.source}: {edges}, {comps.count} {weakly}connected component{plural}")
    if small:
        for title, m in blocks:
            _print(console, "\n" + title, matrix_table(m, graph.nodes))
        return console
    a = graph.adjacency
    isolated = (np.diff(a.indptr) == 0) & (np.bincount(a.indices, minlength=graph.n) == 0)
    stats = " / ".join(fmt(round(float(f(result.degrees)), 3)) for f in (np.min, np.mean, np.median, np.max))
    rows = [
        ("nodes", f"{graph.n:,}"),
        ("edges", f"{graph.n_edges:,}"),
        kinds,
        ("degree min / mean / median / max", stats),
        ("isolated nodes", f"{int(np.count_nonzero(isolated)):,}"),
        ("self-loops", f"{int(np.count_nonzero(a.diagonal())):,}"),
        (f"{weakly}connected components", f"{comps.count:,}"),
        ("largest component", f"{comps.sizes[0]:,} nodes"),
    ]
    title = "Summary (full matrices: --json / --npz)"
    summary = table([("", "bold"), ("", "right")], rows, title=title, title_justify="left", show_header=False)
    _print(console, summary)
    return console


def _print_lines(console: Console, lines: list[str]) -> None:
    """Plain lines in chunks, straight to the file: Rich would lay out one huge string first
    (209,715 walks took 100 s that way)."""
    for start in range(0, len(lines), 2000):
        console.file.write("\n".join(lines[start : start + 2000]) + "\n")
        console.file.flush()


@functools.singledispatch
def render(result, console: Console | None = None) -> None:
    raise TypeError(f"no renderer for {type(result).__name__}")


# ----------------------------------------------------------------------------- powers


def _walk_text(listing: WalkListing) -> list[str]:
    s, t, k = listing.source, listing.target, listing.length
    count, entry = listing.count, listing.matrix_entry
    name = f"({sup(k)})[{s}, {t}]"
    lines = [f"Walks of length {k} from {s} to {t} (a walk may repeat nodes and edges; a path may not):"]
    if not listing.listed:
        return lines + [
            f"  there are {count:,} of them = {name}; listing is capped at {listing.cap:,} "
            f"(raise --max-walks, at most {MAX_MAX_WALKS:,}, or shorten --length)"
        ]
    for n, walk in enumerate(listing.walks, start=1):
        weight = f"   (weight product {fmt(listing.weights[n - 1])})" if listing.weighted else ""
        lines.append(f"  {n:>{len(str(count))}}. " + " → ".join(str(x) for x in walk) + weight)
    if listing.weighted:
        total = sum(listing.weights)
        agree = "✓" if np.isclose(total, float(entry)) else "✗"
        return lines + [
            f"  {count} walks; for a weighted graph {name} = {fmt(entry)} is the sum of their weight "
            f"products ({fmt(total)}) {agree}"
        ]
    plural = "s" if count != 1 else ""
    return lines + [f"  {count} walk{plural}, and {name} = {fmt(entry)} {'✓' if count == entry else '✗'}"]


def _power_title(k: int, weighted: bool) -> str:
    if k == 1:
        edge = "weight of the edge i - j" if weighted else "1 when i and j are joined by an edge"
        return f"A: adjacency matrix, A[i, j] = {edge}"
    if weighted:
        walks = f"sum, over the walks of length {k} from i to j, of the products of their edge weights"
        return f"{sup(k)}: entry [i, j] = {walks}"
    return f"{sup(k)}: entry [i, j] = number of walks of length {k} from i to j"


@render.register
def _render_powers(result: PowersResult, console: Console | None = None) -> None:
    graph, powers = result.graph, result.powers
    blocks = [(_power_title(k, graph.weighted), m) for k, m in enumerate(powers, start=1)]
    console = _graph_tables(result, blocks, powers[-1], console)
    if graph.n > SUMMARY_NODES:
        rows = [
            (sup(k), f"{m.nnz if sp.issparse(m) else np.count_nonzero(m):,}", _big(m.trace()), _big(m.sum()))
            for k, m in enumerate(powers, start=1)
        ]
        columns = [(h, "right") for h in ("power", "non-zeros", "trace (closed walks)", "sum (all walks)")]
        _print(console, table(columns, rows, title="Powers of A", title_justify="left"))
    elif len(powers) >= 2 and not graph.directed and not graph.weighted and not result.notes:
        diag = np.diag(_dense(powers[1]))
        agree = "✓" if np.array_equal(diag.astype(np.float64), result.degrees) else "✗"
        walks = "the walks i → j → i, one per neighbour j (a walk may come back)."
        _print(console, f"diag(A²) = ({', '.join(fmt(x) for x in diag)}) = the degrees {agree}: {walks}")
    _print(console, *(f"note: {note}" for note in result.notes))
    if result.walks is not None:
        _print_lines(console, _walk_text(result.walks))


# ----------------------------------------------------------------------------- laplacian


def _spectrum_text(result: LaplacianResult) -> list[str]:
    graph, spec, comps = result.graph, result.spectrum, result.components.count
    if spec is None:
        return [
            f"eigenvalues skipped for {graph.n:,} nodes: pass --eigs K for the K smallest (ARPACK; slow on big graphs)"
        ]
    lines = []
    for name, s in (("L", spec), ("L_sym", result.normalized_spectrum)):
        if s is not None:
            which = "eigenvalues" if s.complete else f"{len(s.values)} smallest eigenvalues"
            lines.append(f"{which} of {name}: " + ", ".join(map(fmt, np.round(s.values, 6))))
    if graph.directed:
        return lines + [
            f"{comps} weakly connected component(s); for a directed graph the multiplicity of "
            f"eigenvalue 0 ({spec.zero_count}) need not equal it."
        ]
    if spec.complete or spec.zero_count < len(spec.values):
        agree = "✓" if spec.zero_count == comps else "✗ (negative weights?)"
        return lines + [
            f"eigenvalue 0 has multiplicity {spec.zero_count} = number of connected components "
            f"(graph search: {comps}) {agree}"
        ]
    return lines + [
        f"all {len(spec.values)} computed eigenvalues are 0; the graph has {comps} connected components (graph search)"
    ]


@render.register
def _render_laplacian(result: LaplacianResult, console: Console | None = None) -> None:
    graph, f = result.graph, result.features
    blocks = [
        ("A: adjacency matrix", graph.adjacency),
        (f"D: degree matrix, D[i, i] = {'out-' if graph.directed else ''}degree of i", result.degree_matrix),
        ("L = D − A: Laplacian", result.laplacian),
        ("L_sym = I − D^-1/2 A D^-1/2: symmetric normalized Laplacian", result.normalized),
    ]
    console = _graph_tables(result, [b for b in blocks if b[1] is not None], result.laplacian, console)
    _print(console, *_spectrum_text(result))
    if f is not None and graph.n > SUMMARY_NODES:
        agree = "✓" if np.allclose(f.lx, f.neighbour_sums) else "✗"
        _print(
            console,
            f"F = L·X for {f.x.shape[1]} feature column(s): equal to Σ_j (x_i − x_j) over neighbours at "
            f"every node {agree} (values: --json / --npz)",
        )
    elif f is not None:  # each node's sum written out term by term
        a = sp.csr_array(graph.adjacency)
        a.sort_indices()
        for c, name in enumerate(f.names):
            rows = []
            for i, node in enumerate(graph.nodes):
                row = slice(a.indptr[i], a.indptr[i + 1])
                terms = [
                    ("" if w == 1 else f"{fmt(w)}·") + f"({fmt(f.x[i, c])}−{fmt(f.x[j, c])})"
                    for j, w in zip(a.indices[row], a.data[row], strict=True)
                    if j != i  # a self-loop adds x_i - x_i = 0
                ]
                expr = (" + ".join(terms) or "0") + f" = {fmt(f.neighbour_sums[i, c])}"
                rows.append((str(node), fmt(f.x[i, c]), expr, fmt(f.lx[i, c])))
            columns = [("node", "right"), (name, "right"), ("Σ_j (x_i − x_j)", "left"), ("(L·X)[i]", "right")]
            heading = f"\nF = L·X for feature {name}: (L·X)[i] = Σ over the neighbours j of i of (x_i − x_j)"
            _print(console, heading, table(columns, rows, box=box.SIMPLE_HEAD, show_edge=False))


# ----------------------------------------------------------------------------- check


@render.register
def _render_check(result: CheckResult, console: Console | None = None) -> None:
    lab, n, title, problems = result.graph.nodes, len(result.wrong), result.title, result.problems
    console = _console(console, _width(lab, result.given) + 4 * (len(lab) + 1))
    verdict = (
        f"{n} cell{'s are' if n != 1 else ' is'} wrong, highlighted below as the given value → the right one."
    )
    _print(
        console,
        f"given {title} for {result.graph.source}: " + (verdict if n else "every cell is right."),
        matrix_table(result.given, lab, {(c.row, c.col): c.expected for c in result.wrong}),
        *(
            f"wrong: [{lab[c.row]}, {lab[c.col]}] is {fmt(c.given)}, should be {fmt(c.expected)}"
            for c in result.wrong
        ),
        *(f"problem: {problem}" for problem in problems),
        f"all {len(lab) ** 2} entries of {title} are right ✓"
        if result.ok
        else f"{title} has {n} wrong cell(s) and {len(problems)} structural problem(s) ✗",
    )


# ----------------------------------------------------------------------------- JSON and .npz


def _graph_json(result: GraphResult, adjacency) -> dict:
    graph, comps = result.graph, result.components
    return {
        "source": graph.source,
        "nodes": graph.nodes,
        "directed": graph.directed,
        "weighted": graph.weighted,
        "n_nodes": graph.n,
        "n_edges": graph.n_edges,
        "degrees": [json_number(d) for d in result.degrees],
        "components": comps.count,
        "component_sizes": comps.sizes,
        "adjacency": matrix_to_json(adjacency),
    }


def _spectrum_json(s: Spectrum | None) -> dict | None:
    if s is None:
        return None
    imag = np.imag(s.values).tolist() if np.iscomplexobj(s.values) else None
    return {
        "values": np.real(s.values).tolist(),
        "imag": imag,
        "complete": s.complete,
        "zero_count": s.zero_count,
    }


@functools.singledispatch
def to_json(result) -> dict:
    """The --json file (docs/graph.md lists its keys)."""
    raise TypeError(f"no JSON form for {type(result).__name__}")


@to_json.register
def _powers_json(result: PowersResult) -> dict:
    walks = result.walks
    return {
        "command": "graph powers",
        **_graph_json(result, result.powers[0]),
        "powers": {str(k): matrix_to_json(m) for k, m in enumerate(result.powers[1:], start=2)},
        "walks": None if walks is None else {key: getattr(walks, key) for key in WALK_KEYS},
    }


@to_json.register
def _laplacian_json(result: LaplacianResult) -> dict:
    f, norm, features = result.features, result.normalized, None
    if f is not None:
        arrays = {"X": f.x, "LX": f.lx, "neighbour_sums": f.neighbour_sums}
        features = {"names": f.names} | {key: m.tolist() for key, m in arrays.items()}
    return {
        "command": "graph laplacian",
        **_graph_json(result, result.graph.adjacency),
        "degree_matrix": matrix_to_json(result.degree_matrix),
        "laplacian": matrix_to_json(result.laplacian),
        "normalized_laplacian": None if norm is None else matrix_to_json(norm),
        "eigenvalues": _spectrum_json(result.spectrum),
        "normalized_eigenvalues": _spectrum_json(result.normalized_spectrum),
        "features": features,
    }


@to_json.register
def _check_json(result: CheckResult) -> dict:
    lab = result.graph.nodes
    return {
        "command": "graph check",
        "source": result.graph.source,
        "kind": result.kind,
        "power": result.power,
        "nodes": lab,
        "ok": result.ok,
        "given": matrix_to_json(result.given),
        "expected": matrix_to_json(result.expected),
        "wrong_cells": [
            {
                "row": lab[c.row],
                "col": lab[c.col],
                "given": json_number(c.given),
                "expected": json_number(c.expected),
            }
            for c in result.wrong
        ],
        "problems": result.problems,
    }


def to_npz(result: PowersResult | LaplacianResult) -> dict:
    """The --npz file's matrices by name."""
    if isinstance(result, PowersResult):
        return {"A" if k == 1 else f"A{k}": m for k, m in enumerate(result.powers, start=1)}
    f, out = result.features, {"A": result.graph.adjacency, "D": result.degree_matrix, "L": result.laplacian}
    out |= {"L_sym": result.normalized, "X": f and f.x, "LX": f and f.lx}
    return {name: m for name, m in out.items() if m is not None}


@dataclass
class _Coo:  # a matrix of more than JSON_DENSE_MAX_NODES rows, as matrix_to_json writes it
    format: Literal["coo"]
    shape: tuple[int, int]
    row: list[int]
    col: list[int]
    data: list[float]


def _matrix(value: Any, n: int, at: str, cols: int | None = None) -> np.ndarray | sp.csr_array:
    """An n x n (or n x cols) matrix: dense from nested lists, CSR from a COO object."""
    cols = n if cols is None else cols
    if isinstance(value, dict):
        coo = typed(value, _Coo, at)
        if coo.shape != (n, n) or not len(coo.row) == len(coo.col) == len(coo.data):
            raise ResultError(at, f"is not a {n} x {n} COO matrix")
        if any(not 0 <= i < n for i in (*coo.row, *coo.col)):
            raise ResultError(at, f"has an index outside 0 to {n - 1}")
        return sp.csr_array((coo.data, (coo.row, coo.col)), shape=(n, n), dtype=np.float64)
    rows = typed(value, list[list[float]], at)
    if len(rows) != n or any(len(row) != cols for row in rows):
        raise ResultError(at, f"is not a {n} x {cols} matrix")
    return np.array(rows, dtype=np.float64).reshape(n, cols)


def from_json(data: dict) -> PowersResult | LaplacianResult | CheckResult:
    """The result in a --json file, recomputed from its inputs; a malformed input or a missing
    key is a ResultError naming the field."""
    readers = {"graph powers": _powers, "graph laplacian": _laplacian, "graph check": _check}
    command = require(data, "command")
    one_of(command, readers, "command")
    result = readers[command](data, typed(require(data, "nodes"), list[int | str], "nodes"))
    missing = next((key for key in to_json(result) if key not in data), None)
    if missing is not None:
        raise ResultError(missing, "field required")
    return result


def _graph(data: dict, nodes: list) -> Graph:
    adjacency = sp.csr_array(_matrix(require(data, "adjacency"), len(nodes), "adjacency"))
    return build(Graph, data, nodes=nodes, adjacency=adjacency)


def _powers(data: dict, nodes: list) -> PowersResult:
    graph, powers = _graph(data, nodes), typed(require(data, "powers"), dict[str, Any], "powers")
    if list(powers) != [str(k) for k in range(2, len(powers) + 2)]:
        raise ResultError("powers", "holds other keys than 2, 3, ... in order")
    walks = {}
    if data.get("walks") is not None:
        asked = build(WalkListing, data["walks"], "walks", weighted=graph.weighted)
        walks = {
            "walks": (str(asked.source), str(asked.target)),
            "length": asked.length,
            "max_walks": asked.cap,
        }
    return powers_of(graph, PowersOptions(max_power=len(powers) + 1, **walks))


def _laplacian(data: dict, nodes: list) -> LaplacianResult:
    graph, eig, features = _graph(data, nodes), data.get("eigenvalues"), data.get("features")
    eigs = 0  # no eigenvalues in the file: none were asked for
    if eig is not None:
        values = typed(require(eig, "values", "eigenvalues"), list[float], "eigenvalues.values")
        eigs = None if build(Spectrum, eig, "eigenvalues", values=values).complete else len(values)
    if features is not None:
        names = typed(require(features, "names", "features"), list[str], "features.names")
        features = (_matrix(require(features, "X", "features"), len(nodes), "features.X", len(names)), names)
    normalized = data.get("normalized_laplacian") is not None
    opts = LaplacianOptions(directed=graph.directed, normalized=normalized, eigs=eigs)
    return laplacian_of(graph, opts, features)


def _check(data: dict, nodes: list) -> CheckResult:
    """The file keeps neither A nor the direction: the right matrix stands for them."""
    one_of(typed(require(data, "kind"), str, "kind"), KINDS, "kind")
    for i, cell in enumerate(typed(require(data, "wrong_cells"), list[dict[str, Any]], "wrong_cells")):
        for key in ("row", "col"):
            one_of(require(cell, key, f"wrong_cells.{i}"), nodes, f"wrong_cells.{i}.{key}")
    n = len(nodes)
    graph = build(Graph, data, nodes=nodes, adjacency=sp.csr_array((n, n)), directed=False)
    given, expected = (_matrix(require(data, key), n, key) for key in ("given", "expected"))
    return build(CheckResult, data, graph=graph, given=given, expected=expected)
