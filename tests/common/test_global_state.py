"""Library functions leave the process's global state as they found it (issue 29): a notebook
user's random stream is not reseeded by a probe or a training run."""

from __future__ import annotations

import torch

from hw2cli.probe.attention_cost import _workload
from hw2cli.probe.positions import permutation_table
from hw2cli.probe.receptive_field import gpt_fields


def _untouched(call) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    call()
    assert torch.equal(torch.rand(3), expected)


def test_probes_leave_torchs_global_generator_alone():
    _untouched(lambda: permutation_table(seed=0, length=8))
    _untouched(lambda: list(gpt_fields(0, 2, 8, torch.device("cpu"))))
    _untouched(lambda: _workload(8, "explicit", 16, 2, torch.device("cpu"), seed=0)())


def test_gpt_training_leaves_the_generator_and_thread_count_alone(corpus, tmp_path):
    from helpers import tiny

    from hw2cli.gpt.train import train

    threads = torch.get_num_threads()
    _untouched(lambda: train(tiny(corpus, tmp_path / "run", max_steps=2)))
    assert torch.get_num_threads() == threads


def test_the_seed_alone_decides_the_probe_numbers():
    torch.manual_seed(1)
    first = permutation_table(seed=0, length=8)
    torch.manual_seed(2)
    assert permutation_table(seed=0, length=8) == first


def test_padding_and_rotation_training_leave_the_generator_and_thread_count_alone():
    """Round m's weights come from seed m - 1 and the CPU path trains on one thread: neither
    reseeds the caller's generator nor keeps the caller's thread count changed."""
    from hw2cli.padding.bench import run_padding_bench
    from hw2cli.padding.options import PaddingOptions
    from hw2cli.padding.train import TrainSettings
    from hw2cli.rotation.data import ImageData
    from hw2cli.rotation.experiment import train_model
    from hw2cli.rotation.model import RotationCNNConfig

    threads = torch.get_num_threads()
    opts = PaddingOptions(conv_types="valid", rounds=1, epochs=1, device="cpu", workers=1)
    tiny = {"train": 20, "val": 10, "test": 10}
    _untouched(
        lambda: run_padding_bench(
            opts, path="sequential", data_sizes=tiny, settings=TrainSettings(batch_size=10)
        )
    )
    assert torch.get_num_threads() == threads
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=gen)
    data = ImageData("tiny", images, torch.arange(8) % 2, images, torch.arange(8) % 2, ["a", "b"])
    run = dict(augment=True, epochs=1, batch_size=4, lr=1e-3, seed=0, device=torch.device("cpu"))
    _untouched(lambda: train_model(data, RotationCNNConfig(n_classes=2), **run))


def test_a_command_sets_its_thread_count_for_itself_and_records_it(tmp_path):
    """--threads holds for the command only (passed explicitly, restored after); --json - then
    carries only the JSON on standard output, the tables and the thread line on stderr."""
    import json

    from typer.testing import CliRunner

    from hw2cli.cli import app

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        args = [
            "probe",
            "receptive-field",
            "--quick",
            "--device",
            "cpu",
            "-q",
            "--threads",
            "1",
            "--json",
            "-",
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    data = json.loads(result.stdout)
    assert data["threads"] == {
        "threads": 1,
        "cores": data["threads"]["cores"],
        "source": "--threads",
        "busy_cores": None,
    }
    assert "threads: 1 thread (--threads)" in result.stderr


def test_kept_global_state_restores_the_generator_tf32_and_threads():
    from hw2cli.common.seeding import kept_global_state

    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    threads = torch.get_num_threads()

    def train_like() -> None:
        with kept_global_state():
            torch.manual_seed(7)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not flags[0]
            torch.set_num_threads(threads + 1)
            torch.rand(5)

    _untouched(train_like)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags
    assert torch.get_num_threads() == threads
