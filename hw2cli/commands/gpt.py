"""`hw2 gpt train|generate` (homework Q2.2-Q2.9)."""

from __future__ import annotations

from pathlib import Path

import typer

from hw2cli.commands._choices import Device, GptPrecision, LrSchedule, ModelType, PosEmb
from hw2cli.commands._shared import (
    check_outputs,
    options_from,
    threads_option,
    use_threads,
    user_errors,
    write_json_then_exit,
)

NONFINITE_EXIT = 3  # `gpt train`: the loss became NaN or infinite (hw2cli.gpt.train.NONFINITE_EXIT)

app = typer.Typer(
    help="Train a character-level micro-GPT on a book and sample from it.", no_args_is_help=True
)


@app.command("train")
@user_errors
def gpt_train(
    txt_file: Path | None = typer.Option(
        None,
        "--txt-file",
        help="UTF-8 text to train on.",
        show_default="Grimm's fairy tales, downloaded once",
    ),
    model_type: ModelType = typer.Option(
        ModelType("gpt-mini"), "--model-type", help="Size preset (layers, heads, width) of minGPT."
    ),
    block_size: int = typer.Option(
        128, "--block-size", min=1, max=65536, help="Context length in tokens (characters by default)."
    ),
    batch_size: int = typer.Option(
        128, "--batch-size", min=1, max=65536, help="Windows per step (per process under torchrun)."
    ),
    lr: float = typer.Option(
        5e-4, "--lr", min=0.0, max=10.0, help="Peak learning rate (AdamW, betas 0.9/0.95)."
    ),
    weight_decay: float = typer.Option(
        0.1, "--weight-decay", min=0.0, max=10.0, help="Weight decay of the linear layers' weights."
    ),
    clip_grad_norm: float = typer.Option(
        1.0, "--clip-grad-norm", min=0.0, max=1e6, help="Clip the gradient norm to this (0: off)."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, max=100_000, help="Passes over the training split.", show_default="3"
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, max=10**9, help="Stop after this many steps (overrides --epochs)."
    ),
    pos_emb: PosEmb = typer.Option(
        PosEmb.rope, "--pos-emb", help="Positions: rotary, learned absolute, or none."
    ),
    abs_emb: bool = typer.Option(False, "--abs-emb", help="Alias of --pos-emb learned."),
    flash_attn: bool = typer.Option(False, "--flash-attn", help="Use scaled_dot_product_attention."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    precision: GptPrecision = typer.Option(
        GptPrecision.fp32, "--precision", help="Autocast precision (fp16: CUDA only)."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Seed of initialisation, batches and dropout."
    ),
    device: Device = typer.Option(Device.auto, "--device", help="Where to train."),
    threads: int = threads_option(),
    out: Path = typer.Option(Path("runs/gpt"), "--out", help="Run directory to write."),
    dropout: float = typer.Option(
        0.1, "--dropout", min=0.0, max=1.0, help="Embedding, attention and residual dropout."
    ),
    lr_schedule: LrSchedule = typer.Option(
        LrSchedule.constant, "--lr-schedule", help="Constant, or cosine decay to --min-lr."
    ),
    warmup_steps: int = typer.Option(0, "--warmup-steps", min=0, max=10**9, help="Linear warm-up steps."),
    min_lr: float | None = typer.Option(
        None, "--min-lr", min=0.0, max=10.0, help="Final cosine learning rate.", show_default="lr/10"
    ),
    eval_interval: int = typer.Option(
        500, "--eval-interval", min=1, max=10**9, help="Steps between validation losses and checkpoints."
    ),
    eval_steps: int = typer.Option(
        20, "--eval-steps", min=1, max=1_000_000, help="Batches per validation loss."
    ),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", min=0.001, max=0.9, help="Last fraction of the text held out for validation."
    ),
    log_interval: int = typer.Option(
        10, "--log-interval", min=1, max=10**9, help="Steps between rows of metrics.csv."
    ),
    sample_interval: int = typer.Option(
        500, "--sample-interval", min=0, max=10**9, help="Steps between greedy samples shown (0: none)."
    ),
    init_from: str | None = typer.Option(
        None,
        "--init-from",
        help="Fine-tune GPT-2: gpt2, gpt2-medium, gpt2-large, gpt2-xl (Hugging Face hub) or a folder in its layout.",
    ),
    tokenizer: str | None = typer.Option(
        None,
        "--tokenizer",
        help="char, gpt2 (GPT-2's BPE) or a tokenizer.json.",
        show_default="char; the model's own with --init-from",
    ),
    tensorboard: Path | None = typer.Option(
        None, "--tensorboard", help="Also write TensorBoard events to this folder (needs tensorboard)."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="Continue the run in this directory (its options; --max-steps/--epochs may extend it).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an earlier run in --out (its files go once the new run has a checkpoint).",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the summary and metrics as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a character-level GPT on a book (Q2.2-Q2.8): writes a run directory with Figure 3."""
    # Long only by its option declarations (each with help and range); the body is a few calls.
    check_outputs(
        json=json_path,
        inputs={"--txt-file": txt_file, "--init-from": init_from and Path(init_from)},
        writes={"--out": out, "--resume": resume, "--tensorboard": tensorboard},
    )
    from hw2cli.gpt import render
    from hw2cli.gpt.train import TrainOptions, train

    given = dict(locals())  # the options as parsed, named like TrainOptions' fields
    given["pos_emb"] = PosEmb.learned if abs_emb else pos_emb
    opts = options_from(TrainOptions, given)
    use_threads(threads)
    with render.train_reporter(quiet) as reporter:
        result = train(opts, reporter=reporter, resume=resume, force=force)
    if result.rank != 0:
        return
    render.render(result)
    if result.diverged_at is not None:  # exit 3, documented in docs/gpt.md
        write_json_then_exit(json_path, lambda: render.to_json(result))
        typer.echo(f"error: {render.diverged_message(result)}", err=True)
        raise typer.Exit(NONFINITE_EXIT)
    write_json_then_exit(json_path, lambda: render.to_json(result), result.interrupted)


@app.command("generate")
@user_errors
def gpt_generate(
    run_dir: Path | None = typer.Argument(
        None, help="Run directory written by `hw2 gpt train` (or give --init-from)."
    ),
    init_from: str | None = typer.Option(
        None,
        "--init-from",
        help="Sample from GPT-2 itself: gpt2, gpt2-medium, gpt2-large, gpt2-xl or a folder.",
    ),
    prompt: str = typer.Option(
        ..., "--prompt", help="Text to continue (a char model knows only its training text's characters)."
    ),
    num_samples: int = typer.Option(
        5, "--num-samples", min=1, max=10_000, help="Samples to draw (greedy gives one)."
    ),
    max_new_tokens: int = typer.Option(
        200,
        "--max-new-tokens",
        min=0,
        max=1_000_000,
        help="Tokens (characters for a char model) to generate per sample.",
    ),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token."),
    temperature: float | None = typer.Option(
        None, "--temperature", min=1e-4, max=1e4, help="Divide the logits by T.", show_default="1"
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", min=1, max=1_000_000, help="Sample among the K most likely tokens."
    ),
    top_p: float | None = typer.Option(
        None, "--top-p", min=1e-6, max=1.0, help="Nucleus sampling with mass P."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Seed of the sampler: same seed, same samples."
    ),
    device: Device = typer.Option(Device.auto, "--device", help="Where to sample."),
    threads: int = threads_option(),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the samples as JSON."),
) -> None:
    """Continue a prompt with a trained model (Q2.9): greedy, temperature, top-k or top-p."""
    check_outputs(json=json_path, inputs={"RUN_DIR": run_dir, "--init-from": init_from and Path(init_from)})
    from hw2cli.gpt import render
    from hw2cli.gpt.sample import generate_samples

    use_threads(threads)
    result = generate_samples(
        run_dir,
        prompt,
        init_from=init_from,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        device=device.value,
    )
    render.render(result)
    write_json_then_exit(json_path, lambda: render.to_json(result))
