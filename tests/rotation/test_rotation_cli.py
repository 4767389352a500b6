"""`hw2 rotate-eval` end to end on scikit-learn's digits, saving/reloading models, and every
bad-input case (one line on stderr, exit 2)."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.io import MARKER

runner = CliRunner()
ANGLES = "0:360:90"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """Two epochs of both models on digits, with every output requested."""
    out = tmp_path_factory.mktemp("rotate")
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--angles",
            ANGLES,
            "--device",
            "cpu",
            "--json",
            str(out / "r.json"),
            "--plot",
            str(out / "plot.png"),
            "--preview",
            str(out / "preview.png"),
            "--save-models",
            str(out / "models"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, result, json.loads((out / "r.json").read_text())


def test_plain_model_loses_accuracy_when_rotated(digits_run):
    _, _, report = digits_run
    assert report["angles"] == [0.0, 90.0, 180.0, 270.0, 360.0]
    plain = report["models"]["plain"]["accuracy"]
    assert plain[0] >= 0.6, plain
    assert plain[0] - plain[1] >= 0.3 and plain[0] - plain[2] >= 0.2, plain
    assert plain[4] == plain[0]  # a full turn is the identity


def test_augmented_model_is_flatter_across_angles(digits_run):
    _, _, report = digits_run
    plain, augmented = report["models"]["plain"]["accuracy"], report["models"]["augmented"]["accuracy"]
    assert max(augmented) - min(augmented) < max(plain) - min(plain)
    assert min(augmented) > 0.15  # above chance (10%) at every angle


def test_json_report_is_complete_and_consistent(digits_run):
    _, _, report = digits_run
    assert report["command"] == "rotate-eval" and report["dataset"] == "digits"
    assert (report["n_train"], report["n_test"], len(report["classes"])) == (1347, 450, 10)
    assert report["interrupted"] is False and report["epochs"] == 2 and report["device"] == "cpu"
    for m in report["models"].values():
        assert m["mean_accuracy"] == pytest.approx(sum(m["accuracy"]) / len(m["accuracy"]))
        assert m["worst_accuracy"] == min(m["accuracy"])
        assert m["accuracy"][report["angles"].index(m["worst_angle"])] == m["worst_accuracy"]
        assert len(m["train_loss"]) == 2 and m["train_loss"][1] < m["train_loss"][0]
        # accuracies are multiples of 1/450
        assert all(abs(a * 450 - round(a * 450)) < 1e-9 for a in m["accuracy"])


def test_table_shows_each_angle_mean_and_worst(digits_run):
    _, result, report = digits_run
    for angle in ("0°", "90°", "180°", "270°", "360°"):
        assert angle in result.stdout
    worst = report["models"]["plain"]
    assert f"{100 * worst['worst_accuracy']:.2f}% at {worst['worst_angle']:g}°" in result.stdout
    assert f"{100 * worst['mean_accuracy']:.2f}%" in result.stdout


def test_plot_and_preview_are_pngs(digits_run):
    out, _, _ = digits_run
    assert _png_size(out / "plot.png") == (640, 400)
    # 6 test images (rows) x 5 angles (columns), 0.9 inch per cell at 100 dpi, plus margins
    # (1.4 inch across: the row labels on the left)
    assert _png_size(out / "preview.png") == (590, 590)
    preview = Image.open(out / "preview.png").convert("L")
    assert preview.getextrema() == (0, 255)  # black corners and white strokes drawn


def test_preview_rows_are_the_first_test_images_labelled_with_their_classes(tmp_path):
    from hw2cli.rotation.data import load_digits
    from hw2cli.rotation.experiment import run_rotation_experiment
    from hw2cli.rotation.options import RotationOptions

    opts = RotationOptions(dataset="digits", mode="plain", epochs=1, angles="0,90", device="cpu")
    result = run_rotation_experiment(opts, preview_images=4)
    data = load_digits()
    assert result.preview_classes == [str(int(y)) for y in data.test_labels[:4]]
    assert result.preview.shape == (4, 2, 32, 32, 3)
    assert np.array_equal(
        result.preview[:, 0] * 255, data.test_images[:4].permute(0, 2, 3, 1).float().numpy()
    )

    from hw2cli.rotation import plot

    figures = []
    real = plot.new_figure
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(plot, "new_figure", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    try:
        plot.save_preview_grid(result, tmp_path / "p.png")
    finally:
        monkeypatch.undo()
    axes = figures[0].axes  # row by row
    assert [ax.get_ylabel() for ax in axes[::2]] == [f"class {c}" for c in result.preview_classes]
    assert [ax.get_title() for ax in axes[:2]] == ["0°", "90°"]


def test_saved_models_reload_without_training(digits_run):
    out, _, report = digits_run
    assert sorted(p.name for p in (out / "models").iterdir() if p.name != MARKER) == [
        "augmented.safetensors",
        "config.json",
        "plain.safetensors",
    ]
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--load-models",
            str(out / "models"),
            "--angles",
            "0,90,45",
            "--mode",
            "plain",
            "--json",
            str(out / "reload.json"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    again = json.loads((out / "reload.json").read_text())
    assert list(again["models"]) == ["plain"] and again["models"]["plain"]["loaded_from"].endswith(
        "plain.safetensors"
    )
    acc = dict(zip(again["angles"], again["models"]["plain"]["accuracy"], strict=True))
    first = dict(zip(report["angles"], report["models"]["plain"]["accuracy"], strict=True))
    assert acc[0.0] == first[0.0] and acc[90.0] == first[90.0]
    assert again["models"]["plain"]["train_loss"] == report["models"]["plain"]["train_loss"]


def test_imagefolder_run_with_two_classes(tmp_path):
    for split in ("train", "test"):
        for cls, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 20), color).save(tmp_path / split / cls / f"{i}.png")
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            f"imagefolder:{tmp_path}",
            "--epochs",
            "1",
            "--angles",
            "0",
            "--mode",
            "plain",
            "--json",
            str(tmp_path / "r.json"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["classes"] == ["blue", "red"] and report["model_config"]["n_classes"] == 2


def _fail(*args: str) -> str:
    result = runner.invoke(app, ["rotate-eval", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_unknown_dataset():
    assert "unknown --dataset 'mnist'; use cifar10, digits or imagefolder:PATH" in _fail("--dataset", "mnist")


def test_bad_angles_spec_names_the_form():
    line = _fail("--dataset", "digits", "--angles", "0-360")
    assert (
        "bad --angles '0-360'" in line and "START:STOP:STEP (e.g. 0:360:30" in line and "comma list" in line
    )


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_epochs_below_one(epochs):
    assert f"--epochs {epochs} is out of range; use 1 to 100,000" in _fail(
        "--dataset", "digits", "--epochs", epochs
    )


def test_unknown_mode():
    assert "unknown --mode 'rotated'" in _fail("--dataset", "digits", "--mode", "rotated")


def test_empty_image_folder(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    assert "Couldn't find any class folder" in _fail("--dataset", f"imagefolder:{tmp_path}")
    assert "does not exist" in _fail("--dataset", f"imagefolder:{tmp_path / 'missing'}")


def test_image_folder_without_test_split(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    assert "has no test/ sub-folder" in _fail("--dataset", f"imagefolder:{tmp_path}")


def test_malformed_image_file(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "a" / "ok.png")
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"this is not a png")
    line = _fail("--dataset", f"imagefolder:{tmp_path}")
    assert "cannot read image" in line and "broken.png" in line


def test_train_and_test_classes_differ(tmp_path):
    for split, cls in (("train", "a"), ("test", "b")):
        (tmp_path / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / cls / "x.png")
    assert "differ from test classes" in _fail("--dataset", f"imagefolder:{tmp_path}")


def test_unwritable_plot_path(tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert "cannot create folder" in _fail(
        "--dataset", "digits", "--plot", str(tmp_path / "a-file" / "plot.png")
    )
    assert "is a directory" in _fail("--dataset", "digits", "--plot", str(tmp_path))


def _models_folder(folder, saved_config, tensors) -> None:
    from safetensors.torch import save_file

    folder.mkdir()
    save_file(tensors, str(folder / "plain.safetensors"))
    meta = {
        "model": saved_config.to_dict(),
        "models": {"plain": {"file": "plain.safetensors", "epochs": 1, "train_loss": [1.0]}},
    }
    (folder / "config.json").write_text(json.dumps(meta))


def test_model_file_that_does_not_match_the_architecture(tmp_path):
    from hw2cli.rotation.model import RotationCNN, RotationCNNConfig

    other = RotationCNN(RotationCNNConfig(hidden=32)).state_dict()  # config.json says hidden=64
    _models_folder(tmp_path / "m", RotationCNNConfig(), {k: v.contiguous() for k, v in other.items()})
    line = _fail("--dataset", "digits", "--mode", "plain", "--load-models", str(tmp_path / "m"))
    assert "does not match the CNN" in line and "classifier.1.weight is [32, 1024], needs [64, 1024]" in line


def test_a_p4_model_for_another_image_size_is_refused_before_it_is_built(tmp_path):
    """A hand-edited p4 image_size (36 would pool unevenly) meets the check against the data set."""
    from safetensors.torch import save_file

    from hw2cli.rotation.model import P4CNNConfig, RotationCNNConfig

    folder = tmp_path / "m"
    _models_folder(folder, RotationCNNConfig(), {"x": torch.zeros(1)})
    save_file({"x": torch.zeros(1)}, str(folder / "p4.safetensors"))
    meta = json.loads((folder / "config.json").read_text())
    meta["p4_model"] = P4CNNConfig(image_size=36).to_dict()
    meta["models"]["p4"] = {"file": "p4.safetensors", "epochs": 1, "train_loss": [1.0]}
    (folder / "config.json").write_text(json.dumps(meta))
    assert _fail("--dataset", "digits", "--mode", "p4", "--load-models", str(folder)) == (
        f"error: --load-models {folder / 'config.json'}: models for 10 classes of 36px images, but this "
        "dataset has 10 classes of 32px; use the dataset they were trained on"
    )


def test_model_file_that_is_not_safetensors(tmp_path):
    from hw2cli.rotation.model import RotationCNNConfig

    _models_folder(tmp_path / "m", RotationCNNConfig(), {"x": torch.zeros(1)})
    (tmp_path / "m" / "plain.safetensors").write_bytes(b"\x80\x04pickle, not safetensors")
    assert "cannot read model file" in _fail(
        "--dataset", "digits", "--mode", "plain", "--load-models", str(tmp_path / "m")
    )


def test_load_models_folder_without_config_or_model(tmp_path):
    from hw2cli.rotation.model import RotationCNN, RotationCNNConfig

    assert "no config.json there" in _fail("--dataset", "digits", "--load-models", str(tmp_path))
    state = {k: v.contiguous() for k, v in RotationCNN(RotationCNNConfig()).state_dict().items()}
    _models_folder(tmp_path / "m", RotationCNNConfig(), state)
    assert "has no augmented model" in _fail("--dataset", "digits", "--load-models", str(tmp_path / "m"))


def test_ctrl_c_keeps_finished_models_writes_json_and_exits_130(tmp_path, monkeypatch):
    """Ctrl-C while the augmented model trains: the plain model's results are kept and written."""
    from hw2cli.rotation import experiment
    from hw2cli.rotation.model import RotationCNN

    def interrupt_augmented(data, config, *, augment, **kwargs):
        if augment:
            raise KeyboardInterrupt
        return RotationCNN(config).eval(), [2.3]  # an untrained model is enough here

    monkeypatch.setattr(experiment, "train_model", interrupt_augmented)
    monkeypatch.setattr(experiment, "estimate_seconds", lambda *args: 0.0)  # it trains a few steps too
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--angles",
            "0,180",
            "--json",
            str(tmp_path / "r.json"),
            "--plot",
            str(tmp_path / "p.png"),
            "--quiet",
        ],
    )
    assert result.exit_code == 130
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True and list(report["models"]) == ["plain"]
    assert len(report["models"]["plain"]["accuracy"]) == 2 and (tmp_path / "p.png").is_file()
    assert "interrupted" in result.stdout


