"""`hw2 rotate-eval` says up front how long a long run will take, and Ctrl-C stops it between
training steps, keeping the models that finished."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.progress import Reporter
from hw2cli.rotation import experiment
from hw2cli.rotation.data import load_digits
from hw2cli.rotation.model import P4CNNConfig, RotationCNNConfig
from hw2cli.rotation.options import RotationOptions

runner = CliRunner()


def test_the_estimate_scales_the_timed_steps_to_the_run(monkeypatch):
    """Every timed step or batch taking 10 ms: digits has 1,347 training images (22 batches of
    64) and 450 test images; two models to train for 2 epochs, two modes at two angles."""
    monkeypatch.setattr(experiment._StepClock, "fastest", lambda self: 0.01)
    opts = RotationOptions(
        dataset="digits", mode="plain,augmented-tta", epochs=2, angles="0,90", device="cpu"
    )
    configs = {"plain": RotationCNNConfig(), "augmented": RotationCNNConfig()}
    seconds = experiment.estimate_seconds(
        load_digits(), opts, ["plain", "augmented"], configs, torch.device("cpu")
    )
    training = 2 * 0.01 * 22 * 2
    evaluation = 2 * (0.01 / 32) * 450 * 2  # per image of a timed batch of 32, every test image and angle
    assert seconds == pytest.approx(training + evaluation)
    # models loaded instead of trained: evaluation only
    loaded = experiment.estimate_seconds(load_digits(), opts, [], configs, torch.device("cpu"))
    assert loaded == pytest.approx(evaluation)


def test_the_timed_steps_leave_the_runs_random_numbers_alone():
    state = torch.random.get_rng_state()
    opts = RotationOptions(dataset="digits", mode="p4-augmented", epochs=1, angles="0", device="cpu")
    seconds = experiment.estimate_seconds(
        load_digits(), opts, ["p4-augmented"], {"p4-augmented": P4CNNConfig()}, torch.device("cpu")
    )
    assert seconds > 0 and torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("quiet", [False, True])
def test_a_long_run_is_announced_on_the_command_line(monkeypatch, quiet):
    monkeypatch.setattr(experiment, "estimate_seconds", lambda *args: 3 * 3600.0)
    args = ["rotate-eval", "--dataset", "digits", "--mode", "plain", "--epochs", "1", "--angles", "0"]
    result = runner.invoke(app, [*args, "--device", "cpu", *(["--quiet"] if quiet else [])])
    assert result.exit_code == 0, result.output
    if quiet:
        assert "estimated" not in result.stderr
    else:
        assert (
            "warning: estimated wall time of rotate-eval (plain; 1 epochs, 1 angles): about 3.0 h "
            "(2 timed training steps per model and 2 timed test batches per mode, scaled to the run); "
            "for a shorter run lower --epochs, give fewer --angles or --mode, or try --dataset digits"
        ) in result.stderr
    assert "worst" in result.stdout  # and then the run and its table


def test_ctrl_c_stops_between_training_steps_and_keeps_the_finished_model():
    """A real SIGINT at the third training step of the augmented model: no step after it, the
    plain model (trained and evaluated before) is kept."""

    class InterruptAugmented(Reporter):
        steps = 0

        def update(self, key: str, advance: float = 0, **fields) -> None:
            if key == "augmented" and advance:
                self.steps += 1
                if self.steps == 3:
                    os.kill(os.getpid(), signal.SIGINT)

    reporter = InterruptAugmented()
    opts = RotationOptions(dataset="digits", mode="both", epochs=1, angles="0,90", device="cpu")
    result = experiment.run_rotation_experiment(opts, reporter)
    assert result.interrupted
    assert [m.name for m in result.models] == ["plain"] and len(result.models[0].accuracy) == 2
    assert reporter.steps == 3  # 22 steps in the epoch: it stopped at the step it was interrupted in
