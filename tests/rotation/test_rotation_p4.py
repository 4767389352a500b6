"""The p4 rotation-equivariant CNN and test-time augmentation of rotate-eval: exact invariance and
equivariance for random weights, and every --mode end to end on digits."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import MARKER
from hw2cli.common.options import OptionError
from hw2cli.rotation.model import (
    P4CNN,
    P4CNNConfig,
    RotationCNN,
    RotationCNNConfig,
    RotationTTA,
    count_parameters,
)
from hw2cli.rotation.options import MODES, parse_modes

runner = CliRunner()


def _turn(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(x, k, dims=(-2, -1))


@pytest.fixture(scope="module")
def p4_model():
    torch.manual_seed(0)
    return P4CNN(P4CNNConfig()).double().eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_p4_logits_are_invariant_to_quarter_turns(p4_model, images, k):
    with torch.no_grad():
        logits, turned = p4_model(images), p4_model(_turn(images, k))
    torch.testing.assert_close(turned, logits, rtol=0, atol=1e-5)
    # the plain CNN with random weights is not: the property is the architecture's
    torch.manual_seed(0)
    plain = RotationCNN(RotationCNNConfig()).double().eval()
    with torch.no_grad():
        assert (plain(_turn(images, k)) - plain(images)).abs().max() > 1e-3


def _feature_maps(model: P4CNN, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of each conv block as (B, fields, 4, H, W)."""
    maps = []
    for block in model.blocks:
        x = block(x)
        maps.append(x.unflatten(1, (-1, 4)))
    return maps


@pytest.mark.parametrize("k", [1, 2, 3])
def test_p4_feature_maps_turn_and_shift_their_rotation_channels(p4_model, images, k):
    """Turning the input by k quarter turns turns every (fields, 4, H, W) map by k quarter turns and
    moves rotation channel r to r + k (mod 4)."""
    with torch.no_grad():
        maps, turned_maps = _feature_maps(p4_model, images), _feature_maps(p4_model, _turn(images, k))
    assert [m.shape[1:] for m in maps] == [(16, 4, 16, 16), (32, 4, 8, 8), (32, 4, 4, 4)]
    for m, t in zip(maps, turned_maps, strict=True):
        expected = torch.roll(_turn(m, k), shifts=k, dims=2)
        torch.testing.assert_close(t, expected, rtol=0, atol=1e-10)
        # the rotation channels carry information: without the shift the maps differ
        assert (t - _turn(m, k)).abs().max() > 1e-3


def test_p4_filters_are_the_four_turns_of_one_learned_filter(p4_model):
    lifting, group = p4_model.blocks[0][0], p4_model.blocks[1][0]
    w = lifting.filters().unflatten(0, (-1, 4))  # (fields, 4, in, 3, 3)
    for r in range(4):
        assert torch.equal(w[:, r], _turn(lifting.weight[:, :, 0], r))
    g = group.filters().unflatten(0, (-1, 4)).unflatten(2, (-1, 4))  # (out, 4, in, 4, 3, 3)
    for r in range(4):
        for s in range(4):
            assert torch.equal(g[:, r, :, s], _turn(group.weight[:, :, (s - r) % 4], r))


def test_p4_parameter_count_is_close_to_the_plain_cnn():
    plain = count_parameters(RotationCNN(RotationCNNConfig()))
    p4 = count_parameters(P4CNN(P4CNNConfig()))
    # hand count: lifting 16*3*9+16, group 32*16*4*9+32 and 32*32*4*9+32, dense 32*32*4*16+32, linear 32*10+10
    assert p4 == 448 + 18464 + 36896 + 65568 + 330 == 121706
    assert plain == 122570 and abs(p4 - plain) / plain < 0.01


def test_p4_refuses_an_image_side_that_pools_unevenly():
    with pytest.raises(ValueError, match="divisible by 8"):
        P4CNN(P4CNNConfig(image_size=20))


