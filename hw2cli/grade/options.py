"""The options of `hw2 grade gpt` and the table of its checks (name, default points, the checks
it builds on, what it tests). Torch-free: the grading parent never imports torch; the check
functions themselves live in checks.py, which only the submissions' processes import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError, Spec, check, option


@dataclass(frozen=True)
class CheckInfo:
    points: float
    needs: tuple[str, ...]  # checks that must pass first; otherwise this one is skipped
    what: str  # what it tests, in one line (tables, --json, docs/grade.md)


IMPORTED = ("imports",)
#: Every check, in the order they run. ``train-loss`` runs only with ``--train``.
CHECKS: dict[str, CheckInfo] = {
    "imports": CheckInfo(5, (), "the file imports within the limits and defines the template's classes"),
    "shapes": CheckInfo(
        5, IMPORTED, "attention (both paths, debug dict), RoPE, block and GPT give the right shapes"
    ),
    "rmsnorm": CheckInfo(5, IMPORTED, "RMSNorm is x / sqrt(mean(x^2) + eps) times its weight"),
    "causal-mask": CheckInfo(
        10, IMPORTED, "explicit path: future tokens never change past outputs; masked probs"
    ),
    "flash-causal": CheckInfo(5, IMPORTED, "flash path: future tokens never change past outputs"),
    "flash-matches-explicit": CheckInfo(
        5, ("causal-mask", "flash-causal"), "flash and explicit paths give the same output, dropout off"
    ),
    "attention-reference": CheckInfo(
        5, ("causal-mask",), "attention equals hw2's with the same weights (heads, 1/sqrt(d) scale, softmax)"
    ),
    "rope-norms": CheckInfo(5, IMPORTED, "apply_rotary_emb keeps the norm of every query and key"),
    "rope-relative": CheckInfo(5, IMPORTED, "rotated q_m . k_n depends only on the offset m - n"),
    "rope-angles": CheckInfo(5, IMPORTED, "position m turns pair i by m * 10000^(-2i/d), in either pairing"),
    "abs-emb": CheckInfo(5, IMPORTED, "abs_emb=True switches RoPE off in forward, abs_emb=False on"),
    "block": CheckInfo(
        10, IMPORTED, "the block is pre-norm with both residuals; mlpf is Linear, GELU, Linear"
    ),
    "gpt-forward": CheckInfo(
        5,
        ("rmsnorm", "attention-reference", "block"),
        "GPT logits equal hw2's GPT (learned positions) loaded with the same weights",
    ),
    "generate-greedy": CheckInfo(5, IMPORTED, "greedy generate equals an argmax loop cropped to block_size"),
    "generate-top-k": CheckInfo(5, IMPORTED, "top-k samples exactly the k most likely tokens (k=1: greedy)"),
    "generate-top-p": CheckInfo(5, IMPORTED, "top-p samples exactly the nucleus, renormalized"),
    "generate-temperature": CheckInfo(5, IMPORTED, "sampling at temperature t follows softmax(logits / t)"),
    "sandbox": CheckInfo(5, IMPORTED, "no writes outside its folder, no new processes, no network"),
    "train-loss": CheckInfo(
        10, ("gpt-forward",), "--train: the loss curve stays within a band of hw2's on the same batches"
    ),
}


@dataclass
class GradeOptions:
    """`hw2 grade gpt`: every check on every submission, each in its own process."""

    submissions: list[str] = option(
        spec=Spec(
            "A student's gpt.py, a folder holding one (its .py files are copied), or a folder of them.",
            argument=True,
            metavar="SUBMISSION",
        )
    )
    time_limit: float = option(
        60.0, "Wall-clock seconds each submission's process may run; then it is killed.", min=1.0, max=3600.0
    )
    memory_limit: int = option(
        2048,
        "MiB of address space a submission may map beyond the grader's own (torch maps about 3 GB); "
        "more raises MemoryError.",
        min=64,
        max=1_048_576,
    )
    points: str | None = option(
        None,
        "TOML file whose points table maps check names to points (the others keep their defaults).",
        path=True,
        show_default="built-in points, 100 in all",
    )
    train: bool = option(False, "Also train each GPT beside hw2's and compare the loss curves (train-loss).")
    jobs: int = option(1, "Submissions graded at the same time (one process each).", min=1, max=64)
    checks: dict[str, float] = field(default_factory=dict, init=False)  # name -> points, in run order

    def __post_init__(self) -> None:
        check(self)
        if not self.submissions:
            raise OptionError("{submissions}: give at least one gpt.py or folder")
        custom = read_points(self.points) if self.points else {}
        self.checks = {
            name: custom.get(name, info.points)
            for name, info in CHECKS.items()
            if self.train or name != "train-loss"
        }


def read_points(path: str | Path) -> dict[str, float]:
    """The [points] table of a TOML file, checked against the check names."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("points", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Hw2Error(
            f"cannot read the points file {path}: {exc}; give a TOML file with a [points] table"
        ) from None
    if not isinstance(table, dict):
        raise Hw2Error(f"points file {path}: points is not a table; write [points] then name = points lines")
    for name, value in table.items():
        if name not in CHECKS:
            raise Hw2Error(f"points file {path}: unknown check {name!r}; use one of {', '.join(CHECKS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
            raise Hw2Error(f"points file {path}: {name} = {value!r}; give a number from 0 to 999999")
    return {name: float(value) for name, value in table.items()}
