"""One function per part of the report, named after it: a part's folder in, Markdown lines out.
Both they and the conclusions read a part through :func:`load_part`, each file through its
family's ``from_json``: a damaged or hand-edited file is one line naming the file and the field."""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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


def read(path: Path, family: str, expected: str | None = None) -> Any:
    """The result in ``--json`` file ``path`` of a part folder, read back with ``family``'s render
    module; ``expected``: the name of the result type it must be."""
    view = importlib.import_module(f"hw2cli.{family}.render")
    fix = rerun(path.parent)
    result = schema.load(path, view.from_json, view.to_json, fix, getattr(view, "upgrade_json", None))
    if expected is not None and type(result).__name__ != expected:
        raise Hw2Error(f"{path} holds a {type(result).__name__}, not the file this part writes; {fix}")
    return result


def word_list(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@dataclass
class GptPart:
    """The training, the samples and where the training text is (it may not be there)."""

    train: Any
    samples: list[Any]
    text: Path

    @functools.cached_property
    def words(self) -> set[str] | None:
        """The training text's words (None: the text is not here)."""
        if not self.text.is_file():
            return None
        return set(word_list(self.text.read_text(encoding="utf-8", errors="replace")))


@dataclass
class GraphPart:
    """Powers and Laplacian per graph, and the check."""

    powers: dict[str, Any]
    laplacians: dict[str, Any]
    check: Any | None


def load_part(name: str, part_dir: Path) -> Any:
    """The results of part ``name`` in ``part_dir``, as its section and its conclusions read them."""
    if name in ("table1", "table2", "rotation"):
        return read(part_dir / "result.json", "rotation" if name == "rotation" else "padding")
    if name == "gpt":
        from hw2cli.gpt.corpus import grimm_path
        from hw2cli.reproduce.parts import CORPUS

        train = read(part_dir / "train.json", "gpt", "TrainResult")
        samples = [read(p, "gpt", "GenerateResult") for p in sorted(part_dir.glob("samples_*.json"))]
        txt = train.options.get("txt_file")  # the training text: the quick corpus, the run's, or Grimm's
        text = part_dir / CORPUS if (part_dir / CORPUS).is_file() else part_dir / txt if txt else grimm_path()
        return GptPart(train, samples, text)
    if name == "graph":
        powers = {
            p.name.removesuffix("_powers.json"): read(p, "graph", "PowersResult")
            for p in sorted(part_dir.glob("*_powers.json"))
        }
        laplacians = {n: read(part_dir / f"{n}_laplacian.json", "graph", "LaplacianResult") for n in powers}
        check = part_dir / "check.json"
        return GraphPart(powers, laplacians, read(check, "graph", "CheckResult") if check.is_file() else None)
    if name == "probes":
        from hw2cli.probe.render import PROBE_OF

        results = {}
        for p in PROBES:
            if (path := part_dir / f"{p.name}.json").is_file():
                results[p.name] = read(path, "probe")
                if (holds := PROBE_OF[type(results[p.name])].name) != p.name:
                    raise Hw2Error(
                        f"{path} holds the result of `hw2 probe {holds}`, not of {p.name}; {rerun(part_dir)}"
                    )
        return results
    raise ValueError(f"no part {name!r}")


def figure(part_dir: Path, name: str, caption: str, links: Path) -> list[str]:
    """An embedded image, linked relative to ``links`` (the report's folder), if it exists."""
    path = part_dir / name
    if not path.is_file():
        return []
    target = quote(Path(os.path.relpath(path.resolve(), links.resolve())).as_posix())
    return [f"![{caption}]({target})", ""]


def _row(first: str, cells: Iterable[str]) -> str:
    return f"| {first} | {' | '.join(cells)} |"


def _num(value: float | None, spec: str) -> str:
    """A number, or a dash where none was measured (an interrupted run)."""
    return "—" if value is None or value != value else format(value, spec)


def rotation(part_dir: Path, links: Path) -> list[str]:
    """Figures 1 and 2: accuracy (%) per test angle for each model (mode) that was run."""
    r = load_part("rotation", part_dir)
    lines = [
        f"Data set {md(r.dataset)} ({r.n_train} training, {r.n_test} test images), "
        f"{r.epochs} epochs, batch {r.batch_size}, lr {r.lr}, seed {r.seed}, "
        f"device {md(r.device)}, precision {md(r.precision)}.",
        "",
        _row("angle (°)", (f"{md(m.name)} (%)" for m in r.models)),
        "|---:|" + "---:|" * len(r.models),
        *(_row(f"{a:g}", (f"{100 * m.accuracy[i]:.2f}" for m in r.models)) for i, a in enumerate(r.angles)),
        _row("mean", (f"{100 * m.mean_accuracy:.2f}" for m in r.models)),
        _row("worst", (f"{100 * acc:.2f} at {a:g}°" for a, acc in (m.worst(r.angles) for m in r.models))),
    ]
    if r.parameters:  # recorded since the p4 and TTA modes
        timings = (f"{md(m.name)} {m.train_seconds:.1f} / {m.ms_per_image(r.n_test):.3f}" for m in r.models)
        lines += [
            "",
            f"Parameters: CNN {r.parameters['cnn']:,}, p4 CNN {r.parameters['p4']:,}. "
            f"Training (s) and evaluation per image and angle (ms): {', '.join(timings)}.",
        ]
    return [
        *lines,
        "",
        *figure(part_dir, "rotation.png", "Test accuracy against rotation angle", links),
        *figure(part_dir, "preview.png", "Rotated test images", links),
    ]


def _protocol(rounds: int, epochs: int) -> str:
    return f"{rounds} round(s) of at most {epochs} epochs"


def padding_table(part_dir: Path, links: Path) -> list[str]:
    """Tables 1 and 2: per-round accuracy (%), mean and population std beside the published mean ±
    std; the difference only when this run followed the published protocol (rounds, epochs)."""
    from hw2cli.padding.render import SETS

    r = load_part("table1", part_dir)
    settings = r.settings
    n_rounds = max((len(o) for o in r.outcomes.values()), default=0)
    same = settings["rounds"] == n_rounds == PUBLISHED_ROUNDS and settings["epochs"] == PUBLISHED_EPOCHS
    this, sizes = _protocol(n_rounds, settings["epochs"]), settings.get("data_sizes") or {}
    lines = [
        f"Data: the red/green box images drawn with seed {settings['seed']} ({sizes.get('train', '?')} "
        f"training, {sizes.get('val', '?')} validation, {sizes.get('test', '?')} test images; the test "
        f"boxes moved 16 pixels). Protocol of this run: {md(settings['net'])}, {this}, device "
        f"{md(r.device)}, {r.seconds:.0f} s{' — **interrupted**' if r.interrupted else ''}.",
        "",
        f"Same protocol as the published table ({this}): Δ mean = this run − published."
        if same
        else f"The published numbers come from {_protocol(PUBLISHED_ROUNDS, PUBLISHED_EPOCHS)}, "
        f"this run from {this}: they are shown for reference, not compared.",
        "",
    ]
    header = ["conv type", "set", *(f"round {i + 1}" for i in range(n_rounds))]
    header += ["this run: mean", "this run: std", "published: mean ± std", *(["Δ mean"] if same else [])]
    lines += [_row(header[0], header[1:]), "|---|---|" + "---:|" * (len(header) - 2)]
    for conv_type in (c for c in CONV_ORDER if c in r.outcomes):
        outcomes = r.outcomes[conv_type]
        pub = TABLES[settings["net"]].get(conv_type, (float("nan"),) * 4)  # the homework's six modes only
        for (label, metric), (pub_mean, pub_std) in zip(SETS, (pub[:2], pub[2:]), strict=True):
            values = [f"{getattr(o, metric):.2f}" for o in outcomes] + [""] * (n_rounds - len(outcomes))
            mean, std = r.summary(conv_type, metric)
            published = f"{_num(pub_mean, '.2f')} ± {_num(pub_std, '.2f')}"
            delta = [_num(mean - pub_mean, "+.2f")] if same else []
            cells = [label, *values, _num(mean, ".4f"), _num(std, ".4f"), published, *delta]
            lines.append(_row(md(conv_type), cells))
    caption = "Validation and test accuracy per conv type, mean ± std over the rounds"
    return [*lines, "", *figure(part_dir, "table.png", caption, links)]


table1 = table2 = padding_table  # the sections are named after their parts (report.build)


def gpt(part_dir: Path, links: Path) -> list[str]:
    """Figure 3 and samples: the training summary, the loss curve and the decoded samples."""
    p = load_part("gpt", part_dir)
    train, opts = p.train, p.train.options
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
        *figure(part_dir, "run/loss.png", "Training and validation loss against step", links),
    ]
    for samples in p.samples:
        st = samples.settings
        knobs = [md(st["mode"])]
        knobs += [
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

    rows = zip(nodes, matrix_to_json(matrix), strict=False)
    return [
        f"**{title}**",
        "",
        "| | " + " | ".join(map(md, nodes)) + " |",
        "|---|" + "---:|" * len(nodes),
        *(_row(f"**{md(node)}**", map(_fmt, row)) for node, row in rows),
        "",
    ]


def graph(part_dir: Path, links: Path) -> list[str]:
    """Q3.1: A and its powers, D, L and its spectrum for each example graph, and the check."""
    from hw2cli.graph.io import json_number

    g, lines = load_part("graph", part_dir), []
    for name, powers in g.powers.items():
        lap, nodes = g.laplacians[name], powers.graph.nodes
        lines += [
            f"### {md(name)} ({md(Path(powers.graph.source).name)})",
            "",
            f"{powers.graph.n} nodes, {powers.graph.n_edges} edges, {powers.components.count} connected "
            f"component(s); degrees {[json_number(d) for d in powers.degrees]}.",
            "",
            *_matrix(nodes, powers.powers[0], "A (adjacency)"),
        ]
        for k, matrix in enumerate(powers.powers[1:], start=2):
            lines += _matrix(nodes, matrix, f"A^{k}: walks of length {k}")
        lines += _matrix(nodes, lap.degree_matrix, "D (degree)") + _matrix(nodes, lap.laplacian, "L = D − A")
        if lap.spectrum is not None:
            lines += [
                f"Eigenvalues of L: {', '.join(f'{v.real:.4f}' for v in lap.spectrum.values)}; eigenvalue 0 "
                f"has multiplicity {lap.spectrum.zero_count} = {lap.components.count} connected component(s).",
                "",
            ]
    if (check := g.check) is not None:
        nodes = check.graph.nodes
        lines += [
            f"### Checking a hand-written {md(check.kind)} matrix of {md(Path(check.graph.source).name)}",
            "",
            "All cells right." if check.ok else f"{len(check.wrong)} wrong cell(s):",
            "",
            *(
                f"- [{md(nodes[c.row])}, {md(nodes[c.col])}] is {_fmt(json_number(c.given))}, "
                f"should be {_fmt(json_number(c.expected))}"
                for c in check.wrong
            ),
            *(f"- problem: {md(p)}" for p in check.problems),
            "",
        ]
    return lines


def probes(part_dir: Path, links: Path) -> list[str]:
    """The report's answers, measured: claim, measurement and verdict of each probe's
    ``NAME.json``, then the probes' figures."""
    found = load_part("probes", part_dir)
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
    for probe in (p for p in PROBES if p.name in found):
        result, note = found[probe.name], " (interrupted)" if found[probe.name].interrupted else ""
        for v in result.verdicts:
            why = f" ({md(v.reason)})" if v.reason and v.verdict == INCONCLUSIVE else ""
            lines.append(
                _row(
                    probe.question,
                    (f"`{probe.name}`{note}", md(v.claim), md(v.measurement), f"**{v.verdict}**{why}"),
                )
            )
        figures += figure(part_dir, f"{probe.name}.png", f"hw2 probe {probe.name}", links)
    missing = [f"`{p.name}`" for p in PROBES if p.name not in found]
    return [*lines, "", *([f"Not run: {', '.join(missing)}.", ""] if missing else []), *figures]
