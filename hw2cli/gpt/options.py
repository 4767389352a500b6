"""The options of `hw2 gpt train` (the CLI derives its flags from them) and the model presets; sizes
left ``None`` are chosen for the device. No torch: `hw2 --help` imports this."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hw2cli.common import options as common
from hw2cli.common.options import OptionError, Spec, check, option

#: minGPT's model types in size order: n_layer / n_head / n_embd.
PRESETS: dict[str, dict[str, int]] = {
    "gpt-nano": dict(n_layer=3, n_head=3, n_embd=48),
    "gpt-micro": dict(n_layer=4, n_head=4, n_embd=128),
    "gpt-mini": dict(n_layer=6, n_head=6, n_embd=384),
    "gopher-44m": dict(n_layer=8, n_head=16, n_embd=512),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),
}
PRESET_NAMES = tuple(PRESETS)
POS_EMBS = ("rope", "learned", "none")
SCHEDULES = ("constant", "cosine")
#: `gpt train`'s default run directory, which `gpt generate` reads when given none.
DEFAULT_RUN = "runs/gpt"

#: The course's configuration (homework Q2), the default on a GPU.
COURSE_SIZE = dict(model_type="gpt-mini", block_size=128, batch_size=128, max_steps=None, epochs=3)
#: The default on a CPU: a few minutes on 2 cores (docs/benchmarks.md), where gpt-mini's 3 epochs take days.
CPU_SIZE = dict(model_type="gpt-micro", block_size=64, batch_size=16, max_steps=1000, epochs=None)

#: What `--resume` may change; every other option defines the run and must match the record.
RESUME_MAY_CHANGE = ("max_steps", "epochs", "device", "compile", "tensorboard")
#: Fields that are not part of what a run records (how this call runs, not what it trains).
NOT_RECORDED = ("resume", "force")

INIT_FROM = Spec(  # one help text for both commands
    "OpenAI's GPT-2: gpt2, gpt2-medium, gpt2-large, gpt2-xl (Hugging Face hub) or a folder in its "
    "layout; `gpt train` fine-tunes it, `gpt generate` samples from it."
)
#: The one dropout (embedding, attention, residual) of TrainOptions and GPTConfig, checked here.
DROPOUT = Spec("Embedding, attention and residual dropout.", min=0.0, max=0.99)
_BY_DEVICE = "by device: gpt-mini on a GPU (the course's), gpt-micro on a CPU"


@dataclass
class TrainOptions:
    """`hw2 gpt train`: every option of a training run; ``out=None`` trains in memory only."""

    txt_file: str | None = option(None, common.TXT_FILE)
    model_type: str | None = option(
        None, "Size preset (layers, heads, width) of minGPT.", choices=PRESET_NAMES, show_default=_BY_DEVICE
    )
    block_size: int | None = option(
        None,
        "Context length in tokens (characters by default).",
        min=1,
        max=65536,
        show_default="by device: 128 on a GPU, 64 on a CPU",
    )
    batch_size: int | None = option(
        None,
        common.BATCH_SIZE,
        show_default="by device: 128 on a GPU, 16 on a CPU (per process under torchrun)",
    )
    lr: float = option(5e-4, common.LR)
    weight_decay: float = option(0.1, "Weight decay of the linear layers' weights.", min=0.0, max=10.0)
    clip_grad_norm: float = option(1.0, "Clip the gradient norm to this (0: off).", min=0.0, max=1e6)
    epochs: int | None = option(None, common.EPOCHS, show_default="by device: 3 on a GPU")
    max_steps: int | None = option(
        None,
        "Stop after this many steps (overrides --epochs).",
        min=1,
        max=10**9,
        show_default="by device: 1000 on a CPU",
    )
    pos_emb: str = option("rope", "Positions: rotary, learned absolute, or none.", choices=POS_EMBS)
    attn_scale: bool = option(True, "Scale attention scores by 1/sqrt(head size).", cli=False)
    n_head: int | None = option(None, "Heads per layer instead of the preset's.", min=1, max=1024, cli=False)
    flash_attn: bool = option(False, "Use scaled_dot_product_attention.")
    compile: bool = option(False, "torch.compile the model.")
    precision: str = option("fp32", common.PRECISION)
    seed: int = option(0, common.SEED)
    device: str = option("auto", common.DEVICE)
    out: str | None = option(DEFAULT_RUN, common.OUT)
    dropout: float = option(0.1, DROPOUT)
    lr_schedule: str = option("constant", "Constant, or cosine decay to --min-lr.", choices=SCHEDULES)
    warmup_steps: int = option(0, "Linear warm-up steps.", min=0, max=10**9)
    min_lr: float | None = option(
        None, "Final cosine learning rate.", min=0.0, max=10.0, show_default="lr/10"
    )
    eval_interval: int | None = option(
        None,
        "Steps between validation losses and checkpoints.",
        min=1,
        max=10**9,
        show_default="500, or a tenth of a shorter run",
    )
    eval_steps: int = option(20, "Batches per validation loss.", min=1, max=1_000_000)
    val_fraction: float = option(
        0.1, "Last fraction of the text held out for validation (0: none).", min=0.0, max=0.9
    )
    log_interval: int = option(10, "Steps between rows of metrics.csv.", min=1, max=10**9)
    sample_interval: int = option(500, "Steps between greedy samples shown (0: none).", min=0, max=10**9)
    sample_tokens: int = option(100, "Tokens of each greedy sample.", min=0, max=1_000_000, cli=False)
    init_from: str | None = option(None, INIT_FROM)
    tokenizer: str | None = option(
        None,
        "char, gpt2 (GPT-2's BPE) or a tokenizer.json.",
        show_default="char; the model's own with --init-from",
    )
    tensorboard: str | None = option(
        None, "Also write TensorBoard events to this folder (needs tensorboard).", path=True
    )
    resume: str | None = option(
        None,
        "Continue the run in this directory with its recorded options. Only --max-steps or --epochs "
        "(to extend it), --device, --threads, --compile and the outputs (--json, --tensorboard, "
        "--quiet) may change; any other option given must equal the recorded value.",
        path=True,
        metavar="RUN_DIR",
        show_default=False,
    )
    force: bool = option(False, common.FORCE)

    def __post_init__(self) -> None:
        check(self)
        if self.min_lr is not None and self.min_lr > self.lr:
            raise OptionError(f"{{min_lr}} {self.min_lr:g} is above {{lr}} {self.lr:g}; give a smaller floor")
        if self.init_from is not None and self.tokenizer == "char":
            raise OptionError("{init_from} needs the pretrained model's tokenizer; drop {tokenizer} char")
        if self.resume is not None and self.force:
            raise OptionError("{force} replaces a run, {resume} continues one; give one of the two")

    def recorded(self) -> dict[str, Any]:
        """The options a run directory records (config.json's ``train``)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_RECORDED}


def fill_sizes(opts: TrainOptions, device_type: str) -> tuple[TrainOptions, str | None]:
    """``opts`` with the sizes it leaves ``None`` chosen for ``device_type`` ("cpu", "cuda"), and a
    line saying what was chosen and why (or None)."""
    base = COURSE_SIZE if device_type == "cuda" else CPU_SIZE
    chosen = {k: base[k] for k in ("model_type", "block_size", "batch_size") if getattr(opts, k) is None}
    if opts.init_from is not None:
        chosen.pop("model_type", None)  # the pretrained model's shape
    if opts.max_steps is None and opts.epochs is None:
        chosen.update({k: base[k] for k in ("max_steps", "epochs") if base[k] is not None})
    if not chosen:
        return opts, None
    shown = " ".join(f"{{{k}}} {v}" for k, v in chosen.items())
    if device_type == "cuda":
        why = "the course's configuration, on a GPU"
    elif opts.init_from is not None:
        why = "a short run on a CPU"
    else:
        why = "a run of minutes on a CPU, where the course's gpt-mini for 3 epochs takes days"
    return dataclasses.replace(opts, **chosen), f"chose {shown}: {why}; give these options to choose yourself"


def total_steps(opts: TrainOptions, train_tokens: int, world_size: int = 1) -> int:
    """``max_steps``, else ``epochs`` (default 3) passes of ``batch_size x world_size`` windows."""
    if opts.max_steps is not None:
        return opts.max_steps
    per_epoch = math.ceil((train_tokens - opts.block_size) / (opts.batch_size * world_size))
    return (opts.epochs or 3) * per_epoch


def eval_interval(opts: TrainOptions, total: int) -> int:
    """``eval_interval``, by default 500 steps or a tenth of a shorter run."""
    return opts.eval_interval or max(1, min(500, total // 10))
