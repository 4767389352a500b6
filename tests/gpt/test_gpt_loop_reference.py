"""The training loop computes what the loop before the split of gpt/train.py (issue 23)
computed: the same losses, learning rates and bits per character at every logged step, and the
same final weights, for a few tiny runs that cover the schedule, dropout, clipping, positions
and a run without a validation split.

``gpt_loop_reference.json`` was recorded with the old trainer (commit 7ddeb60) by
``python tests/gpt/test_gpt_loop_reference.py --record`` (one thread, on the CPU; the new loop
matched it to the last digit there). The tolerance, 1e-4 relative, leaves room for another
CPU's rounding; a change of what is computed (the learning rate of one step, a seed, the
dropout) moves these numbers by far more.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "gpt_loop_reference.json"

#: name -> options changed from tests/helpers.tiny (gpt-nano, 12 steps, checkpoints at 6 and 12)
CASES = {
    "constant-dropout": {},
    "cosine-warmup-noclip": dict(
        lr_schedule="cosine", warmup_steps=3, min_lr=1e-5, lr=3e-3, dropout=0.0, clip_grad_norm=0.0
    ),
    "learned-positions-no-val": dict(pos_emb="learned", val_fraction=0.0, weight_decay=0.0, seed=7),
}


def run_case(name: str, tmp: Path) -> dict:
    """Train case ``name`` into ``tmp`` and return its numbers."""
    import torch
    from helpers import tiny, weights, write_corpus

    from hw2cli.gpt.train import train

    corpus = write_corpus(tmp)
    result = train(tiny(corpus, tmp / "run", **CASES[name]))
    keys = ("step", "train_loss", "val_loss", "val_bpc", "lr")
    return {
        "rows": [{k: row.get(k) for k in keys} for row in result.metrics],
        "weight_abs_sums": {
            k: float(v.double().abs().sum()) for k, v in sorted(weights(tmp / "run").items())
        },
        "torch": torch.__version__,
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_losses_and_weights_equal_the_recorded_old_loop(name, tmp_path):
    expected = json.loads(REFERENCE.read_text())[name]
    got = run_case(name, tmp_path)
    assert [r["step"] for r in got["rows"]] == [r["step"] for r in expected["rows"]]
    for a, b in zip(got["rows"], expected["rows"], strict=True):
        for key in ("train_loss", "val_loss", "val_bpc", "lr"):
            assert (a[key] is None) == (b[key] is None), (a, b)
            if b[key] is not None:
                assert a[key] == pytest.approx(b[key], rel=1e-4), (key, a, b)
    assert got["weight_abs_sums"].keys() == expected["weight_abs_sums"].keys()
    for key, value in expected["weight_abs_sums"].items():
        assert got["weight_abs_sums"][key] == pytest.approx(value, rel=1e-4), key


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import os
    import tempfile

    os.environ["OMP_NUM_THREADS"] = "1"
    sys.path.insert(0, str(HERE.parent))  # tests/, for the shared helpers
    recorded = {}
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            recorded[case] = run_case(case, Path(folder))
    REFERENCE.write_text(json.dumps(recorded, indent=1) + "\n")
