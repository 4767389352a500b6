"""The `hw2` command line: a Typer app of thin commands.

Each command parses its options, calls one library function of a subpackage
(``hw2cli.graph``, ``hw2cli.padding``, ``hw2cli.rotation``, ``hw2cli.gpt``) and hands the
result to that subpackage's ``render`` module. Heavy imports (torch above all) happen
inside the command bodies, so ``hw2 --help`` and ``hw2 graph ...`` start fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Optional

import typer

from hw2cli import __version__
from hw2cli.common.errors import Hw2Error

app = typer.Typer(
    name="hw2",
    help="Reproduce the experiments of the CNN / Transformer / graph homework from the shell.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
graph_app = typer.Typer(help="Adjacency, walk-count, degree and Laplacian matrices of small graphs.", no_args_is_help=True)
gpt_app = typer.Typer(help="Train a character-level micro-GPT on a book and sample from it.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
app.add_typer(gpt_app, name="gpt")


def user_errors(fn: Callable) -> Callable:
    """Turn Hw2Error into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Hw2Error as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hw2 {__version__}")
        raise typer.Exit()


def _check_outputs(**paths: Optional[Path]) -> None:
    """Fail before any long work if an output given as ``--NAME PATH`` cannot be written."""
    from hw2cli.common.io import check_writable

    for name, path in paths.items():
        if path is not None:
            check_writable(path, f"--{name.replace('_', '-')} file")


