"""Rich tables for the graph commands, and their JSON and .npz forms.

``render(result, console)``, ``to_json(result)`` and ``to_npz(result)`` take any of the three
results (PowersResult, LaplacianResult, CheckResult) and dispatch on its type; ``from_json``
reads a ``--json`` file back. Graphs up to SUMMARY_NODES nodes print every matrix in full;
larger ones print a summary (the full matrices go to --json / --npz).
"""

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

from hw2cli.common.readback import ResultError, build, one_of, require, typed
from hw2cli.graph.check import CheckResult, WrongCell
from hw2cli.graph.io import Graph, json_number, matrix_to_json
from hw2cli.graph.laplacian import Features, LaplacianResult
from hw2cli.graph.matrices import Components, Spectrum, components
from hw2cli.graph.options import KINDS, MAX_MAX_WALKS
from hw2cli.graph.walks import PowersResult, WalkListing

#: Graphs with more nodes than this print a summary instead of full tables.
SUMMARY_NODES = 30
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(k: int) -> str:
    """``A`` with exponent k as superscript (A, A², A³ ...)."""
    return "A" if k == 1 else "A" + str(k).translate(_SUP)


def fmt(x) -> str:
    """Integers without a decimal point, other numbers with 4 significant digits."""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex) or np.iscomplexobj(x):
        return f"{x.real:.4g}{x.imag:+.4g}i" if abs(x.imag) > 0 else fmt(x.real)
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.4g}"


def _console(console: Console | None, width: int = 100) -> Console:
    """``console``, else stdout at least ``width`` wide even when piped (no squashed tables)."""
    if console is not None:
        return console
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=max(console.width, width, 100), markup=False, highlight=False)
    return console


def _big(x) -> str:
    """Like fmt, with thousands separators for integers."""
    text = fmt(x)
    return f"{int(text):,}" if text.lstrip("-").isdigit() else text


def _dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def matrix_table(m, nodes: list, wrong: dict | None = None) -> Table:
    """Matrix ``m`` with node labels on both sides; ``wrong`` maps (i, j) -> right value."""
    m = _dense(m)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("", style="bold")
    for node in nodes:
        table.add_column(str(node), justify="right")
    for i, node in enumerate(nodes):
        cells = [
            Text.assemble((fmt(m[i, j]), "bold red reverse"), (f" →{fmt(wrong[i, j])}", "green"))
            if wrong and (i, j) in wrong
            else Text(fmt(m[i, j]))
            for j in range(len(nodes))
        ]
        table.add_row(str(node), *cells)
    return table


def _width(nodes: list, m) -> int:
    cell = max([len(str(x)) for x in nodes] + [len(fmt(v)) for v in _dense(m).ravel()])
    return (cell + 3) * (len(nodes) + 1) + 4


def header(graph: Graph, components: Components) -> str:
    kind = "directed" if graph.directed else "undirected"
    weight = "weighted" if graph.weighted else "unweighted"
    weakly = "weakly " if graph.directed else ""
    comps = f"{components.count} {weakly}connected component{'s' if components.count != 1 else ''}"
    return f"{graph.source}: {graph.n:,} nodes, {graph.n_edges:,} edges, {kind}, {weight}, {comps}"


