"""One function per part of the report: a part's folder in, Markdown lines out."""

from __future__ import annotations

import re
from pathlib import Path

from hw2cli.report import inputs
from hw2cli.report.published import CONV_ORDER, PUBLISHED_EPOCHS, PUBLISHED_ROUNDS, TABLES


def _figure(part_dir: Path, name: str, caption: str) -> list[str]:
    """An embedded image, linked relative to the report (which sits beside the part folders)."""
    if not (part_dir / name).is_file():
        return []
    return [f"![{caption}]({part_dir.name}/{name})", ""]


def rotation(part_dir: Path) -> list[str]:
    """Figures 1 and 2: accuracy (%) per test angle for each model (mode) that was run."""
    data = inputs.read(part_dir / "result.json", inputs.RotationResult)
    models = list(data["models"])
    lines = [
        f"Data set `{data['dataset']}` ({data['n_train']} training, {data['n_test']} test images), "
        f"{data['epochs']} epochs, batch {data['batch_size']}, lr {data['lr']}, seed {data['seed']}, "
        f"device `{data['device']}`, precision {data['precision']}.",
        "",
        "| angle (°) | " + " | ".join(f"{m} (%)" for m in models) + " |",
        "|---:|" + "---:|" * len(models),
    ]
    for i, angle in enumerate(data["angles"]):
        cells = " | ".join(f"{100 * data['models'][m]['accuracy'][i]:.2f}" for m in models)
        lines.append(f"| {angle:g} | {cells} |")
    lines.append(
        "| mean | " + " | ".join(f"{100 * data['models'][m]['mean_accuracy']:.2f}" for m in models) + " |"
    )
    lines.append(
        "| worst | "
        + " | ".join(
            f"{100 * data['models'][m]['worst_accuracy']:.2f} at {data['models'][m]['worst_angle']:g}°"
            for m in models
        )
        + " |"
    )
    lines.append("")
    if "parameters" in data:  # written since the p4 and tta modes
        lines += [
            f"Parameters: CNN {data['parameters']['cnn']:,}, p4 CNN {data['parameters']['p4']:,}. "
            "Training (s) and evaluation per image and angle (ms): "
            + ", ".join(
                f"{m} {info['train_seconds']:.1f} / {info['ms_per_image']:.3f}"
                for m, info in data["models"].items()
            )
            + ".",
            "",
        ]
    lines += _figure(part_dir, "rotation.png", "Test accuracy against rotation angle")
    lines += _figure(part_dir, "preview.png", "Rotated test images")
    return lines


def _protocol(rounds: int, epochs: int) -> str:
    return f"{rounds} round(s) of at most {epochs} epochs"


