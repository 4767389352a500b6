"""The probes' one door to the GPT model and trainer (hw2cli.gpt), which they never copy, and what
the training probes (softmax-scale, positions, heads) share: the text they train on, the loop
over seeds and configurations in memory (no run directory), and its wall-time estimate."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hw2cli.common.corpus import NAME as BUILTIN_NAME
from hw2cli.common.corpus import write_builtin_corpus
from hw2cli.common.device import resolve_device
from hw2cli.common.errors import Hw2Error
from hw2cli.common.estimate import Cost, announce, seconds_per_call
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.gpt import model as gpt_model
from hw2cli.gpt.data import check_text_file, load_text, split_data
from hw2cli.gpt.options import TrainOptions
from hw2cli.gpt.tokens import CharTokenizer
from hw2cli.gpt.train import TrainResult, train
from hw2cli.probe.options import TrainingProbeOptions

EVAL_SHARE = 0.15  # the trainer's evaluations on top of its steps (eval_steps 10 every steps/5)
TIMED_STEPS = 3

#: (n_layer, n_head, n_embd, vocab_size, block_size, pos_emb=..., ...) -> a GPTConfig without dropout
make_config = functools.partial(gpt_model.GPTConfig, dropout=0.0)


def with_block_size(model: gpt_model.GPT, block_size: int) -> gpt_model.GPT:
    """The same weights in a model built for ``block_size`` positions (RoPE tables and the
    causal mask are buffers made from the config); refused for learned absolute positions."""
    if model.config.pos_emb == "learned" and block_size > model.config.block_size:
        raise Hw2Error("learned absolute positions have no embedding past the trained block size")
    longer = gpt_model.GPT(replace(model.config, block_size=block_size))
    longer.load_state_dict(model.state_dict())
    return longer.to(next(model.parameters()).device).eval()


def attention_maps(model: gpt_model.GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """One (B, n_head, T, T) tensor of softmax attention weights per layer."""
    with torch.no_grad(), model.record_attention() as maps:
        model(idx)
    return list(maps)


def validation_ids(txt_file: str | None, tokenizer: CharTokenizer, block_size: int) -> torch.Tensor:
    """The held-out ids the trainer validates on (its default split of the same text)."""
    text, _ = load_text(txt_file)
    return split_data(torch.tensor(tokenizer.encode(text), dtype=torch.long), 0.1, block_size)[1]


def windows(ids: torch.Tensor, length: int, count: int, seed: int) -> torch.Tensor:
    """``count`` windows of ``length + 1`` ids drawn with a seeded generator (inputs + target)."""
    if len(ids) < length + 1:
        raise OptionError(
            f"the validation text has {len(ids)} characters, fewer than {length + 1}; use a longer {{txt_file}}"
        )
    starts = torch.randint(len(ids) - length, (count,), generator=torch.Generator().manual_seed(seed))
    return ids[starts[:, None] + torch.arange(length + 1)]


def loss_per_position(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy at each position of ``batch`` (B, T + 1) -> (T,)."""
    device = next(model.parameters()).device
    x, y = batch[:, :-1].to(device), batch[:, 1:].to(device)
    with torch.no_grad():
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
    return loss.view(y.shape).mean(0).cpu()


# ----------------------------------------------------------------------------- training


@contextlib.contextmanager
def training_text(opts: TrainingProbeOptions, reporter: Reporter) -> Iterator[str]:
    """The path of the text to train on: ``txt_file``; else with ``quick`` hw2's own docstrings in
    a temporary file (no network); else Grimm's fairy tales, downloaded once (announced)."""
    if opts.txt_file is not None:
        check_text_file(opts.txt_file)  # refused in one line before the steps are timed
        yield opts.txt_file
        return
    if opts.quick:
        with tempfile.TemporaryDirectory(prefix="hw2-probe-text-") as tmp:
            path = write_builtin_corpus(Path(tmp) / "corpus.txt")
            reporter.note(f"training text: {BUILTIN_NAME} (built in, no download)")
            yield str(path)
        return
    from hw2cli.common.cache import cache_dir
    from hw2cli.gpt.corpus import default_corpus, grimm_path

    if not grimm_path().is_file():
        reporter.note(
            f"training text: Grimm's fairy tales, downloading once into {cache_dir()} "
            "(to stay offline, give a text file of your own, or use the quick sizes, which train on "
            "hw2's built-in text)"
        )
    yield str(default_corpus())


def trainings(
    opts: TrainingProbeOptions,
    reporter: Reporter,
    what: str,
    configs: dict[Any, tuple[str, dict[str, Any]]],
    result: Any,
) -> Iterator[tuple[str, int, Any, TrainResult]]:
    """Train each configuration (key -> (label, TrainOptions changes)) once per seed, in seed
    order, after announcing the estimated wall time; yields (text path, seed, key, trained model)
    and keeps ``result.device`` the models'. gpt-nano without dropout, five validation losses, no
    samples. A training cut by Ctrl-C raises KeyboardInterrupt."""
    steps = opts.size("steps")
    with training_text(opts, reporter) as txt:
        announce_estimate(opts, len(configs) * len(opts.seeds), f"the {what} trainings", reporter)
        for seed in opts.seeds:
            spec = TrainOptions(
                txt_file=txt,
                model_type="gpt-nano",
                block_size=opts.block_size,
                batch_size=opts.batch_size,
                lr=1e-3,
                max_steps=steps,
                seed=seed,
                device=opts.device,
                dropout=0.0,
                eval_interval=max(1, steps // 5),
                eval_steps=10,
                log_interval=max(1, steps // 50),
                sample_interval=0,
                sample_tokens=0,  # not even the greedy sample at the end
                out=None,
            )
            for key, (label, changes) in configs.items():
                reporter.log(f"training {label}, seed {seed} ({steps} steps)")
                trained = train(replace(spec, **changes), reporter=reporter)
                if trained.interrupted:
                    raise KeyboardInterrupt
                result.device = str(next(trained.model.parameters()).device)
                yield txt, seed, key, trained


def step_seconds(opts: TrainingProbeOptions, vocab_size: int = 96) -> float:
    """Seconds of one gpt-nano training step (forward, backward, AdamW) at the probe's batch and
    block size, timed over TIMED_STEPS steps after a warm-up step."""
    device = resolve_device(opts.device)
    config = gpt_model.GPTConfig.from_preset(
        "gpt-nano", vocab_size=vocab_size, block_size=opts.block_size, dropout=0.0
    )
    model = gpt_model.GPT(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(opts.seed)
    x = torch.randint(vocab_size, (opts.batch_size, opts.block_size + 1), generator=gen).to(device)

    def step() -> None:
        F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    return seconds_per_call(step, calls=TIMED_STEPS, sync=sync)


def announce_estimate(opts: TrainingProbeOptions, trainings: int, what: str, reporter: Reporter) -> None:
    """Note the estimated wall time of ``trainings`` trainings (hw2cli.common.estimate)."""
    basis = f"{trainings} trainings of {opts.size('steps')} steps, {TIMED_STEPS} steps timed here"
    steps = opts.size("steps") * trainings * (1 + EVAL_SHARE)
    announce(Cost(step_seconds(opts), steps, basis), what, "use fewer steps or repeats, or quick", reporter)