def summary_table(graph: Graph, degrees: np.ndarray, components: Components) -> Table:
    """Nodes, edges, degree statistics and components of a graph too big for full tables."""
    table = Table(title="Summary (full matrices: --json / --npz)", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    a = graph.adjacency
    isolated = (np.diff(a.indptr) == 0) & (np.bincount(a.indices, minlength=graph.n) == 0)
    stats = " / ".join(fmt(round(float(f(degrees)), 3)) for f in (np.min, np.mean, np.median, np.max))
    weakly = "weakly " if graph.directed else ""
    rows = [
        ("nodes", f"{graph.n:,}"),
        ("edges", f"{graph.n_edges:,}"),
        ("directed" if graph.directed else "undirected", "weighted" if graph.weighted else "unweighted"),
        ("degree min / mean / median / max", stats),
        ("isolated nodes", f"{int(np.count_nonzero(isolated)):,}"),
        ("self-loops", f"{int(np.count_nonzero(a.diagonal())):,}"),
        (f"{weakly}connected components", f"{components.count:,}"),
        ("largest component", f"{components.sizes[0]:,} nodes"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _print_lines(console: Console, lines) -> None:
    """Write plain lines straight to the console's file in chunks: Rich would lay out one huge
    string first (209,715 walks took 100 s that way; plain writes take ~1 s)."""
    out, chunk = console.file, []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= 2000:
            out.write("\n".join(chunk) + "\n")
            out.flush()
            chunk = []
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.flush()


@functools.singledispatch
def render(result, console: Console | None = None) -> None:
    """Print a graph result; ``console`` defaults to stdout, widened so tables are not squashed."""
    raise TypeError(f"no renderer for {type(result).__name__}")


@functools.singledispatch
def to_json(result) -> dict:
    """A graph result as plain JSON data (the --json file)."""
    raise TypeError(f"no JSON form for {type(result).__name__}")


@functools.singledispatch
def to_npz(result) -> dict:
    """The matrices of a graph result by array name (the --npz file)."""
    raise TypeError(f"no .npz form for {type(result).__name__}")


def _graph_json(graph: Graph, degrees: np.ndarray, components: Components) -> dict:
    return {
        "source": graph.source,
        "nodes": graph.nodes,
        "directed": graph.directed,
        "weighted": graph.weighted,
        "n_nodes": graph.n,
        "n_edges": graph.n_edges,
        "degrees": [json_number(d) for d in degrees],
        "components": components.count,
        "component_sizes": components.sizes,
    }


# ----------------------------------------------------------------------------- powers


def _walk_text(listing: WalkListing) -> list[str]:
    s, t, k = listing.source, listing.target, listing.length
    entry = f"({sup(k)})[{s}, {t}]"
    lines = [f"Walks of length {k} from {s} to {t} (a walk may repeat nodes and edges; a path may not):"]
    if not listing.listed:
        return lines + [
            f"  there are {listing.count:,} of them = {entry}; listing is capped at {listing.cap:,} "
            f"(raise --max-walks, at most {MAX_MAX_WALKS:,}, or shorten --length)"
        ]
    for n, walk in enumerate(listing.walks, start=1):
        weight = f"   (weight product {fmt(listing.weights[n - 1])})" if listing.weighted else ""
        lines.append(f"  {n:>{len(str(listing.count))}}. " + " → ".join(str(x) for x in walk) + weight)
    if listing.weighted:
        total = sum(listing.weights)
        agree = "✓" if np.isclose(total, float(listing.matrix_entry)) else "✗"
        return lines + [
            f"  {listing.count} walks; for a weighted graph {entry} = {fmt(listing.matrix_entry)} is the "
            f"sum of their weight products ({fmt(total)}) {agree}"
        ]
    agree = "✓" if listing.count == listing.matrix_entry else "✗"
    plural = "s" if listing.count != 1 else ""
    return lines + [f"  {listing.count} walk{plural}, and {entry} = {fmt(listing.matrix_entry)} {agree}"]


def _power_title(k: int, weighted: bool) -> str:
    if k == 1:
        return "A: adjacency matrix, " + (
            "A[i, j] = weight of the edge i - j"
            if weighted
            else "A[i, j] = 1 when i and j are joined by an edge"
        )
    if weighted:
        return (
            f"{sup(k)}: entry [i, j] = sum, over the walks of length {k} from i to j, of the "
            "products of their edge weights"
        )
    return f"{sup(k)}: entry [i, j] = number of walks of length {k} from i to j"


@render.register
def _render_powers(result: PowersResult, console: Console | None = None) -> None:
    graph = result.graph
    small = graph.n <= SUMMARY_NODES
    console = _console(console, _width(graph.nodes, result.powers[-1]) if small else 100)
    console.print(header(graph, result.components), highlight=False)
    if small:
        for k, m in enumerate(result.powers, start=1):
            console.print("\n" + _power_title(k, graph.weighted))
            console.print(matrix_table(m, graph.nodes))
        if len(result.powers) >= 2 and not graph.directed and not graph.weighted and not result.notes:
            diag = np.diag(_dense(result.powers[1]))
            agree = "✓" if np.array_equal(diag.astype(np.float64), result.degrees) else "✗"
            console.print(
                f"diag(A²) = ({', '.join(fmt(x) for x in diag)}) = the degrees {agree}: "
                "the walks i → j → i, one per neighbour j (a walk may come back).",
                highlight=False,
            )
    else:
        console.print(summary_table(graph, result.degrees, result.components))
        table = Table(title="Powers of A", title_justify="left")
        for col in ("power", "non-zeros", "trace (closed walks)", "sum (all walks)"):
            table.add_column(col, justify="right")
        for k, m in enumerate(result.powers, start=1):
            nnz = m.nnz if sp.issparse(m) else int(np.count_nonzero(m))
            table.add_row(sup(k), f"{nnz:,}", _big(m.diagonal().sum()), _big(m.sum()))
        console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    if result.walks is not None:
        _print_lines(console, _walk_text(result.walks))


@to_json.register
def _powers_to_json(result: PowersResult) -> dict:
    w = result.walks
    keys = ("source", "target", "length", "count", "matrix_entry", "listed", "cap", "walks", "weights")
    return {
        "command": "graph powers",
        **_graph_json(result.graph, result.degrees, result.components),
        "adjacency": matrix_to_json(result.powers[0]),
        "powers": {str(k): matrix_to_json(m) for k, m in enumerate(result.powers[1:], start=2)},
        "walks": None if w is None else {key: getattr(w, key) for key in keys},
    }


@to_npz.register
def _powers_npz(result: PowersResult) -> dict:
    return {"A" if k == 1 else f"A{k}": m for k, m in enumerate(result.powers, start=1)}


# ----------------------------------------------------------------------------- laplacian


def _spectrum_line(name: str, spec: Spectrum) -> str:
    which = "eigenvalues" if spec.complete else f"{len(spec.values)} smallest eigenvalues"
    return f"{which} of {name}: " + ", ".join(
        fmt(round(v.real, 6) + 1j * round(v.imag, 6)) if np.iscomplexobj(v) else fmt(round(float(v), 6))
        for v in spec.values
    )


def _spectrum_text(result: LaplacianResult) -> list[str]:
    """The eigenvalues and what the multiplicity of 0 says about the components."""
    graph, spec, comps = result.graph, result.spectrum, result.components.count
    if spec is None:
        return [
            f"eigenvalues skipped for {graph.n:,} nodes: pass --eigs K for the K smallest (ARPACK; slow on big graphs)"
        ]
    lines = [_spectrum_line("L", spec)]
    if result.normalized_spectrum is not None:
        lines.append(_spectrum_line("L_sym", result.normalized_spectrum))
    if graph.directed:
        lines.append(
            f"{comps} weakly connected component(s); for a directed graph the multiplicity of "
            f"eigenvalue 0 ({spec.zero_count}) need not equal it."
        )
    elif spec.complete or spec.zero_count < len(spec.values):
        agree = "✓" if spec.zero_count == comps else "✗ (negative weights?)"
        lines.append(
            f"eigenvalue 0 has multiplicity {spec.zero_count} = number of connected components "
            f"(graph search: {comps}) {agree}"
        )
    else:
        lines.append(
            f"all {len(spec.values)} computed eigenvalues are 0; the graph has {comps} connected "
            f"components (graph search)"
        )
    return lines


@render.register
def _render_laplacian(result: LaplacianResult, console: Console | None = None) -> None:
    graph = result.graph
    small = graph.n <= SUMMARY_NODES
    console = _console(console, _width(graph.nodes, result.laplacian) if small else 100)
    console.print(header(graph, result.components), highlight=False)
    if small:
        blocks = [
            ("A: adjacency matrix", graph.adjacency),
            (
                f"D: degree matrix, D[i, i] = {'out-' if graph.directed else ''}degree of i",
                result.degree_matrix,
            ),
            ("L = D − A: Laplacian", result.laplacian),
        ]
        if result.normalized is not None:
            blocks.append(("L_sym = I − D^-1/2 A D^-1/2: symmetric normalized Laplacian", result.normalized))
        for title, m in blocks:
            console.print("\n" + title)
            console.print(matrix_table(m, graph.nodes))
    else:
        console.print(summary_table(graph, result.degrees, result.components))
    for line in _spectrum_text(result):
        console.print(line, highlight=False)
    if result.features is not None:
        _render_features(console, result)


def _render_features(console: Console, result: LaplacianResult) -> None:
    graph, f = result.graph, result.features
    a = sp.csr_array(graph.adjacency)
    a.sort_indices()
    if graph.n > SUMMARY_NODES:
        agree = np.allclose(f.lx, f.neighbour_sums)
        console.print(
            f"F = L·X for {f.x.shape[1]} feature column(s): equal to Σ_j (x_i − x_j) over neighbours at "
            f"every node {'✓' if agree else '✗'} (values: --json / --npz)",
            highlight=False,
        )
        return
    for c, name in enumerate(f.names):
        console.print(f"\nF = L·X for feature {name}: (L·X)[i] = Σ over the neighbours j of i of (x_i − x_j)")
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for col in ("node", name, "Σ_j (x_i − x_j)", "(L·X)[i]"):
            table.add_column(col, justify="right" if col != "Σ_j (x_i − x_j)" else "left")
        for i, node in enumerate(graph.nodes):
            row = slice(a.indptr[i], a.indptr[i + 1])
            terms = [
                ("" if w == 1 else f"{fmt(w)}·") + f"({fmt(f.x[i, c])}−{fmt(f.x[j, c])})"
                for j, w in zip(a.indices[row], a.data[row], strict=True)
                if j != i  # a self-loop adds x_i - x_i = 0
            ]
            expr = (" + ".join(terms) or "0") + f" = {fmt(f.neighbour_sums[i, c])}"
            table.add_row(str(node), fmt(f.x[i, c]), expr, fmt(f.lx[i, c]))
        console.print(table)


def _spectrum_json(spec: Spectrum | None) -> dict | None:
    if spec is None:
        return None
    imag = np.imag(spec.values).tolist() if np.iscomplexobj(spec.values) else None
    return {
        "values": np.real(spec.values).tolist(),
        "imag": imag,
        "complete": spec.complete,
        "zero_count": spec.zero_count,
    }


@to_json.register
def _laplacian_to_json(result: LaplacianResult) -> dict:
    f = result.features
    norm = result.normalized
    return {
        "command": "graph laplacian",
        **_graph_json(result.graph, result.degrees, result.components),
        "adjacency": matrix_to_json(result.graph.adjacency),
        "degree_matrix": matrix_to_json(result.degree_matrix),
        "laplacian": matrix_to_json(result.laplacian),
        "normalized_laplacian": None if norm is None else matrix_to_json(norm),
        "eigenvalues": _spectrum_json(result.spectrum),
        "normalized_eigenvalues": _spectrum_json(result.normalized_spectrum),
        "features": None
        if f is None
        else {
            "names": f.names,
            "X": f.x.tolist(),
            "LX": f.lx.tolist(),
            "neighbour_sums": f.neighbour_sums.tolist(),
        },
    }


@to_npz.register
def _laplacian_npz(result: LaplacianResult) -> dict:
    out = {"A": result.graph.adjacency, "D": result.degree_matrix, "L": result.laplacian}
    if result.normalized is not None:
        out["L_sym"] = result.normalized
    if result.features is not None:
        out.update({"X": result.features.x, "LX": result.features.lx})
    return out


# ----------------------------------------------------------------------------- check


@render.register
def _render_check(result: CheckResult, console: Console | None = None) -> None:
    graph, lab, n = result.graph, result.graph.nodes, len(result.wrong)
    console = _console(console, _width(lab, result.given) + 4 * (len(lab) + 1))
    verdict = (
        "every cell is right."
        if n == 0
        else f"{n} cell{'s are' if n != 1 else ' is'} wrong, highlighted below as the given value → the right one."
    )
    console.print(f"given {result.title} for {graph.source}: " + verdict)
    console.print(matrix_table(result.given, lab, {(c.row, c.col): c.expected for c in result.wrong}))
    for c in result.wrong:
        console.print(
            f"wrong: [{lab[c.row]}, {lab[c.col]}] is {fmt(c.given)}, should be {fmt(c.expected)}",
            highlight=False,
        )
    for problem in result.problems:
        console.print(f"problem: {problem}", highlight=False, markup=False)
    if result.ok:
        console.print(f"all {graph.n * graph.n} entries of {result.title} are right ✓", highlight=False)
    else:
        console.print(
            f"{result.title} has {n} wrong cell(s) and {len(result.problems)} structural problem(s) ✗",
            highlight=False,
        )


@to_json.register
def _check_to_json(result: CheckResult) -> dict:
    lab = result.graph.nodes
    cells = [
        {
            "row": lab[c.row],
            "col": lab[c.col],
            "given": json_number(c.given),
            "expected": json_number(c.expected),
        }
        for c in result.wrong
    ]
    return {
        "command": "graph check",
        "source": result.graph.source,
        "kind": result.kind,
        "power": result.power,
        "nodes": lab,
        "ok": result.ok,
        "given": matrix_to_json(result.given),
        "expected": matrix_to_json(result.expected),
        "wrong_cells": cells,
        "problems": result.problems,
    }


# ----------------------------------------------------------------------------- reading back
# What the file does not hold is derived (the components from A) or left empty (a check's A,
# the powers' notes); readback.load then compares the whole file with to_json of the result, so
# a derived key (n_edges, weighted, component_sizes, ok, zero_count ...) that was edited is refused.


@dataclass
class _Coo:
    """A matrix too big for nested lists, as matrix_to_json writes it."""

    format: Literal["coo"]
    shape: tuple[int, int]
    row: list[int]
    col: list[int]
    data: list[int | float]


@dataclass
class _Eigenvalues:
    values: list[float]
    imag: list[float] | None
    complete: bool


@dataclass
class _Cell:
    row: int | str  # node labels, not indices
    col: int | str
    given: int | float
    expected: int | float


def _dtype(values: list) -> type:
    if any(isinstance(x, float) for x in values):
        return np.float64
    return object if any(abs(x) >= 2**63 for x in values) else np.int64


def _matrix(value: Any, n: int, at: str, sparse: bool = True):
    """An n x n matrix of the file: CSR float64 (``sparse``), else a dense array whose dtype keeps
    the file's numbers (int64, exact Python ints past int64, float64)."""
    if isinstance(value, dict):
        coo = typed(value, _Coo, at)
        if coo.shape != (n, n) or not len(coo.row) == len(coo.col) == len(coo.data):
            raise ResultError(at, f"is not a {n} x {n} COO matrix")
        if any(not 0 <= i < n for i in (*coo.row, *coo.col)):
            raise ResultError(at, f"has an index outside 0 to {n - 1}")
        m = sp.coo_array((np.asarray(coo.data, dtype=_dtype(coo.data)), (coo.row, coo.col)), shape=(n, n))
        return sp.csr_array(m, dtype=np.float64) if sparse else m.toarray()
    rows = typed(value, list[list[int | float]], at)
    if len(rows) != n or any(len(row) != n for row in rows):
        raise ResultError(at, f"is not a {n} x {n} matrix")
    dense = np.array(rows, dtype=_dtype([x for row in rows for x in row])).reshape(n, n)
    return sp.csr_array(dense, dtype=np.float64) if sparse else dense


def _graph(data: dict, with_adjacency: bool = True) -> Graph:
    nodes = typed(require(data, "nodes"), list[int | str], "nodes")
    n = len(nodes)
    if not with_adjacency:  # graph check records neither A nor the direction
        return build(Graph, data, nodes=nodes, adjacency=sp.csr_array((n, n)), directed=False)
    return build(Graph, data, nodes=nodes, adjacency=_matrix(require(data, "adjacency"), n, "adjacency"))


def _powers(data: dict) -> PowersResult:
    graph = _graph(data)
    extra = typed(require(data, "powers"), dict[str, Any], "powers")
    powers = [_matrix(data["adjacency"], graph.n, "adjacency", sparse=False)] + [
        _matrix(require(extra, str(k), "powers"), graph.n, f"powers.{k}", sparse=False)
        for k in range(2, len(extra) + 2)
    ]
    walks = data.get("walks")
    listing = None if walks is None else build(WalkListing, walks, at="walks", weighted=graph.weighted)
    return PowersResult(graph, powers, _degrees(data), components(graph.adjacency, graph.directed), listing)


def _degrees(data: dict) -> np.ndarray:
    return np.asarray(typed(require(data, "degrees"), list[int | float], "degrees"))


def _spectrum(data: dict, key: str) -> Spectrum | None:
    if data.get(key) is None:
        return None
    raw = typed(data[key], _Eigenvalues, key)
    values = np.asarray(raw.values, dtype=np.float64)
    if raw.imag is not None:
        if len(raw.imag) != len(raw.values):
            raise ResultError(f"{key}.imag", f"has {len(raw.imag)} values for {len(raw.values)} eigenvalues")
        values = values + 1j * np.asarray(raw.imag, dtype=np.float64)
    return Spectrum(values, raw.complete)


def _laplacian(data: dict) -> LaplacianResult:
    graph = _graph(data)
    n = graph.n
    features, norm = data.get("features"), data.get("normalized_laplacian")
    if features is not None:
        features = build(Features, features, "features", rename={"X": "x", "LX": "lx"})
        f = len(features.names)
        if any(m.shape != (n, f) for m in (features.x, features.lx, features.neighbour_sums)):
            raise ResultError("features", f"holds matrices that are not {n} x {f}")
    return LaplacianResult(
        graph,
        _degrees(data),
        _matrix(require(data, "degree_matrix"), n, "degree_matrix"),
        _matrix(require(data, "laplacian"), n, "laplacian"),
        None if norm is None else _matrix(norm, n, "normalized_laplacian"),
        _spectrum(data, "eigenvalues"),
        _spectrum(data, "normalized_eigenvalues"),
        components(graph.adjacency, graph.directed),
        features,
    )


def _check(data: dict) -> CheckResult:
    graph = _graph(data, with_adjacency=False)
    one_of(typed(require(data, "kind"), str, "kind"), KINDS, "kind")
    wrong = []
    for i, cell in enumerate(typed(require(data, "wrong_cells"), list[_Cell], "wrong_cells")):
        for key in ("row", "col"):
            one_of(getattr(cell, key), graph.nodes, f"wrong_cells.{i}.{key}")
        row, col = graph.nodes.index(cell.row), graph.nodes.index(cell.col)
        wrong.append(WrongCell(row, col, cell.given, cell.expected))
    given, expected = (_matrix(require(data, k), graph.n, k, sparse=False) for k in ("given", "expected"))
    return build(CheckResult, data, graph=graph, given=given, expected=expected, wrong=wrong)


def from_json(data: dict) -> PowersResult | LaplacianResult | CheckResult:
    """The result that :func:`to_json` wrote (the parsed ``--json`` file of ``graph powers``,
    ``laplacian`` or ``check``, told apart by its ``command``), checked field by field
    (hw2cli.common.readback.ResultError names the field)."""
    readers = {"graph powers": _powers, "graph laplacian": _laplacian, "graph check": _check}
    command = require(data, "command")
    one_of(command, readers, "command")
    return readers[command](data)