def padding_table(part_dir: Path) -> list[str]:
    """Tables 1 and 2: per-round validation and test accuracy (%), mean and population std,
    in the report's layout, beside the report's published mean ± std. The difference is shown
    only when this run followed the published protocol (same rounds and epochs); otherwise the
    published numbers are a reference, with a caveat naming both protocols."""
    data = inputs.read(part_dir / "result.json", inputs.PaddingResult)
    settings = data["settings"]
    net = settings["net"]
    conv = data["conv_types"]
    n_rounds = max((len(c["rounds"]) for c in conv.values()), default=0)
    published = TABLES[net]
    same = settings["rounds"] == n_rounds == PUBLISHED_ROUNDS and settings["epochs"] == PUBLISHED_EPOCHS
    this = _protocol(n_rounds, settings["epochs"])
    sizes = settings.get("data_sizes", {})
    lines = [
        f"Data: the red/green box images drawn with seed {settings['seed']} ({sizes.get('train', '?')} "
        f"training, {sizes.get('val', '?')} validation, {sizes.get('test', '?')} test images; the test "
        "boxes moved 16 pixels). "
        f"Protocol of this run: `{net}`, {this}, device `{data['device']}`, {data['seconds']:.0f} s"
        + (" — **interrupted**" if data["interrupted"] else "")
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
    for conv_type in (c for c in CONV_ORDER if c in conv):
        entry = conv[conv_type]
        pub = published[conv_type]
        for label, key, metric, (pub_mean, pub_std) in (
            ("Validation", "val", "val_acc", pub[:2]),
            ("Test", "test", "test_acc", pub[2:]),
        ):
            values = [f"{r[metric]:.2f}" for r in entry["rounds"]] + [""] * (n_rounds - len(entry["rounds"]))
            mean, std = entry["summary"][key]["mean"], entry["summary"][key]["std"]
            lines.append(
                f"| {conv_type} | {label} | "
                + " | ".join(values)
                + f" | {_num(mean, '.4f')} | {_num(std, '.4f')} | {pub_mean:.2f} ± {pub_std:.2f} |"
                + (f" {_num(None if mean is None else mean - pub_mean, '+.2f')} |" if same else "")
            )
    lines.append("")
    lines += _figure(part_dir, "table.png", "Test accuracy per conv type, mean ± std over the rounds")
    return lines


def _num(value, spec: str) -> str:
    """A number, or a dash where none was measured (an interrupted run)."""
    return "—" if value is None else format(value, spec)


def _loss(value) -> str:
    return _num(value, ".4f")


def gpt(part_dir: Path) -> list[str]:
    """Figure 3 and samples: the training summary, the loss curve and the decoded samples."""
    train = inputs.read(part_dir / "train.json", inputs.GptTrain)
    opts = train["options"]
    source = part_dir / "corpus_source.txt"  # written by scripts/reproduce.sh when it makes the corpus
    if source.is_file():
        corpus = source.read_text(encoding="utf-8").strip()
    elif opts.get("txt_file") is None:
        corpus = "Grimm's Fairy Tales (Project Gutenberg eBook 2591)"
    else:
        corpus = f"`{Path(opts['txt_file']).name}`"
    lines = [
        f"Data: {corpus}; the last {opts.get('val_fraction', 0.1):.0%} is the validation split. "
        f"Protocol: {train['steps']} steps.",
        "",
        f"Preset `{train['model_type']}` ({train['num_params']:,} parameters, vocabulary {train['vocab_size']}), "
        f"block {opts['block_size']}, batch {opts['batch_size']}, lr {opts['lr']:g}, device `{train['device']}`, "
        f"precision {train['precision']}.",
        "",
        "| steps | final train loss | final val loss | best val loss | tokens/s | time (s) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {train['steps']} | {_loss(train['train_loss'])} | {_loss(train['val_loss'])} | "
        f"{_loss(train['best_val_loss'])} | {train['tokens_per_s'] or 0:,.0f} | {train['elapsed_s']:.1f} |",
        "",
    ]
    lines += _figure(part_dir, "run/loss.png", "Training and validation loss against step")
    for sample_file in sorted(part_dir.glob("samples_*.json")):
        data = inputs.read(sample_file, inputs.GptSamples)
        st = data["settings"]
        knobs = [st["mode"]] + [
            f"{k.replace('_', '-')} {st[k]:g}"
            for k in ("temperature", "top_k", "top_p")
            if st.get(k) is not None
        ]
        lines += [f"**Prompt {data['prompt']!r}, {', '.join(knobs)}, seed {st['seed']}**", ""]
        for sample in data["samples"]:
            # A fence longer than any run of backticks in the sample, so no text can close it.
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", sample["text"])), default=0))
            lines += [f"{fence}text", sample["text"], fence, ""]
    return lines


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _matrix(nodes: list, matrix: list[list], title: str) -> list[str]:
    """A small labelled matrix as a Markdown table."""
    lines = [f"**{title}**", "", "| | " + " | ".join(map(str, nodes)) + " |", "|---|" + "---:|" * len(nodes)]
    lines += [
        f"| **{node}** | " + " | ".join(_fmt(v) for v in row) + " |"
        for node, row in zip(nodes, matrix, strict=False)
    ]
    return lines + [""]


def graph(part_dir: Path) -> list[str]:
    """Q3.1: A and its powers, D, L and its spectrum for each example graph, and the check."""
    lines: list[str] = []
    for powers_file in sorted(part_dir.glob("*_powers.json")):
        name = powers_file.name.removesuffix("_powers.json")
        powers = inputs.read(powers_file, inputs.GraphPowers)
        lap = inputs.read(part_dir / f"{name}_laplacian.json", inputs.GraphLaplacian)
        nodes = powers["nodes"]
        lines += [
            f"### {name} (`{Path(powers['source']).name}`)",
            "",
            f"{powers['n_nodes']} nodes, {powers['n_edges']} edges, {powers['components']} connected component(s); "
            f"degrees {powers['degrees']}.",
            "",
        ]
        lines += _matrix(nodes, powers["adjacency"], "A (adjacency)")
        for k, matrix in sorted(powers["powers"].items(), key=lambda kv: int(kv[0])):
            lines += _matrix(nodes, matrix, f"A^{k}: walks of length {k}")
        lines += _matrix(nodes, lap["degree_matrix"], "D (degree)")
        lines += _matrix(nodes, lap["laplacian"], "L = D − A")
        eig = lap["eigenvalues"]
        lines += [
            "Eigenvalues of L: "
            + ", ".join(f"{v:.4f}" for v in eig["values"])
            + f"; eigenvalue 0 has multiplicity {eig['zero_count']} = {lap['components']} connected component(s).",
            "",
        ]
    check_file = part_dir / "check.json"
    if check_file.is_file():
        check = inputs.read(check_file, inputs.GraphCheck)
        lines += [
            f"### Checking a hand-written {check['kind']} matrix of `{Path(check['source']).name}`",
            "",
            "All cells right." if check["ok"] else f"{len(check['wrong_cells'])} wrong cell(s):",
            "",
        ]
        lines += [
            f"- [{c['row']}, {c['col']}] is {_fmt(c['given'])}, should be {_fmt(c['expected'])}"
            for c in check["wrong_cells"]
        ]
        lines += [f"- problem: {p}" for p in check["problems"]]
        lines.append("")
    return lines
