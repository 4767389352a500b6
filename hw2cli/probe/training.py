"""What the training probes (softmax-scale, positions, heads) share around the trainer
(``_gpt.train_gpt``): the text they train on, the loop over seeds and configurations, and the
wall-time estimate announced before the work starts."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from hw2cli.common.corpus import NAME as BUILTIN_NAME
from hw2cli.common.corpus import write_builtin_corpus
from hw2cli.common.device import resolve_device
from hw2cli.common.estimate import Cost, announce, seconds_per_call
from hw2cli.common.progress import Reporter
from hw2cli.gpt.data import check_text_file
from hw2cli.probe import _gpt
from hw2cli.probe.options import TrainingProbeOptions

EVAL_SHARE = 0.15  # the trainer's evaluations on top of its steps (eval_steps 10 every steps/5)
TIMED_STEPS = 3


@contextlib.contextmanager
def training_text(opts: TrainingProbeOptions, reporter: Reporter) -> Iterator[str]:
    """The path of the text to train on: ``txt_file``; with ``quick`` and no file, hw2's own
    docstrings written to a temporary file (no network); else Grimm's fairy tales, downloaded
    once into the cache (announced, as it needs the network)."""
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
    from hw2cli.gpt.data import GRIMM_FILE, default_corpus

    if not (cache_dir() / GRIMM_FILE).is_file():
        reporter.note(
            f"training text: Grimm's fairy tales, downloading once into {cache_dir()} "
            "(to stay offline, give a text file of your own, or use the quick sizes, which train on "
            "hw2's built-in text)"
        )
    yield str(default_corpus())


def trainings(
    opts: TrainingProbeOptions, reporter: Reporter, what: str, configs: dict[Any, tuple[str, dict[str, Any]]]
) -> Iterator[tuple[str, int, Any, _gpt.TrainResult]]:
    """Train each configuration (key -> (label, ``train_gpt`` keywords)) once per seed, in
    seed order, announcing the estimated wall time first; yields (text path, seed, key, trained
    model). A training cut by Ctrl-C raises KeyboardInterrupt."""
    with training_text(opts, reporter) as txt:
        announce_estimate(opts, len(configs) * len(opts.seeds), f"the {what} trainings", reporter)
        for seed in opts.seeds:
            size = (opts.block_size, opts.batch_size)
            spec = _gpt.train_options(txt, opts.size("steps"), seed, opts.device, *size)
            for key, (label, kwargs) in configs.items():
                trained = _gpt.train_gpt(spec, f"{label}, seed {seed}", reporter, **kwargs)
                if trained.interrupted:
                    raise KeyboardInterrupt
                yield txt, seed, key, trained


def step_seconds(opts: TrainingProbeOptions, vocab_size: int = 96) -> float:
    """Seconds of one training step of gpt-nano at the probe's batch and block size (forward,
    backward, AdamW), timed here over TIMED_STEPS steps after a warm-up step."""
    device = resolve_device(opts.device)
    spec = _gpt.gpt_model.PRESETS["gpt-nano"]
    config = _gpt.make_config(spec["n_layer"], spec["n_head"], spec["n_embd"], vocab_size, opts.block_size)
    model = _gpt.gpt_model.GPT(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(opts.seed)
    x = torch.randint(vocab_size, (opts.batch_size, opts.block_size + 1), generator=gen).to(device)

    def step() -> None:
        logits = model(x[:, :-1])
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    return seconds_per_call(step, calls=TIMED_STEPS, sync=sync)


def announce_estimate(opts: TrainingProbeOptions, trainings: int, what: str, reporter: Reporter) -> None:
    """Note the estimated wall time of ``trainings`` trainings (hw2cli.common.estimate)."""
    basis = f"{trainings} trainings of {opts.size('steps')} steps, {TIMED_STEPS} steps timed here"
    steps = opts.size("steps") * trainings * (1 + EVAL_SHARE)
    announce(Cost(step_seconds(opts), steps, basis), what, "use fewer steps or repeats, or quick", reporter)