def test_tta_over_the_four_quarter_turns_is_exactly_invariant():
    torch.manual_seed(0)
    plain = RotationCNN(RotationCNNConfig()).eval()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    tta = RotationTTA(plain)
    with torch.no_grad():
        base = tta(x)
        for k in (1, 2, 3):
            assert torch.equal(tta(_turn(x, k)), base)
        # it is the log of the mean softmax over the turned copies
        mean = torch.stack([plain(_turn(x, k)).softmax(dim=1) for k in range(4)]).mean(dim=0)
        torch.testing.assert_close(base.exp(), mean, rtol=1e-6, atol=1e-7)
        # two turns only: a half turn maps the set onto itself, a quarter turn does not
        half = RotationTTA(plain, (0.0, 180.0))
        torch.testing.assert_close(half(_turn(x, 2)), half(x))
        assert (half(_turn(x, 1)) - half(x)).abs().max() > 1e-4


def test_parse_modes():
    assert parse_modes("both") == ["plain", "augmented"]
    assert parse_modes("p4, augmented-tta,plain,p4") == ["p4", "augmented-tta", "plain"]
    assert parse_modes(",".join(MODES)) == list(MODES)
    valid = "plain, augmented, p4, p4-augmented, augmented-tta, plain-tta"
    with pytest.raises(OptionError, match=f"unknown mode 'p8'; use a comma list of {valid}"):
        parse_modes("plain,p8")