def test_cpu_training_keeps_freed_memory(monkeypatch):
    """On the CPU rotate-eval tells malloc to keep freed memory (1.27x, bench_freed_memory.py)."""
    from hw2cli.rotation import experiment

    calls = []
    monkeypatch.setattr(experiment, "keep_freed_memory", lambda: calls.append(1) or True)
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--mode",
            "plain",
            "--angles",
            "0",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert calls == [1]


# ----------------------------------------------------------------------------- inputs protected


def _image_folder(root, classes=("blue", "red")):
    colors = {"blue": (0, 0, 255), "red": (255, 0, 0), "cat": (90, 90, 90), "dog": (200, 160, 0)}
    for split in ("train", "test"):
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 20), colors[cls]).save(root / split / cls / f"{i}.png")
    return root


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_outputs_in_an_image_folder_data_set_are_refused_before_any_work(tmp_path, monkeypatch):
    from hw2cli.rotation import experiment

    data = _image_folder(tmp_path / "data")
    before = _files(data)
    monkeypatch.setattr(experiment, "run_rotation_experiment", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "link.png").symlink_to(data / "test" / "red" / "0.png")
    cases = [
        ("--json", data / "test" / "red" / "0.png"),  # an image of the data set
        ("--plot", data / "train" / "blue" / "new.png"),  # a new image in a class folder
        ("--preview", data / "test" / "preview.png"),
        ("--json", tmp_path / "link.png"),  # a link to an image of it
        ("--save-models", data / "train" / "models"),  # would become a class of its own
    ]
    for flag, path in cases:
        line = _fail("--dataset", f"imagefolder:{data}", "--mode", "plain", flag, str(path))
        assert line.startswith(f"error: {flag} {path} lies in the data set") and f"imagefolder:{data}" in line
    assert _files(data) == before


