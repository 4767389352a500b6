"""`hw2 gpt train|generate` (homework Q2.2-Q2.9)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Annotated

import typer

from hw2cli.commands._options import JsonOut, Quiet, Threads, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import catch_interrupts, use_threads, user_errors
from hw2cli.gpt.generate_options import GenerateOptions
from hw2cli.gpt.options import TrainOptions

app = typer.Typer(
    help="Train a character-level micro-GPT on a book and sample from it.", no_args_is_help=True
)

NONFINITE_EXIT = 3  # exit code of `hw2 gpt train` when the loss became NaN or infinite (docs/gpt.md)
AbsEmb = Annotated[bool, typer.Option("--abs-emb", help="Alias of --pos-emb learned.")]


def _given(ctx: typer.Context) -> set[str]:
    """The options given on the command line (not defaulted), for --resume's checks. The
    source is read by its public name: its enum lives in Typer's private copy of Click."""
    given = ("COMMANDLINE", "ENVIRONMENT")
    return {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) in given}


def _inputs(opts: TrainOptions) -> dict[str, Path | None]:
    """What the run reads, so that no output can replace it: the text (the default corpus once
    cached), a pretrained folder, a tokenizer file, and a resumed run's recorded ones."""
    from hw2cli.gpt.corpus import grimm_path

    inputs = {
        "--txt-file": None if opts.txt_file is None else Path(opts.txt_file),
        "the default corpus": grimm_path() if opts.txt_file is None and opts.resume is None else None,
        "--init-from": None if opts.init_from is None else Path(opts.init_from),
        "--tokenizer": Path(opts.tokenizer) if opts.tokenizer not in (None, "char", "gpt2") else None,
    }
    return {**inputs, **_recorded_inputs(opts.resume)}


def _recorded_inputs(resume: str | None) -> dict[str, Path]:
    """The files a run being resumed reads (its recorded text, or the default corpus, and a
    pretrained folder or tokenizer file); nothing when the folder cannot be read (resuming then
    fails with its own message)."""
    from hw2cli.common.errors import Hw2Error, Hw2Warning
    from hw2cli.gpt.corpus import grimm_path
    from hw2cli.gpt.pretrained import HUB_MODELS
    from hw2cli.gpt.saved import open_run

    if resume is None:
        return {}
    try:
        with warnings.catch_warnings():  # the run itself warns about a half-written checkpoint
            warnings.simplefilter("ignore", Hw2Warning)
            recorded = open_run(resume, hashes=()).train_options
    except Hw2Error:
        return {}
    text = recorded.get("txt_file")
    inputs = {"recorded --txt-file": Path(text) if text else grimm_path()}
    if recorded.get("init_from") and recorded["init_from"] not in HUB_MODELS:
        inputs["recorded --init-from"] = Path(recorded["init_from"])
    if recorded.get("tokenizer") not in (None, "char", "gpt2"):
        inputs["recorded --tokenizer"] = Path(recorded["tokenizer"])
    return inputs


def _check_tensorboard(folder: str | None, out: str | None, inputs: dict[str, Path | None]) -> None:
    """Refuse a ``tensorboard`` folder that is a file, lies in the run directory, or is or lies
    in something the run reads (before any work)."""
    from hw2cli.common.io import resolve_path
    from hw2cli.common.options import OptionError

    if folder is None:
        return
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise OptionError(f"{{tensorboard}} {folder} is a file, not a folder; give a folder for the events")
    places = {"the run directory": None if out is None else Path(out), **inputs}
    for label, place in places.items():
        if place is not None:
            resolved, base = resolve_path(path), resolve_path(Path(place))
            if resolved == base or base in resolved.parents:
                raise OptionError(
                    f"{{tensorboard}} {folder} lies in {label} {place}; give a folder outside it"
                )


def _exit_3_if_diverged(result) -> None:
    from hw2cli.gpt import render

    if result.diverged_at is not None:  # exit 3, documented in docs/gpt.md
        typer.echo(f"error: {render.diverged_message(result)}", err=True)
        raise typer.Exit(NONFINITE_EXIT)


@app.command("train")
@user_errors
@takes(TrainOptions)
def gpt_train(
    ctx: typer.Context,
    opts: TrainOptions,
    abs_emb: AbsEmb = False,
    threads: Threads = 0,
    json_path: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Train a character-level GPT on a book (Q2.2-Q2.8): writes a run directory with Figure 3.

    Without size options it picks a configuration that fits the device (the course's on a GPU,
    a run of minutes on a CPU), says what it chose, and estimates the wall time after a few steps."""
    from hw2cli.gpt import render
    from hw2cli.gpt.data import check_text_file
    from hw2cli.gpt.session import Dist
    from hw2cli.gpt.train import train

    given = _given(ctx)
    if abs_emb:
        opts = dataclasses.replace(opts, pos_emb="learned")
        given.add("pos_emb")
    if Dist.from_env().rank != 0:  # torchrun's other processes train; rank 0 reports and writes
        catch_interrupts()  # Ctrl-C and SIGTERM stop every process at the same step
        use_threads(threads)
        train(opts, given=given)
        return
    check_text_file(opts.txt_file)  # the inputs first, then the outputs
    out, inputs = opts.resume or opts.out, _inputs(opts)
    _check_tensorboard(opts.tensorboard, out, inputs)
    run_command(
        lambda reporter: train(opts, reporter, given=given),
        render,
        json_path=json_path,
        inputs=inputs,
        writes={"--resume" if opts.resume else "--out": Path(out)},
        quiet=quiet,
        threads=threads,
        progress=render.train_reporter,
        then=_exit_3_if_diverged,
    )


@app.command("generate")
@user_errors
@takes(GenerateOptions)
def gpt_generate(
    ctx: typer.Context, opts: GenerateOptions, threads: Threads = 0, json_path: JsonOut = None
) -> None:
    """Continue a prompt with a trained model (Q2.9): greedy, temperature, top-k or top-p.

    Without a run directory it reads runs/gpt, where `gpt train` writes by default, when that
    holds a finished run."""
    from hw2cli.gpt import render
    from hw2cli.gpt.sample import generate_samples

    if "run_dir" not in _given(ctx) and opts.run_dir is not None:
        typer.echo(f"note: no run directory given; using {opts.run_dir}, the finished run there", err=True)

    inputs = {"RUN_DIR": opts.run_dir, "--init-from": opts.init_from}
    run_command(
        lambda reporter: generate_samples(opts),
        render,
        json_path=json_path,
        inputs={label: None if p is None else Path(p) for label, p in inputs.items()},
        quiet=True,
        threads=threads,
    )