def _write_json_then_exit(json_path: Optional[Path], make_json: Callable[[], dict], interrupted: bool = False) -> None:
    """Write ``make_json()`` to ``--json`` if given; exit 130 when the work was interrupted."""
    from hw2cli.common.io import write_json

    if json_path is not None:
        write_json(json_path, make_json())
    if interrupted:
        raise typer.Exit(130)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Reproduce the experiments of the CNN / Transformer / graph homework from the shell."""


# ----------------------------------------------------------------------------- graph (Q3.1)


_EDGES_HELP = "Edge-list file: one `u v` or `u v weight` per line, # comments, blank lines ignored."
_MATRIX_HELP = "Dense adjacency matrix file instead of EDGES: rows of numbers, or a nested list [[0,1],[1,0]]; nodes are 1..n."


def _graph_command(compute: Callable, kind: str, quiet: bool, json_path: Optional[Path], npz_path: Optional[Path]) -> None:
    """The flow shared by `graph powers` and `graph laplacian`: check the output paths, run
    ``compute(reporter)``, print the result, then write --json / --npz (``kind`` picks the
    render functions ``render_<kind>``, ``<kind>_to_json`` and ``<kind>_npz``)."""
    from hw2cli.common.progress import RichReporter
    from hw2cli.graph import render
    from hw2cli.graph.io import write_npz

    _check_outputs(json=json_path, npz=npz_path)
    try:
        with RichReporter(quiet) as reporter:
            result = compute(reporter)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    getattr(render, f"render_{kind}")(result)
    if npz_path is not None:
        write_npz(npz_path, result.graph.nodes, getattr(render, f"{kind}_npz")(result))
    _write_json_then_exit(json_path, lambda: getattr(render, f"{kind}_to_json")(result))


@graph_app.command("powers")
@user_errors
def graph_powers(
    edges: Optional[Path] = typer.Argument(None, help=_EDGES_HELP, show_default=False),
    matrix: Optional[Path] = typer.Option(None, "--matrix", help=_MATRIX_HELP),
    directed: bool = typer.Option(False, "--directed", help="Treat `u v` as the edge u -> v only."),
    max_power: int = typer.Option(2, "--max-power", help="Print A, A^2 ... A^N (1 to 20)."),
    walks: Optional[tuple[str, str]] = typer.Option(None, "--walks", metavar="I J", help="List every walk from node I to node J."),
    length: int = typer.Option(2, "--length", help="Length (number of steps) of the walks listed by --walks."),
    max_walks: int = typer.Option(1000, "--max-walks", help="List walks only when there are at most this many."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the matrices with their node order as JSON."),
    npz_path: Optional[Path] = typer.Option(None, "--npz", help="Write the matrices as sparse arrays in a .npz file."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
) -> None:
    """Adjacency matrix A and its powers: entry (i, j) of A^k counts the walks of length k from i to j."""
    from hw2cli.graph.walks import run_powers

    _graph_command(
        lambda reporter: run_powers(edges, matrix, directed, max_power, walks, length, max_walks, reporter),
        "powers", quiet, json_path, npz_path,
    )


@graph_app.command("laplacian")
@user_errors
def graph_laplacian(
    edges: Optional[Path] = typer.Argument(None, help=_EDGES_HELP, show_default=False),
    matrix: Optional[Path] = typer.Option(None, "--matrix", help=_MATRIX_HELP),
    directed: bool = typer.Option(False, "--directed", help="Treat `u v` as the edge u -> v only (D = out-degree)."),
    normalized: bool = typer.Option(False, "--normalized", help="Also print I - D^-1/2 A D^-1/2 and its eigenvalues."),
    features: Optional[Path] = typer.Option(None, "--features", help="Node-feature table X (CSV or whitespace, one row per node, node order): print L·X."),
    eigs: Optional[int] = typer.Option(None, "--eigs", help="Only the K smallest eigenvalues (sparse solver; 0: none). Default: all up to 2000 nodes, none beyond."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the matrices, eigenvalues and components as JSON."),
    npz_path: Optional[Path] = typer.Option(None, "--npz", help="Write the matrices as sparse arrays in a .npz file."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
) -> None:
    """Degree matrix D, Laplacian L = D - A, its eigenvalues and the connected components."""
    from hw2cli.graph.laplacian import run_laplacian

    _graph_command(
        lambda reporter: run_laplacian(edges, matrix, directed, normalized, features, eigs, reporter),
        "laplacian", quiet, json_path, npz_path,
    )


@graph_app.command("check")
@user_errors
def graph_check(
    edges: Path = typer.Argument(..., help=_EDGES_HELP, show_default=False),
    matrix: Path = typer.Option(..., "--matrix", help="The hand-written matrix to check: rows of numbers, or [[0,1],[1,0]], in node order."),
    kind: str = typer.Option(..., "--kind", help="Which matrix it is: adjacency, power, degree or laplacian."),
    power: Optional[int] = typer.Option(None, "--power", help="For --kind power: the exponent k of A^k (default 2)."),
    directed: bool = typer.Option(False, "--directed", help="Treat `u v` as the edge u -> v only."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison as JSON."),
) -> None:
    """Compare a hand-computed matrix with the right one; exit 1 if anything is wrong."""
    from hw2cli.graph import render
    from hw2cli.graph.check import run_check

    _check_outputs(json=json_path)
    result = run_check(edges, matrix, kind, power, directed)
    render.render_check(result)
    _write_json_then_exit(json_path, lambda: render.check_to_json(result))
    if not result.ok:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- padding-bench (Q1.1)

padding_app = typer.Typer(
    help="Padding and translation invariance (Q1.1): train Net1/Net2 with six paddings, print Tables 1 and 2.",
)
app.add_typer(padding_app, name="padding-bench")


@padding_app.callback(invoke_without_command=True)
@user_errors
def padding_bench(
    ctx: typer.Context,
    net: str = typer.Option("net1", "--net", help="net1 (global max pool: Table 1) or net2 (flatten + linear: Table 2)."),
    conv_types: Optional[str] = typer.Option(
        None, "--conv-types", help="Comma-separated subset of valid,replicate,reflect,circular,sconv,fconv (default: all)."
    ),
    rounds: int = typer.Option(10, "--rounds", help="Networks per conv type; round m is initialised with seed m."),
    epochs: int = typer.Option(50, "--epochs", help="Most epochs per network (early stopping after 9 epochs without a better validation loss)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda. auto: the rounds train batched on a GPU, one process per core on the CPU."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (autocast; slow on CPUs without AVX-512 bf16)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data sets."),
    independent_val: bool = typer.Option(
        False, "--independent-val",
        help="Draw the validation set from its own seed. By default, as in the course code, it is the first 1,000 training images.",
    ),
    unshifted: bool = typer.Option(False, "--unshifted", help="Add a row with the accuracy on the test set before its 16-pixel shift."),
    workers: int = typer.Option(0, "--workers", help="CPU worker processes (0: one per core); the numbers do not depend on it."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write every per-round number and the settings as JSON."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one CSV line per (conv type, round)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train every conv type's networks and print the table of the report.

    Validation accuracy is that of the last epoch trained (as the course code reports it);
    test accuracy is that of the kept weights (lowest validation loss) on the shifted test set.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from hw2cli.common.io import atomic_write_text
    from hw2cli.common.progress import RichReporter
    from hw2cli.padding.bench import parse_conv_types, run_padding_bench
    from hw2cli.padding.render import render, to_csv, to_json

    types = parse_conv_types(conv_types)
    _check_outputs(json=json_path, csv=csv_path)
    with RichReporter(quiet) as reporter:
        result = run_padding_bench(
            net=net.lower(), conv_types=types, rounds=rounds, epochs=epochs, device=device, precision=precision,
            seed=seed, independent_val=independent_val, workers=workers, reporter=reporter,
        )
    render(result, Console(), unshifted=unshifted)
    if csv_path is not None:
        atomic_write_text(csv_path, to_csv(result))
    _write_json_then_exit(json_path, lambda: to_json(result), result.interrupted)


@padding_app.command("preview")
@user_errors
def padding_preview(
    out_dir: Path = typer.Argument(..., help="Folder for the PNG files."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data sets."),
    per_class: int = typer.Option(4, "--per-class", help="Examples per image (1-32)."),
) -> None:
    """Write enlarged PNG examples of each class from the training and test sets."""
    from hw2cli.common.io import check_writable_dir
    from hw2cli.padding.preview import write_previews

    if not 1 <= per_class <= 32:
        raise Hw2Error(f"--per-class {per_class}: use a number from 1 to 32")
    check_writable_dir(out_dir)
    for path in write_previews(out_dir, seed=seed, per_class=per_class):
        typer.echo(str(path))




# ----------------------------------------------------------------------------- rotate-eval (Q1.2)


@app.command("rotate-eval")
@user_errors
def rotate_eval(
    dataset: str = typer.Option("cifar10", "--dataset", help="cifar10, digits (offline, scikit-learn) or imagefolder:PATH (PATH/train and PATH/test, one sub-folder per class)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Cache folder for CIFAR-10 (default: $HW2_CACHE_DIR, else ~/.cache/hw2)."),
    epochs: int = typer.Option(10, "--epochs", help="Training epochs per model."),
    angles: str = typer.Option("0:360:30", "--angles", help="Test angles in degrees: START:STOP:STEP (STOP included) and/or a comma list."),
    mode: str = typer.Option("both", "--mode", help="plain, augmented (random rotations in training) or both."),
    batch_size: int = typer.Option(64, "--batch-size", help="Training mini-batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, batch order and random angles."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (autocast)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the accuracy-against-angle plot (PNG) here."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Write a grid of rotated test images (PNG) here."),
    save_models: Optional[Path] = typer.Option(None, "--save-models", help="Save the trained models (safetensors + config.json) in this folder."),
    load_models: Optional[Path] = typer.Option(None, "--load-models", help="Load models saved with --save-models instead of training."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Accuracy of a small CNN on rotated test images, trained plain and with random rotations (Q1.2, Figures 1 and 2)."""
    from hw2cli.common.progress import RichReporter

    _check_outputs(json=json_path, plot=plot, preview=preview)
    from hw2cli.rotation import plot as rotation_plot
    from hw2cli.rotation import render as rotation_render
    from hw2cli.rotation.experiment import run_rotation_experiment

    with RichReporter(quiet) as reporter:
        result = run_rotation_experiment(
            dataset, data_dir=data_dir, epochs=epochs, angles=angles, mode=mode, batch_size=batch_size, lr=lr,
            seed=seed, device=device, precision=precision, save_models=save_models, load_models=load_models,
            preview_images=6 if preview is not None else 0, reporter=reporter,
        )
    rotation_render.render(result)
    if plot is not None and result.models:
        rotation_plot.save_accuracy_plot(result, plot)
    if preview is not None and result.preview is not None:
        rotation_plot.save_preview_grid(result, preview)
    _write_json_then_exit(json_path, lambda: rotation_render.to_json(result), result.interrupted)