def test_load_models_refuses_models_of_another_data_set(digits_run, tmp_path):
    out, _, _ = digits_run  # models/ holds digits models: 10 classes, "0" to "9"
    data = _image_folder(tmp_path / "data")
    line = _fail("--dataset", f"imagefolder:{data}", "--mode", "plain", "--load-models", str(out / "models"))
    assert (
        f"--load-models {out / 'models'} holds models trained on digits, not on --dataset imagefolder:"
        in line
    )
    assert "give --dataset digits or train new models with --save-models" in line
    # refused before CIFAR-10 is looked for (it is not in this empty cache folder)
    line = _fail(
        "--dataset", "cifar10", "--data-dir", str(tmp_path / "empty"), "--load-models", str(out / "models")
    )
    assert "holds models trained on digits, not on --dataset cifar10" in line


def test_load_models_refuses_another_image_folders_classes(tmp_path):
    colours = _image_folder(tmp_path / "colours")
    models = tmp_path / "models"
    args = ["--mode", "plain", "--epochs", "1", "--angles", "0", "--quiet"]
    trained = runner.invoke(
        app, ["rotate-eval", "--dataset", f"imagefolder:{colours}", *args, "--save-models", str(models)]
    )
    assert trained.exit_code == 0, trained.output
    pets = _image_folder(tmp_path / "pets", ("cat", "dog"))  # two classes too: shapes would fit
    line = _fail("--dataset", f"imagefolder:{pets}", "--mode", "plain", "--load-models", str(models))
    assert f"holds models for the classes blue, red of imagefolder:{colours}" in line
    assert f"but --dataset imagefolder:{pets} has the classes cat, dog" in line
    # the same classes in a folder that moved: the models load
    moved = tmp_path / "moved"
    colours.rename(moved)
    again = runner.invoke(
        app, ["rotate-eval", "--dataset", f"imagefolder:{moved}", *args, "--load-models", str(models)]
    )
    assert again.exit_code == 0, again.output


