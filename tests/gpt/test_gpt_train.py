"""The GPT trainer and its run directory: save/load, resume equivalence, Ctrl-C, the
learning-rate schedule, and DistributedDataParallel across two "nodes" of one CPU process each."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch
from helpers import REPO, TEXT, tiny, weights, with_three_dropouts

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import MARKER
from hw2cli.common.progress import Reporter
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt import saved
from hw2cli.gpt.model import GPT, GPTConfig
from hw2cli.gpt.options import TrainOptions
from hw2cli.gpt.tokens import CharTokenizer
from hw2cli.gpt.train import lr_at, train


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _optimizer_after_two_steps(model):
    opt = model.configure_optimizers(0.1, 1e-3)
    for _ in range(2):
        model(torch.randint(model.config.vocab_size, (2, 8))).sum().backward()
        opt.step()
        opt.zero_grad()
    return opt


def test_save_then_load_gives_identical_logits_and_optimizer_state(tmp_path):
    """A checkpoint written by the trainer's writer reads back to the same logits and the
    same AdamW state (safetensors and JSON, no pickle)."""
    tok = CharTokenizer.from_text(TEXT)
    config = GPTConfig.from_preset("gpt-nano", vocab_size=tok.vocab_size, block_size=16)
    torch.manual_seed(3)
    model = GPT(config)
    opt = _optimizer_after_two_steps(model)
    model.eval()
    state = {"step": 2, "total_steps": 4, "finished": False}
    first = (config, {"model_type": "gpt-nano"}, tok)
    ckpt.Checkpoints(tmp_path, 0, first, None).save(state, model, opt, [])
    loaded, loaded_tok, options = saved.load_run(tmp_path)
    assert loaded_tok == tok and options == {"model_type": "gpt-nano"} and loaded.config == config
    idx = torch.tensor([tok.encode("The frog sat by ")])
    with torch.no_grad():
        assert torch.equal(model(idx), loaded(idx))
    assert not loaded.training
    fresh = GPT(config).configure_optimizers(0.1, 1e-3)
    assert saved.load_training_state(saved.open_run(tmp_path), fresh) == {
        "step": 2,
        "total_steps": 4,
        "finished": False,
    }
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i, param_state in a["state"].items():
        for name, value in param_state.items():
            assert torch.equal(value, b["state"][i][name]), (i, name)
    assert not any(p.suffix == ".pkl" or p.suffix == ".pt" for p in tmp_path.iterdir())


def test_run_directory_contents(corpus, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("step,train_loss,val_loss,lr,tokens_per_s\n99,1,1,1,1\n")  # not hw2's
    with pytest.raises(Hw2Error, match=r"metrics\.csv.*add force"):  # the field; the CLI says --force
        train(tiny(corpus, run))
    result = train(tiny(corpus, run, force=True))
    assert {p.name for p in run.iterdir() if p.name != MARKER} == {
        "config.json",
        "vocab.json",
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
        "metrics.csv",
        "loss.png",
    }
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["n_layer"] == 3 and config["model"]["vocab_size"] == len(set(TEXT))
    assert config["train"]["max_steps"] == 12
    rows = saved.read_metrics(run)
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    assert [r["val_loss"] is not None for r in rows] == [False, True, False, True]
    assert rows[-1]["val_loss"] == pytest.approx(result.val_loss)
    assert rows[-1]["train_loss"] == pytest.approx(result.train_loss)
    assert all(r["lr"] == 5e-4 and r["tokens_per_s"] > 0 for r in rows)
    assert math.log(len(set(TEXT))) > rows[-1]["train_loss"]  # learnt something
    assert result.steps == 12 and not result.interrupted
    assert json.loads((run / "state.json").read_text())["finished"] is True


def test_epochs_set_the_number_of_steps(corpus, tmp_path):
    result = train(
        tiny(corpus, tmp_path / "run", max_steps=None, epochs=1, batch_size=256, eval_interval=100)
    )
    n_train = len(TEXT) - round(len(TEXT) * 0.1)
    assert result.total_steps == result.steps == math.ceil((n_train - 16) / 256)


def test_resume_after_max_steps_reaches_the_same_weights(corpus, tmp_path):
    train(tiny(corpus, tmp_path / "full", warmup_steps=4))
    first = train(tiny(corpus, tmp_path / "split", warmup_steps=4, max_steps=6))
    assert first.steps == 6
    resumed = train(TrainOptions(max_steps=12, device="cpu", resume=str(tmp_path / "split")))
    assert resumed.start_step == 6 and resumed.steps == 12
    assert_same_weights(tmp_path / "full", tmp_path / "split")
    assert [r["step"] for r in saved.read_metrics(tmp_path / "split")] == [3, 6, 9, 12]


def test_a_run_written_with_three_dropout_fields_resumes_and_generates(corpus, tmp_path):
    """config.json from before one dropout field (embd/resid/attn_pdrop) still loads: the run
    resumes to the weights of an uninterrupted one, and `gpt generate` samples from it."""
    from typer.testing import CliRunner

    from hw2cli.cli import app

    train(tiny(corpus, tmp_path / "full", dropout=0.2))
    train(tiny(corpus, tmp_path / "old", dropout=0.2, max_steps=6))
    with_three_dropouts(tmp_path / "old")
    assert saved.open_run(tmp_path / "old").model_config.dropout == 0.2
    train(TrainOptions(max_steps=12, device="cpu", resume=str(tmp_path / "old")))
    assert_same_weights(tmp_path / "full", tmp_path / "old")
    assert (
        "attn_pdrop" in json.loads((tmp_path / "old" / "config.json").read_text())["model"]
    )  # kept as it was
    done = CliRunner().invoke(app, ["gpt", "generate", str(tmp_path / "old"), "--prompt", "The", "--greedy"])
    assert done.exit_code == 0 and "The" in done.stdout, done.output


def test_three_dropout_fields_that_differ_are_refused(corpus, tmp_path):
    train(tiny(corpus, tmp_path / "run", max_steps=3))
    with_three_dropouts(tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    path.write_text(path.read_text().replace('"attn_pdrop": 0.1', '"attn_pdrop": 0.3'))
    with pytest.raises(
        Hw2Error, match="config.json: field model: embd_pdrop, resid_pdrop, attn_pdrop differ"
    ):
        saved.open_run(tmp_path / "run")


class _CtrlCAt(Reporter):
    """Sends this process a SIGINT (as Ctrl-C does) when the bar reaches ``step``."""

    def __init__(self, step: int):
        self.step, self.done = step, 0

    def update(self, key, advance=0, **fields):
        self.done += advance
        if self.done == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_leaves_a_checkpoint_that_resumes_exactly(corpus, tmp_path):
    opts = dict(lr_schedule="cosine", warmup_steps=2, min_lr=1e-5, dropout=0.1)
    train(tiny(corpus, tmp_path / "full", **opts))
    cut = train(tiny(corpus, tmp_path / "cut", **opts), reporter=_CtrlCAt(3))
    assert cut.interrupted and cut.steps == 3
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["step"] == 3
    model, _, _ = saved.load_run(tmp_path / "cut")  # usable as it is
    assert model.config.n_layer == 3
    resumed = train(TrainOptions(device="cpu", resume=str(tmp_path / "cut")))
    assert not resumed.interrupted and resumed.steps == 12
    assert_same_weights(tmp_path / "full", tmp_path / "cut")


def test_resume_refuses_another_text(corpus, tmp_path):
    train(tiny(corpus, tmp_path / "run", max_steps=3))
    other = tmp_path / "other.txt"
    other.write_text(TEXT + "XYZ", encoding="utf-8")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    saved["train"]["txt_file"] = str(other)
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    with pytest.raises(Hw2Error, match="vocabulary"):
        train(TrainOptions(max_steps=6, device="cpu", resume=str(tmp_path / "run")))


def test_lr_schedule():
    opts = TrainOptions(lr=1e-3, lr_schedule="cosine", warmup_steps=10, min_lr=1e-4)
    assert lr_at(0, 110, opts) == pytest.approx(1e-3 / 11)
    assert lr_at(9, 110, opts) == pytest.approx(1e-3 * 10 / 11)
    assert lr_at(10, 110, opts) == pytest.approx(1e-3)
    assert lr_at(60, 110, opts) == pytest.approx(5.5e-4)  # half-way: mean of lr and min_lr
    assert lr_at(110, 110, opts) == pytest.approx(1e-4)
    assert lr_at(50, 110, TrainOptions(lr=1e-3)) == 1e-3  # constant, the course default
    assert lr_at(100, 100, TrainOptions(lr=1e-3, lr_schedule="cosine")) == pytest.approx(1e-4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_under_torchrun_train_what_one_process_does_with_their_global_batch(corpus, tmp_path):
    """Two "nodes" (two torchrun launchers, one process each, gloo) meet through a c10d
    rendezvous on 127.0.0.1, as the nodes of a cluster do (docs/gpt.md), and train with batch
    4 each: the losses and weights equal one process's with batch 8 (dropout 0), since a
    step's windows are one draw that the processes share out. Only rank 0 reports and writes."""
    out = tmp_path / "nodes"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    launch += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "t"]
    launch += ["--local-addr", "127.0.0.1", "-m", "hw2cli", "gpt", "train", "--txt-file", str(corpus)]
    launch += "--model-type gpt-nano --block-size 16 --batch-size 4 --max-steps 6 --eval-interval 3".split()
    launch += "--eval-steps 2 --log-interval 3 --dropout 0 --device cpu --quiet".split()
    launch += ["--out", str(out), "--json", str(tmp_path / "nodes.json")]
    nodes = [
        subprocess.Popen(
            launch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        for _ in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:  # kill torchrun and its worker, not just torchrun
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    summary = json.loads((tmp_path / "nodes.json").read_text())
    assert summary["world_size"] == 2 and summary["rank"] == 0 and summary["steps"] == 6
    assert sum(stdout.count("GPT training") for stdout, _ in outputs) == 1  # only rank 0 reports
    assert [r["step"] for r in saved.read_metrics(out)] == [3, 6]

    single = train(tiny(corpus, tmp_path / "single", batch_size=8, max_steps=6, eval_interval=3, dropout=0.0))
    for a, b in zip(summary["metrics"], single.metrics, strict=True):
        assert a["step"] == b["step"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    one, two = weights(tmp_path / "single"), weights(out)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-6, msg=key)
    # and the weights moved: batch 4 alone, on one process, trains to other weights
    train(tiny(corpus, tmp_path / "half", max_steps=6, eval_interval=3, dropout=0.0))
    half = weights(tmp_path / "half")
    assert any(not torch.allclose(half[k], one[k], rtol=1e-3, atol=1e-4) for k in one)


def test_compiled_training_follows_the_eager_run(corpus, tmp_path):
    # --compile (Inductor, with its C++ wrapper on the CPU and RoPE written out in real
    # arithmetic) computes what eager PyTorch computes: same losses step after step, and the
    # validation runs the eager model in both.
    eager = train(tiny(corpus, tmp_path / "eager", dropout=0.0, flash_attn=True, max_steps=6))
    compiled = train(
        tiny(corpus, tmp_path / "compiled", dropout=0.0, flash_attn=True, max_steps=6, compile=True)
    )
    for a, b in zip(eager.metrics, compiled.metrics, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert (a["val_loss"] is None) == (b["val_loss"] is None)
        if a["val_loss"] is not None:
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_steps_follow_the_cpu_and_cuda_graphs_follow_the_eager_steps(corpus, tmp_path):
    # The GPU paths: ids and windows on the device (the windows the CPU draws), losses read once
    # a row, and --compile as CUDA graphs for the steps and the evaluation. Same losses as the
    # CPU's to TF32's rounding (nanoGPT's setting for fp32 matmuls on a GPU).
    options = dict(dropout=0.0, flash_attn=True, max_steps=6)
    cpu = train(tiny(corpus, tmp_path / "cpu", **options))
    eager = train(tiny(corpus, tmp_path / "eager", device="cuda", **options))
    graphs = train(tiny(corpus, tmp_path / "graphs", device="cuda", compile=True, **options))
    assert eager.device.startswith("cuda") and graphs.device.startswith("cuda")
    for a, b, c in zip(cpu.metrics, eager.metrics, graphs.metrics, strict=True):
        for key in ("train_loss", "val_loss"):
            assert (a[key] is None) == (b[key] is None) == (c[key] is None)
            if a[key] is not None:
                assert b[key] == pytest.approx(a[key], rel=2e-3), (key, a, b)
                assert c[key] == pytest.approx(b[key], rel=2e-3), (key, b, c)
