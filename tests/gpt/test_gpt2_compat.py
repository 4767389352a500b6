"""GPT-2's weights in hw2 (`--init-from`): logits and greedy tokens equal transformers', the hub
cache path, the offline error, and fine-tuning into an ordinary run directory.

Everything is offline: the tests build a tiny random GPT-2 with `transformers` and a byte-level
BPE with `tokenizers`, and save them in the Hugging Face layout.
"""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from helpers import TEXT, with_three_dropouts  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from hw2cli.cli import app  # noqa: E402
from hw2cli.common.errors import Hw2Error  # noqa: E402
from hw2cli.gpt.pretrained import load_pretrained, resolve  # noqa: E402
from hw2cli.gpt.saved import load_run  # noqa: E402

runner = CliRunner()


def bpe(text: str, vocab_size: int) -> tokenizers.Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([text], trainer)
    return tok


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder in the Hugging Face layout, the transformers model, the tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    tok = bpe(TEXT, 300)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=300,
        n_positions=32,
        n_embd=16,
        n_layer=2,
        n_head=2,
        initializer_range=0.2,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tok.save(str(folder / "tokenizer.json"))
    assert not list(folder.glob("*.bin"))  # safetensors only
    return folder, model, tok


def ids_of(tok, text):
    return torch.tensor([tok.encode(text).ids])


def test_logits_equal_transformers(tiny):
    folder, reference, tok = tiny
    ours, where = load_pretrained(str(folder))
    ours.eval()
    assert where == folder and ours.config.norm == "layernorm" and ours.config.tie_head
    assert ours.lm_head.weight is ours.tok_emb.weight
    idx = ids_of(tok, TEXT[:120])[:, :32]
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), reference(idx).logits, rtol=0, atol=1e-4)
        # a shorter block keeps the first positions: the same logits for a short input
        cropped, _ = load_pretrained(str(folder), block_size=8)
        short = idx[:, :8]
        torch.testing.assert_close(cropped.eval()(short), reference(short).logits, rtol=0, atol=1e-4)
    assert reference(idx).logits.std() > 0.1  # not a degenerate, uniform model