def test_save_and_load_in_the_same_folder_are_refused(digits_run, tmp_path):
    out, _, _ = digits_run
    before = _files(out / "models")
    (tmp_path / "same").symlink_to(out / "models")
    for save in (out / "models", tmp_path / "same"):
        line = _fail(
            "--dataset", "digits", "--load-models", str(out / "models"), "--save-models", str(save), "--force"
        )
        assert "are the same folder: the models loaded would be replaced" in line
    assert _files(out / "models") == before


def _png_header(path, width: int, height: int) -> None:
    """A PNG that says it is width x height pixels and holds none (what a decompression bomb
    or a truncated huge photo looks like to a reader of its header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [20_000, 10_000])  # PIL: an error above 179M pixels, a warning above 89M
def test_an_image_claiming_a_huge_size_is_refused_by_its_header(tmp_path, side):
    data = _image_folder(tmp_path / "data")
    _png_header(data / "train" / "red" / "huge.png", side, side)
    line = _fail("--dataset", f"imagefolder:{data}", "--mode", "plain", "--epochs", "1")
    assert line == (
        f"error: image {data / 'train' / 'red' / 'huge.png'} claims {side * side:,} pixels, more than the "
        "89,478,485 that hw2 decodes (a huge photo or a decompression bomb); shrink it or remove it from the data set"
    )


def test_the_pixel_limit_holds_whatever_pils_own_is(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", None)  # a notebook turned PIL's check off
    data = _image_folder(tmp_path / "data")
    _png_header(data / "test" / "blue" / "huge.png", 20_000, 20_000)
    line = _fail("--dataset", f"imagefolder:{data}", "--mode", "plain", "--epochs", "1")
    assert "huge.png claims 20000x20000 pixels, more than the 89,478,485 that hw2 decodes" in line


def test_a_save_models_path_keeps_its_braces(tmp_path):
    """The folder's path goes into rundir's errors as a value: only ``{save_models}`` is a field."""
    taken = tmp_path / "m{out}"
    taken.write_text("a file")
    done = runner.invoke(app, ["rotate-eval", "--dataset", "digits", "--save-models", str(taken)])
    assert done.exit_code == 2
    assert (
        done.stderr
        == f"error: --save-models folder {taken} exists and is not a folder; choose another path\n"
    )


@pytest.mark.parametrize(
    "args, shown",
    [
        (["--angles", "{seed}"], "error: bad --angles '{seed}': '{seed}' is not a number; use START"),
        (["--mode", "plain,{seed}"], "error: unknown --mode '{seed}'; use a comma list"),
        (["--dataset", "{seed}"], "error: unknown --dataset '{seed}'; use cifar10"),
    ],
)
def test_braces_in_a_value_are_shown_as_given(args, shown):
    """A value is no field name: ``{seed}`` in it is not turned into ``--seed``."""
    assert _fail(*args).startswith(shown)


def test_a_load_models_path_keeps_its_braces(tmp_path):
    folder = tmp_path / "m{mode}"
    folder.mkdir()
    assert _fail("--dataset", "digits", "--load-models", str(folder)).startswith(
        f"error: --load-models {folder}: no config.json there"
    )
    (folder / "config.json").write_text("{")
    assert _fail("--dataset", "digits", "--load-models", str(folder)).startswith(
        f"error: {folder / 'config.json'} is not valid JSON"
    )
