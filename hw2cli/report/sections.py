"""One function per part of the report: a part's folder in, Markdown lines out. Each reads the
part's ``--json`` outputs through the family's own ``from_json`` (:func:`read`): a damaged or
hand-edited file is one line naming the file and the field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from hw2cli.common import schema
from hw2cli.common.errors import Hw2Error
from hw2cli.probe.common import INCONCLUSIVE
from hw2cli.probe.registry import PROBES
from hw2cli.report.published import CONV_ORDER, PUBLISHED_EPOCHS, PUBLISHED_ROUNDS, TABLES

_ESCAPES = {"<": "&lt;", **{c: "\\" + c for c in "\\`[]|"}}


def md(value: Any) -> str:
    """Text from a result file as inert inline Markdown: one line, the characters that open HTML,
    links, code or table cells escaped (emphasis cannot reach outside the value's line)."""
    return "".join(_ESCAPES.get(c, c) for c in " ".join(str(value).split()))


def rerun(part_dir: Path) -> str:
    """How to write the part folder ``part_dir`` again."""
    from hw2cli.reproduce.options import flags

    return f"rerun that part with hw2 reproduce {flags(out=part_dir.parent, parts=part_dir.name, force=True)}"


def read(path: Path, view: ModuleType, expected: type | tuple[type, ...] | None = None) -> Any:
    """The result in ``--json`` file ``path`` of a part folder, read back with the family's render
    module ``view``; ``expected``: the result type(s) it must be."""
    from hw2cli.common.schema import load

    fix = rerun(path.parent)
    result = load(path, view.from_json, view.to_json, fix, getattr(view, "upgrade_json", None))
    if expected is not None and not isinstance(result, expected):
        raise Hw2Error(f"{path} holds a {type(result).__name__}, not the file this part writes; {fix}")
    return result


def figure(part_dir: Path, name: str, caption: str, links: Path) -> list[str]:
    """An embedded image, linked relative to ``links`` (the report's folder), if it exists."""
    path = part_dir / name
    if not path.is_file():
        return []
    target = quote(Path(os.path.relpath(path.resolve(), links.resolve())).as_posix())
    return [f"![{caption}]({target})", ""]


def rotation(part_dir: Path, links: Path) -> list[str]:
    """Figures 1 and 2: accuracy (%) per test angle for each model (mode) that was run."""
    from hw2cli.rotation import render

    r = read(part_dir / "result.json", render)
    lines = [
        f"Data set {md(r.dataset)} ({r.n_train} training, {r.n_test} test images), "
        f"{r.epochs} epochs, batch {r.batch_size}, lr {r.lr}, seed {r.seed}, "
        f"device {md(r.device)}, precision {md(r.precision)}.",
        "",
        "| angle (°) | " + " | ".join(f"{md(m.name)} (%)" for m in r.models) + " |",
        "|---:|" + "---:|" * len(r.models),
    ]
    for i, angle in enumerate(r.angles):
        lines.append(f"| {angle:g} | " + " | ".join(f"{100 * m.accuracy[i]:.2f}" for m in r.models) + " |")
    lines.append("| mean | " + " | ".join(f"{100 * m.mean_accuracy:.2f}" for m in r.models) + " |")
    worst = [m.worst(r.angles) for m in r.models]
    lines.append("| worst | " + " | ".join(f"{100 * acc:.2f} at {angle:g}°" for angle, acc in worst) + " |")
    if r.parameters:  # recorded since the p4 and TTA modes
        lines += [
            "",
            f"Parameters: CNN {r.parameters['cnn']:,}, p4 CNN {r.parameters['p4']:,}. "
            "Training (s) and evaluation per image and angle (ms): "
            + ", ".join(
                f"{md(m.name)} {m.train_seconds:.1f} / {m.ms_per_image(r.n_test):.3f}" for m in r.models
            )
            + ".",
        ]
    lines.append("")
    lines += figure(part_dir, "rotation.png", "Test accuracy against rotation angle", links)
    lines += figure(part_dir, "preview.png", "Rotated test images", links)
    return lines


def _protocol(rounds: int, epochs: int) -> str:
    return f"{rounds} round(s) of at most {epochs} epochs"


def _num(value: float | None, spec: str) -> str:
    """A number, or a dash where none was measured (an interrupted run)."""
    return "—" if value is None or value != value else format(value, spec)


def padding_table(part_dir: Path, links: Path) -> list[str]:
    """Tables 1 and 2: per-round accuracy (%), mean and population std beside the published mean ±
    std; the difference only when this run followed the published protocol (rounds, epochs)."""
    from hw2cli.padding import render
    from hw2cli.padding.render import SETS

    r = read(part_dir / "result.json", render)
    settings = r.settings
    net = settings["net"]
    n_rounds = max((len(o) for o in r.outcomes.values()), default=0)
    published = TABLES[net]
    same = settings["rounds"] == n_rounds == PUBLISHED_ROUNDS and settings["epochs"] == PUBLISHED_EPOCHS
    this = _protocol(n_rounds, settings["epochs"])
    sizes = settings.get("data_sizes") or {}
    lines = [
        f"Data: the red/green box images drawn with seed {settings['seed']} ({sizes.get('train', '?')} "
        f"training, {sizes.get('val', '?')} validation, {sizes.get('test', '?')} test images; the test "
        "boxes moved 16 pixels). "
        f"Protocol of this run: {md(net)}, {this}, device {md(r.device)}, {r.seconds:.0f} s"
        + (" — **interrupted**" if r.interrupted else "")
        + ".",
        "",
    ]
    if same:
        lines += [f"Same protocol as the published table ({this}): Δ mean = this run − published.", ""]
    else:
        lines += [
            f"The published numbers come from {_protocol(PUBLISHED_ROUNDS, PUBLISHED_EPOCHS)}, "
            f"this run from {this}: they are shown for reference, not compared.",
            "",
        ]
    header = [
        "conv type",
        "set",
        *(f"round {i + 1}" for i in range(n_rounds)),
        "this run: mean",
        "this run: std",
        "published: mean ± std",
    ] + (["Δ mean"] if same else [])
    lines += ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for conv_type in (c for c in CONV_ORDER if c in r.outcomes):
        outcomes = r.outcomes[conv_type]
        pub = published.get(conv_type, (float("nan"),) * 4)  # the homework published its six modes only
        for (label, metric), (pub_mean, pub_std) in zip(SETS, (pub[:2], pub[2:]), strict=True):
            values = [f"{getattr(o, metric):.2f}" for o in outcomes] + [""] * (n_rounds - len(outcomes))
            mean, std = r.summary(conv_type, metric)
            lines.append(
                f"| {md(conv_type)} | {label} | "
                + " | ".join(values)
                + f" | {_num(mean, '.4f')} | {_num(std, '.4f')} | {_num(pub_mean, '.2f')} ± {_num(pub_std, '.2f')} |"
                + (f" {_num(mean - pub_mean, '+.2f')} |" if same else "")
            )
    lines.append("")
    caption = "Validation and test accuracy per conv type, mean ± std over the rounds"
    lines += figure(part_dir, "table.png", caption, links)
    return lines


table1 = table2 = padding_table  # the sections are named after their parts (report.build.PARTS)


def gpt(part_dir: Path, links: Path) -> list[str]:
    """Figure 3 and samples: the training summary, the loss curve and the decoded samples."""
    from hw2cli.gpt import render
    from hw2cli.gpt.sample import GenerateResult
    from hw2cli.gpt.train import TrainResult

    train = read(part_dir / "train.json", render, TrainResult)
    opts = train.options
    source = part_dir / "corpus_source.txt"  # written by the quick profile, which makes the corpus
    if source.is_file():
        corpus = md(schema.read_text(source, fix=f"rerun the gpt part of {part_dir.parent}"))
    elif opts.get("txt_file") is None:
        corpus = "Grimm's Fairy Tales (Project Gutenberg eBook 2591)"
    else:
        corpus = md(Path(opts["txt_file"]).name)
    lines = [
        f"Data: {corpus}; the last {opts.get('val_fraction', 0.1):.0%} is the validation split. "
        f"Protocol: {train.steps} steps.",
        "",
        f"Preset {md(train.model_type)} ({train.num_params:,} parameters, vocabulary {train.vocab_size}), "
        f"block {md(opts['block_size'])}, batch {md(opts['batch_size'])}, lr {md(opts['lr'])}, "
        f"device {md(train.device)}, precision {md(train.precision)}.",
        "",
        "| steps | final train loss | final val loss | best val loss | tokens/s | time (s) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {train.steps} | {_num(train.train_loss, '.4f')} | {_num(train.val_loss, '.4f')} | "
        f"{_num(train.best_val_loss, '.4f')} | {train.tokens_per_s or 0:,.0f} | {train.elapsed_s:.1f} |",
        "",
    ]
    lines += figure(part_dir, "run/loss.png", "Training and validation loss against step", links)
    for sample_file in sorted(part_dir.glob("samples_*.json")):
        samples = read(sample_file, render, GenerateResult)
        st = samples.settings
        knobs = [md(st["mode"])] + [
            f"{k.replace('_', '-')} {md(st[k])}"
            for k in ("temperature", "top_k", "top_p")
            if st.get(k) is not None
        ]
        lines += [f"**Prompt “{md(samples.prompt)}”, {', '.join(knobs)}, seed {md(st['seed'])}**", ""]
        for completion in samples.completions:
            text = samples.prompt + completion
            # A fence longer than any run of backticks in the sample, so no text can close it.
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
            lines += [f"{fence}text", text, fence, ""]
    return lines


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _matrix(nodes: list, matrix: Any, title: str) -> list[str]:
    """A small labelled matrix as a Markdown table, its numbers as in the --json file."""
    from hw2cli.graph.io import matrix_to_json

    rows = matrix_to_json(matrix)
    lines = [f"**{title}**", "", "| | " + " | ".join(map(md, nodes)) + " |", "|---|" + "---:|" * len(nodes)]
    lines += [
        f"| **{md(node)}** | " + " | ".join(_fmt(v) for v in row) + " |"
        for node, row in zip(nodes, rows, strict=False)
    ]
    return lines + [""]


def graph(part_dir: Path, links: Path) -> list[str]:
    """Q3.1: A and its powers, D, L and its spectrum for each example graph, and the check."""
    from hw2cli.graph import render
    from hw2cli.graph.check import CheckResult
    from hw2cli.graph.io import json_number
    from hw2cli.graph.laplacian import LaplacianResult
    from hw2cli.graph.walks import PowersResult

    lines: list[str] = []
    for powers_file in sorted(part_dir.glob("*_powers.json")):
        name = powers_file.name.removesuffix("_powers.json")
        powers = read(powers_file, render, PowersResult)
        lap = read(part_dir / f"{name}_laplacian.json", render, LaplacianResult)
        g = powers.graph
        lines += [
            f"### {md(name)} ({md(Path(g.source).name)})",
            "",
            f"{g.n} nodes, {g.n_edges} edges, {powers.components.count} connected component(s); "
            f"degrees {[json_number(d) for d in powers.degrees]}.",
            "",
        ]
        lines += _matrix(g.nodes, powers.powers[0], "A (adjacency)")
        for k, matrix in enumerate(powers.powers[1:], start=2):
            lines += _matrix(g.nodes, matrix, f"A^{k}: walks of length {k}")
        lines += _matrix(g.nodes, lap.degree_matrix, "D (degree)")
        lines += _matrix(g.nodes, lap.laplacian, "L = D − A")
        if lap.spectrum is not None:
            lines += [
                "Eigenvalues of L: "
                + ", ".join(f"{v.real:.4f}" for v in lap.spectrum.values)
                + f"; eigenvalue 0 has multiplicity {lap.spectrum.zero_count} = {lap.components.count} "
                "connected component(s).",
                "",
            ]
    check_file = part_dir / "check.json"
    if check_file.is_file():
        check = read(check_file, render, CheckResult)
        nodes = check.graph.nodes
        lines += [
            f"### Checking a hand-written {md(check.kind)} matrix of {md(Path(check.graph.source).name)}",
            "",
            "All cells right." if check.ok else f"{len(check.wrong)} wrong cell(s):",
            "",
        ]
        lines += [
            f"- [{md(nodes[c.row])}, {md(nodes[c.col])}] is {_fmt(json_number(c.given))}, "
            f"should be {_fmt(json_number(c.expected))}"
            for c in check.wrong
        ]
        lines += [f"- problem: {md(p)}" for p in check.problems]
        lines.append("")
    return lines


def probes(part_dir: Path, links: Path) -> list[str]:
    """The report's answers, measured: claim, measurement and verdict of each probe's
    ``NAME.json``, then the probes' figures."""
    from hw2cli.probe import render

    found = {p.name: part_dir / f"{p.name}.json" for p in PROBES if (part_dir / f"{p.name}.json").is_file()}
    if not found:
        return ["_No probe results in this folder._", ""]
    lines = [
        "Each row is one answer of the written report (Q2.1, Q2.4) turned into a measurement by "
        "`hw2 probe NAME`; the numbers are this run's.",
        "",
        "| question | probe | claim | measurement | verdict |",
        "|---|---|---|---|---|",
    ]
    figures = []
    for probe in PROBES:
        name = probe.name
        if name not in found:
            continue
        result = read(found[name], render)
        holds = render.PROBE_OF[type(result)].name
        if holds != name:
            raise Hw2Error(
                f"{found[name]} holds the result of `hw2 probe {holds}`, not of {name}; {rerun(part_dir)}"
            )
        note = " (interrupted)" if result.interrupted else ""
        for v in result.verdicts:
            why = f" ({md(v.reason)})" if v.reason and v.verdict == INCONCLUSIVE else ""
            lines.append(
                f"| {probe.question} | `{name}`{note} | {md(v.claim)} | {md(v.measurement)} | **{v.verdict}**{why} |"
            )
        figures += figure(part_dir, f"{name}.png", f"hw2 probe {name}", links)
    missing = [p.name for p in PROBES if p.name not in found]
    lines.append("")
    if missing:
        lines += [f"Not run: {', '.join(f'`{m}`' for m in missing)}.", ""]
    return lines + figures