def test_greedy_generation_gives_transformers_tokens(tiny):
    folder, reference, tok = tiny
    ours, _ = load_pretrained(str(folder))
    prompt = ids_of(tok, "Once upon a time")
    expected = reference.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(prompt, 12, do_sample=False), expected)
    result = runner.invoke(
        app,
        [
            "gpt",
            "generate",
            "--init-from",
            str(folder),
            "--prompt",
            "Once upon a time",
            "--greedy",
            "--max-new-tokens",
            "12",
            "--device",
            "cpu",
            "--json",
            str(folder.parent / "g.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    sample = json.loads((folder.parent / "g.json").read_text())["samples"][0]
    assert sample["completion"] == tok.decode(expected[0, prompt.size(1) :].tolist())


def test_fine_tuning_writes_an_ordinary_run_that_generates_and_resumes(tiny, tmp_path):
    folder, reference, tok = tiny
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    base = [
        "gpt",
        "train",
        "--init-from",
        str(folder),
        "--txt-file",
        str(corpus),
        "--block-size",
        "16",
        "--batch-size",
        "2",
        "--eval-interval",
        "2",
        "--eval-steps",
        "1",
        "--sample-interval",
        "0",
        "--device",
        "cpu",
        "--quiet",
    ]
    # a learning rate too small to move the weights: the run starts from GPT-2's weights
    result = runner.invoke(
        app, [*base, "--max-steps", "1", "--lr", "1e-9", "--dropout", "0", "--out", str(tmp_path / "still")]
    )
    assert result.exit_code == 0, result.output
    still, tokenizer, options = load_run(tmp_path / "still")
    assert (tmp_path / "still" / "tokenizer.json").is_file() and tokenizer.vocab_size == tok.get_vocab_size()
    idx = ids_of(tok, TEXT[:60])[:, :16]
    with torch.no_grad():
        torch.testing.assert_close(still(idx), reference(idx).logits, rtol=0, atol=1e-4)

    result = runner.invoke(app, [*base, "--max-steps", "2", "--lr", "1e-2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    tuned, _, _ = load_run(tmp_path / "run")
    with torch.no_grad():
        assert (tuned(idx) - reference(idx).logits).abs().max() > 1e-3  # training moved it
    shutil.copytree(tmp_path / "run", tmp_path / "old")
    with_three_dropouts(tmp_path / "old")  # as written before one dropout field: the same run
    for run in ("run", "old"):
        result = runner.invoke(
            app, ["gpt", "train", "--resume", str(tmp_path / run), "--max-steps", "4", "-q"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / run / "state.json").read_text())["step"] == 4
    new, old = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("run", "old"))
    assert new.keys() == old.keys() and all(torch.equal(new[k], old[k]) for k in new)
    result = runner.invoke(
        app,
        [
            "gpt",
            "generate",
            str(tmp_path / "run"),
            "--prompt",
            "Once upon",
            "--greedy",
            "--max-new-tokens",
            "5",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0 and "Once upon" in result.stdout, result.output


def fill_hub_cache(hub, folder, name="gpt2", commit="0123abcd"):
    """A huggingface_hub cache holding ``folder``'s files as openai-community/<name>."""
    repo = hub / f"models--openai-community--{name}"
    (repo / "snapshots" / commit).mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(folder / f, repo / "snapshots" / commit / f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_a_model_id_is_found_in_the_hub_cache_offline(tiny, tmp_path, monkeypatch):
    folder, reference, tok = tiny
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = fill_hub_cache(tmp_path / "hf" / "hub", folder)
    assert resolve("gpt2") == snapshot
    result = runner.invoke(
        app,
        [
            "gpt",
            "generate",
            "--init-from",
            "gpt2",
            "--prompt",
            "Once upon a time",
            "--greedy",
            "--max-new-tokens",
            "6",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    prompt = ids_of(tok, "Once upon a time")
    expected = reference.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert tok.decode(expected[0].tolist()) in result.stdout.replace("\n", "")
    # --tokenizer gpt2 takes the tokenizer.json of the same cached hub folder
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "gpt",
            "train",
            "--tokenizer",
            "gpt2",
            "--txt-file",
            str(corpus),
            "--model-type",
            "gpt-nano",
            "--block-size",
            "8",
            "--batch-size",
            "2",
            "--max-steps",
            "1",
            "--eval-steps",
            "1",
            "--sample-interval",
            "0",
            "--device",
            "cpu",
            "-q",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "tokenizer.json").read_text() == (snapshot / "tokenizer.json").read_text()


def test_offline_with_nothing_cached_is_one_line_saying_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Hw2Error, match="no copy of openai-community/gpt2-medium in .*empty"):
        resolve("gpt2-medium")
    train = ["gpt", "train", "--txt-file", __file__, "--out", str(tmp_path / "o")]
    for argv in (
        ["gpt", "generate", "--init-from", "gpt2", "--prompt", "x"],
        [*train, "--init-from", "gpt2"],
        [*train, "--tokenizer", "gpt2"],
    ):
        result = runner.invoke(app, argv)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, (argv, result.output)
        assert str(tmp_path / "empty") in lines[0] and "--init-from FOLDER" in lines[0]


def test_bad_sources_are_refused(tiny, tmp_path):
    folder, _, _ = tiny
    with pytest.raises(Hw2Error, match="neither gpt2"):
        resolve(str(tmp_path / "nowhere"))
    with pytest.raises(Hw2Error, match="config.json is missing"):
        resolve(str(tmp_path))
    with pytest.raises(Hw2Error, match="longer than the 32 positions"):
        load_pretrained(str(folder), block_size=64)
    result = runner.invoke(
        app, ["gpt", "generate", str(tmp_path), "--init-from", str(folder), "--prompt", "x"]
    )
    assert result.exit_code == 2 and "one of the two" in result.stderr
