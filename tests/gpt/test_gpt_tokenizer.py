"""BPE tokens for `hw2 gpt train --tokenizer PATH`: round trip, the cached token file, bits per
character, and TensorBoard events. The tokenizer is trained in the test with `tokenizers`."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

from helpers import TEXT, train_argv  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from hw2cli.cli import app  # noqa: E402
from hw2cli.common.errors import Hw2Error  # noqa: E402
from hw2cli.gpt.saved import load_run  # noqa: E402
from hw2cli.gpt.tokens import BPETokenizer, bits_per_char, encode_cached, make_tokenizer  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [TEXT],
        trainers.BpeTrainer(
            vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        ),
    )
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_round_trip_including_characters_the_training_text_lacks(tokenizer_json):
    tok = make_tokenizer(str(tokenizer_json), TEXT)
    assert isinstance(tok, BPETokenizer) and 256 < tok.vocab_size <= 320
    for text in (TEXT, "Zwölf Äpfel — 12 🍎!\n\tand ¿qué?"):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    assert len(tok.encode(TEXT)) < len(TEXT) / 2  # merges learnt from the text: fewer tokens than chars
    assert tok == BPETokenizer.from_file(tokenizer_json)
    with pytest.raises(Hw2Error, match="does not exist"):
        make_tokenizer(str(tokenizer_json.parent / "nope.json"), TEXT)
    (tokenizer_json.parent / "bad.json").write_text("{}")
    with pytest.raises(Hw2Error, match="not a tokenizer.json"):
        make_tokenizer(str(tokenizer_json.parent / "bad.json"), TEXT)


def test_the_token_cache_is_written_once_and_rebuilt_for_another_text(tokenizer_json, tmp_path, monkeypatch):
    tok = BPETokenizer.from_file(tokenizer_json)
    ids = encode_cached(TEXT, tok, tmp_path)
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16
    assert ids.tolist() == tok.encode(TEXT)
    [cached] = (tmp_path / "tokens").iterdir()
    assert cached.stat().st_size == 2 * len(ids)

    calls = []
    original = BPETokenizer.encode

    def counting(self, text, what="text"):
        calls.append(1)
        return original(self, text)

    monkeypatch.setattr(BPETokenizer, "encode", counting)
    assert encode_cached(TEXT, tok, tmp_path).tolist() == ids.tolist()
    assert calls == []  # read back from the file, not encoded again
    changed = TEXT.replace("frog", "toad")
    assert encode_cached(changed, tok, tmp_path).tolist() == original(tok, changed)
    assert calls == [1] and len(list((tmp_path / "tokens").iterdir())) == 2


def test_bits_per_character_by_hand():
    # 2 nats per token over 10 tokens spelling 40 characters: 20 nats / 40 chars = 0.5 nats/char
    assert bits_per_char(2.0, 10, 40) == pytest.approx(0.5 / math.log(2))
    assert bits_per_char(math.log(2), 1, 1) == pytest.approx(1.0)


def train(tmp_path, out, *extra):
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    sizes = dict(block_size=8, batch_size=4, max_steps=4, eval_interval=2, eval_steps=2, log_interval=1)
    argv = train_argv(corpus, tmp_path / out, model_type="gpt-nano", **sizes, sample_interval=2, device="cpu")
    return runner.invoke(app, [*argv, "--quiet", "--json", str(tmp_path / f"{out}.json"), *extra])


def metrics(run):
    with (run / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_train_with_a_bpe_tokenizer_end_to_end(tokenizer_json, tmp_path, monkeypatch):
    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "cache"))
    result = train(tmp_path, "run", "--tokenizer", str(tokenizer_json))
    assert result.exit_code == 0, result.output
    assert "bits/char" in result.stdout
    tok = BPETokenizer.from_file(tokenizer_json)
    model, saved, options = load_run(tmp_path / "run")
    assert saved == tok and model.config.vocab_size == tok.vocab_size
    assert json.loads((tmp_path / "run" / "vocab.json").read_text()) == {"tokenizer": "tokenizer.json"}
    assert len(list((tmp_path / "cache" / "tokens").iterdir())) == 1
    # bits per character from the validation split's own tokens and characters
    corpus_ids = tok.encode(TEXT)
    val_ids = corpus_ids[len(corpus_ids) - round(len(corpus_ids) * 0.1) :]
    ratio = len(val_ids) / len(tok.decode(val_ids)) / math.log(2)
    rows = [r for r in metrics(tmp_path / "run") if r["val_loss"]]
    assert len(rows) == 2
    for r in rows:
        assert float(r["val_bpc"]) == pytest.approx(float(r["val_loss"]) * ratio, rel=1e-6)

    result = runner.invoke(
        app,
        [
            "gpt",
            "generate",
            str(tmp_path / "run"),
            "--prompt",
            "The queen",
            "--max-new-tokens",
            "6",
            "--greedy",
            "--device",
            "cpu",
            "--json",
            str(tmp_path / "g.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    [sample] = json.loads((tmp_path / "g.json").read_text())["samples"]
    prompt = tok.encode("The queen")
    out = model.generate(torch.tensor([prompt]), 6, do_sample=False)[0, len(prompt) :]
    assert sample["completion"] == tok.decode(out.tolist()) and len(out) == 6


def test_char_runs_report_bits_per_character_as_loss_over_ln2(tmp_path):
    result = train(tmp_path, "run")
    assert result.exit_code == 0, result.output
    rows = [r for r in metrics(tmp_path / "run") if r["val_loss"]]
    assert rows
    for r in rows:
        assert float(r["val_bpc"]) == pytest.approx(float(r["val_loss"]) / math.log(2))
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["val_bpc"] == pytest.approx(summary["val_loss"] / math.log(2))


def test_metrics_written_before_val_bpc_still_read(tmp_path):
    from hw2cli.gpt.saved import read_metrics

    old = "step,train_loss,val_loss,lr,tokens_per_s\n2,1.5,1.25,0.001,100.0\n"
    (tmp_path / "metrics.csv").write_text(old)
    assert read_metrics(tmp_path) == [
        {"step": 2, "train_loss": 1.5, "val_loss": 1.25, "val_bpc": None, "lr": 0.001, "tokens_per_s": 100.0}
    ]


def test_tensorboard_events_are_written_and_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(tmp_path, "run", "--tensorboard", str(tmp_path / "tb"))
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    rows = metrics(tmp_path / "run")
    train_loss = events.Scalars("loss/train")
    assert [e.step for e in train_loss] == [int(r["step"]) for r in rows]
    assert [e.value for e in train_loss] == pytest.approx([float(r["train_loss"]) for r in rows], rel=1e-6)
    val = events.Scalars("bits_per_char/val")
    assert [e.step for e in val] == [2, 4]
    assert {"loss/val", "lr", "tokens_per_s"} <= set(events.Tags()["scalars"])
    assert "sample/text_summary" in events.Tags()["tensors"]


def test_tensorboard_missing_is_one_line(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    result = train(tmp_path, "run", "--tensorboard", str(tmp_path / "tb"))
    assert result.exit_code == 2 and "pip install 'hw2[tensorboard]'" in result.stderr
    assert not (tmp_path / "run" / "config.json").exists()  # refused before any work