def test_unknown_mode_lists_the_valid_ones():
    result = runner.invoke(app, ["rotate-eval", "--dataset", "digits", "--mode", "p4,rotated"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: unknown --mode 'rotated'; use a comma list of plain, augmented, p4, p4-augmented, "
        "augmented-tta, plain-tta (both = plain,augmented)"
    ]


def test_the_old_tta_mode_points_to_its_two_successors():
    result = runner.invoke(app, ["rotate-eval", "--dataset", "digits", "--mode", "plain,tta"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --mode 'tta' is now augmented-tta (TTA over the rotation-augmented model)")
    assert "plain-tta (the ablation)" in line


ANGLES = "0:270:90,45"


@pytest.fixture(scope="module")
def all_modes(tmp_path_factory):
    """One epoch of every mode on digits, models saved."""
    out = tmp_path_factory.mktemp("p4")
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--angles",
            ANGLES,
            "--device",
            "cpu",
            "--mode",
            ",".join(MODES),
            "--json",
            str(out / "r.json"),
            "--plot",
            str(out / "plot.png"),
            "--save-models",
            str(out / "models"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, result, json.loads((out / "r.json").read_text())


def test_every_mode_has_its_curve(all_modes):
    out, result, report = all_modes
    assert list(report["models"]) == list(MODES)
    assert report["angles"] == [0.0, 45.0, 90.0, 180.0, 270.0]
    for m in report["models"].values():
        assert len(m["accuracy"]) == 5 and m["ms_per_image"] > 0
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["parameters"] == {"cnn": 122570, "p4": 121706}
    assert "parameters: CNN 122,570, p4 CNN 121,706" in result.stdout


def test_p4_and_tta_are_flat_at_quarter_turns(all_modes):
    _, _, report = all_modes
    for name in ("p4", "p4-augmented", "augmented-tta", "plain-tta"):
        acc = dict(zip(report["angles"], report["models"][name]["accuracy"], strict=True))
        assert acc[90.0] == acc[180.0] == acc[270.0] == acc[0.0], (name, acc)
    assert report["models"]["p4"]["accuracy"][0] > 0.2  # learned something (chance is 0.1) in one epoch
    plain = report["models"]["plain"]["accuracy"]
    assert plain[0] - plain[2] > 0.1  # ... where the plain CNN is not flat


def test_each_tta_mode_reuses_its_trained_model(all_modes):
    out, _, report = all_modes
    models = report["models"]
    for tta, weights in (("augmented-tta", "augmented"), ("plain-tta", "plain")):
        assert models[tta]["weights"] == weights
        assert models[tta]["train_loss"] == models[weights]["train_loss"]
        assert models[tta]["train_seconds"] == models[weights]["train_seconds"]
    assert report["tta_angles"] == [0.0, 90.0, 180.0, 270.0]
    assert sorted(p.name for p in (out / "models").iterdir() if p.name != MARKER) == [
        "augmented.safetensors",
        "config.json",
        "p4-augmented.safetensors",
        "p4.safetensors",
        "plain.safetensors",
    ]


def test_augmented_tta_averages_the_augmented_model_over_quarter_turns(all_modes):
    """Its accuracy at 0 degrees, recomputed here from the saved augmented weights with torch.rot90."""
    from safetensors.torch import load_file

    from hw2cli.rotation.data import load_digits, to_float

    out, _, report = all_modes
    model = RotationCNN(RotationCNNConfig())
    model.load_state_dict(load_file(str(out / "models" / "augmented.safetensors")))
    data = load_digits()
    x = to_float(data.test_images)
    with torch.no_grad():
        probs = torch.stack([model.eval()(_turn(x, k)).softmax(dim=1) for k in range(4)]).mean(dim=0)
    expected = (probs.argmax(dim=1) == data.test_labels).double().mean().item()
    got = report["models"]["augmented-tta"]["accuracy"][0]
    assert abs(got - expected) <= 1 / 450  # one near-tie may round the other way


def test_saved_p4_model_reloads_to_the_same_accuracies(all_modes):
    out, _, report = all_modes
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--load-models",
            str(out / "models"),
            "--angles",
            "0,45",  # the identity and a turn between quarter turns: a third of the evaluation
            "--mode",
            "p4,augmented-tta,plain-tta",
            "--json",
            str(out / "reload.json"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    again = json.loads((out / "reload.json").read_text())
    assert again["models"]["p4"]["loaded_from"].endswith("p4.safetensors")
    assert again["models"]["augmented-tta"]["loaded_from"].endswith("augmented.safetensors")
    assert again["models"]["plain-tta"]["loaded_from"].endswith("plain.safetensors")
    for name in ("p4", "augmented-tta", "plain-tta"):
        first = dict(zip(report["angles"], report["models"][name]["accuracy"], strict=True))
        assert again["models"][name]["accuracy"] == [first[0.0], first[45.0]]


def test_report_section_shows_every_mode(all_modes, tmp_path):
    from hw2cli.report import sections

    _, _, report = all_modes
    (tmp_path / "result.json").write_text(json.dumps(report))
    lines = sections.rotation(tmp_path, tmp_path)
    assert lines[2] == "| angle (°) | " + " | ".join(f"{m} (%)" for m in MODES) + " |"
    assert any("p4 CNN 121,706" in line for line in lines)


def test_report_section_reads_results_from_before_the_p4_modes(all_modes, tmp_path):
    from hw2cli.report import sections

    _, _, report = all_modes
    old = {**report, "models": {m: report["models"][m] for m in ("plain", "augmented")}}
    del old["parameters"]
    (tmp_path / "result.json").write_text(json.dumps(old))
    lines = sections.rotation(tmp_path, tmp_path)
    assert lines[2] == "| angle (°) | plain (%) | augmented (%) |"
    assert not any(line.startswith("Parameters:") for line in lines)
    p4 = {k: v for k, v in report["models"]["p4"].items() if k != "ms_per_image"}
    broken = {**report, "models": {"p4": p4}}
    (tmp_path / "result.json").write_text(json.dumps(broken))
    with pytest.raises(Hw2Error, match="ms_per_image"):
        sections.rotation(tmp_path, tmp_path)


def test_p4_model_listed_without_its_architecture_is_refused(all_modes, tmp_path):
    import shutil

    out, _, _ = all_modes
    shutil.copytree(out / "models", tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    del meta["p4_model"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--load-models",
            str(tmp_path / "m"),
            "--mode",
            "p4",
            "--angles",
            "0",
        ],
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "p4 models are listed without a p4_model section" in lines[0], lines


def test_p4_and_tta_on_an_image_folder(tmp_path):
    """The same code path on a colour image folder (resized to 32x32, two classes)."""
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for cls, channel in (("red", 0), ("blue", 2)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                pixels = (torch.rand(20, 20, 3, generator=rng) * 80).to(torch.uint8)
                pixels[4:12, 6:16, channel] = 255  # an off-centre patch, so that turns move it
                Image.fromarray(pixels.numpy()).save(tmp_path / split / cls / f"{i}.png")
    result = runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            f"imagefolder:{tmp_path}",
            "--epochs",
            "1",
            "--angles",
            "0,90,180,270,30",
            "--mode",
            "p4,augmented-tta",
            "--json",
            str(tmp_path / "r.json"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["classes"] == ["blue", "red"] and report["parameters"]["p4"] == 121706 - 8 * 32 - 8
    for name in ("p4", "augmented-tta"):
        acc = report["models"][name]["accuracy"]
        assert acc[0] == acc[1] == acc[2] == acc[3], (name, acc)
