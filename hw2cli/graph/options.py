"""The options of `hw2 graph powers / laplacian / check`: one dataclass per command, each field
with its help, range and default (hw2cli.common.options); the CLI derives its flags from them
and the library functions take them (``run_powers(PowersOptions(edges="g.txt"))``)."""

from __future__ import annotations

from dataclasses import dataclass

from hw2cli.common.options import OptionError, Spec, check, option

MAX_POWER = 20  # highest power of A (and longest walk) the commands accept
DEFAULT_MAX_WALKS = 1000
MAX_MAX_WALKS = 1_000_000
KINDS = ("adjacency", "power", "degree", "laplacian")

EDGES = Spec(
    "Edge-list file: one `u v` or `u v weight` per line, # comments, blank lines ignored.",
    path=True,
    argument=True,
    show_default=False,
)
MATRIX = Spec(
    "Matrix file: rows of numbers, or a nested list [[0,1],[1,0]], nodes 1..n in order (powers, "
    "laplacian: the adjacency matrix instead of EDGES; check: the hand-written matrix to check).",
    path=True,
)
DIRECTED = Spec("Treat `u v` as the edge u -> v only (degrees are out-degrees).")


@dataclass
class PowersOptions:
    """`hw2 graph powers`: A, A^2 ... A^max_power, and the walks from one node to another."""

    edges: str | None = option(None, EDGES)
    matrix: str | None = option(None, MATRIX)
    directed: bool = option(False, DIRECTED)
    max_power: int = option(2, "Print A, A^2 ... A^N.", min=1, max=MAX_POWER)
    walks: tuple[str, str] | None = option(None, "List every walk from node I to node J.", metavar="I J")
    length: int = option(2, "Length (number of steps) of the walks listed by --walks.", min=1, max=MAX_POWER)
    max_walks: int = option(
        DEFAULT_MAX_WALKS,
        "List walks only when there are at most this many; each listed walk is one line of output "
        "and about 13 bytes of --json per node (length 8: 115 bytes; 1,000,000 such walks: 115 MB).",
        min=1,
        max=MAX_MAX_WALKS,
    )

    def __post_init__(self) -> None:
        check(self)


@dataclass
class LaplacianOptions:
    """`hw2 graph laplacian`: D, L = D - A, the spectrum, components, optionally L X."""

    edges: str | None = option(None, EDGES)
    matrix: str | None = option(None, MATRIX)
    directed: bool = option(False, DIRECTED)
    normalized: bool = option(False, "Also print I - D^-1/2 A D^-1/2 and its eigenvalues.")
    features: str | None = option(
        None,
        "Node-feature table X (CSV or whitespace, one row per node, node order): print L·X.",
        path=True,
    )
    eigs: int | None = option(
        None,
        "Only the K smallest eigenvalues (sparse solver; 0: none).",
        min=0,
        max=1_000_000,
        show_default="all up to 2,000 nodes, none beyond",
    )

    def __post_init__(self) -> None:
        check(self)
        if self.normalized and self.directed:
            raise OptionError(
                "{normalized} is the symmetric normalized Laplacian of an undirected graph; "
                "drop {directed} or {normalized}"
            )


@dataclass
class CheckOptions:
    """`hw2 graph check`: a hand-written matrix against the right one."""

    edges: str = option(spec=EDGES)
    matrix: str = option(spec=MATRIX)
    kind: str = option(spec="Which matrix it is (power: A^k, see --power).", choices=KINDS)
    power: int | None = option(
        None, "For --kind power: the exponent k of A^k.", min=1, max=MAX_POWER, show_default="2"
    )
    directed: bool = option(False, DIRECTED)

    def __post_init__(self) -> None:
        check(self)
        if self.power is not None and self.kind != "power":
            raise OptionError("{power} only goes with {kind} power; drop it or use {kind} power")