# ----------------------------------------------------------------------------- gpt (Q2.2-Q2.9)
@gpt_app.command("train")
@user_errors
def gpt_train(
    txt_file: Optional[Path] = typer.Option(None, "--txt-file", help="UTF-8 text to train on.", show_default="Grimm's fairy tales, downloaded once"),
    model_type: str = typer.Option("gpt-mini", "--model-type", help="Preset: gpt-nano, gpt-micro, gpt-mini, gopher-44m, gpt2, gpt2-medium, gpt2-large, gpt2-xl."),
    block_size: int = typer.Option(128, "--block-size", help="Context length in characters."),
    batch_size: int = typer.Option(128, "--batch-size", help="Windows per step (per process under torchrun)."),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate (AdamW, betas 0.9/0.95)."),
    weight_decay: float = typer.Option(0.1, "--weight-decay", help="Weight decay of the linear layers' weights."),
    clip_grad_norm: float = typer.Option(1.0, "--clip-grad-norm", help="Clip the gradient norm to this (0: off)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training split.", show_default="3"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many steps (overrides --epochs)."),
    abs_emb: bool = typer.Option(False, "--abs-emb", help="Learned absolute positions instead of RoPE."),
    flash_attn: bool = typer.Option(False, "--flash-attn", help="Use scaled_dot_product_attention."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 or fp16 (CUDA only) autocast."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, batches and dropout."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    out: Path = typer.Option(Path("runs/gpt"), "--out", help="Run directory to write."),
    dropout: float = typer.Option(0.1, "--dropout", help="Embedding, attention and residual dropout."),
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant or cosine (to --min-lr)."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Linear warm-up steps."),
    min_lr: Optional[float] = typer.Option(None, "--min-lr", help="Final cosine learning rate.", show_default="lr/10"),
    eval_interval: int = typer.Option(500, "--eval-interval", help="Steps between validation losses and checkpoints."),
    eval_steps: int = typer.Option(20, "--eval-steps", help="Batches per validation loss."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Last fraction of the text held out for validation."),
    log_interval: int = typer.Option(10, "--log-interval", help="Steps between rows of metrics.csv."),
    sample_interval: int = typer.Option(500, "--sample-interval", help="Steps between greedy samples shown (0: none)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory (its options; --max-steps/--epochs may extend it)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the summary and metrics as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a character-level GPT on a book (Q2.2-Q2.8): writes a run directory with Figure 3."""
    _check_outputs(json=json_path)
    from hw2cli.gpt import render
    from hw2cli.gpt.train import TrainOptions, train

    opts = TrainOptions(
        txt_file=None if txt_file is None else str(txt_file), model_type=model_type, block_size=block_size,
        batch_size=batch_size, lr=lr, weight_decay=weight_decay, clip_grad_norm=clip_grad_norm, epochs=epochs,
        max_steps=max_steps, abs_emb=abs_emb, flash_attn=flash_attn, compile=compile, precision=precision,
        seed=seed, device=device, out=str(out), dropout=dropout, lr_schedule=lr_schedule,
        warmup_steps=warmup_steps, min_lr=min_lr, eval_interval=eval_interval, eval_steps=eval_steps,
        val_fraction=val_fraction, log_interval=log_interval, sample_interval=sample_interval,
    )
    with render.train_reporter(quiet) as reporter:
        result = train(opts, reporter=reporter, resume=resume)
    if result.rank != 0:
        return
    render.render_train(result)
    _write_json_then_exit(json_path, lambda: render.train_to_json(result), result.interrupted)


@gpt_app.command("generate")
@user_errors
def gpt_generate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `hw2 gpt train`."),
    prompt: str = typer.Option(..., "--prompt", help="Text to continue (characters of the training text only)."),
    num_samples: int = typer.Option(5, "--num-samples", help="Samples to draw (greedy gives one)."),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", help="Characters to generate per sample."),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely character."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Divide the logits by T.", show_default="1"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample among the K most likely characters."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling with mass P."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler: same seed, same samples."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the samples as JSON."),
) -> None:
    """Continue a prompt with a trained model (Q2.9): greedy, temperature, top-k or top-p."""
    _check_outputs(json=json_path)
    from hw2cli.gpt import render
    from hw2cli.gpt.sample import generate_samples

    result = generate_samples(
        run_dir, prompt, num_samples=num_samples, max_new_tokens=max_new_tokens, greedy=greedy,
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, device=device,
    )
    render.render_generate(result)
    _write_json_then_exit(json_path, lambda: render.generate_to_json(result))


# ----------------------------------------------------------------------------- report


@app.command("report")
@user_errors
def report(
    run_dir: Path = typer.Argument(..., help="The --out folder of scripts/reproduce.sh."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the Markdown.", show_default="RUN_DIR/report.md"),
) -> None:
    """Turn the JSON and PNG outputs of scripts/reproduce.sh into one report.md."""
    from hw2cli.common.io import atomic_write_text, check_writable
    from hw2cli.report.build import build_report

    target = check_writable(out if out is not None else run_dir / "report.md", "report file")
    result = build_report(run_dir)
    atomic_write_text(target, result.markdown)
    missing = f"; not run: {', '.join(result.missing)}" if result.missing else ""
    n = len(result.present)
    typer.echo(f"wrote {target} ({n} part{'' if n == 1 else 's'}{missing})")
