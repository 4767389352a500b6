"""Helpers the test modules share (no test module imports another), and the tiny GPT run the
training, run-directory and read-back tests share."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The one tiny training text of the suite (2.6 kB): a character-level GPT trains on it in well
#: under a second a step, and the recorded losses of tests/gpt/test_gpt_loop_reference.py are
#: this text's.
TEXT = "".join(
    f"The {w} sat by the well and spun {n} threads of gold.\n"
    for n in range(12)
    for w in ("miller", "queen", "king", "frog")
)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def hw2(
    *args: str, timeout: float = 600, limit_memory: bool = False, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """``python -m hw2cli ARGS`` in a subprocess, the way a shell user runs ``hw2`` (a crash or
    a hang must not take pytest down); ``env`` adds variables; ``limit_memory``: at most 4 GiB
    of address space, so an absurd allocation fails at once."""

    def four_gib() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hw2cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=four_gib if limit_memory else None,
        **kwargs,
    )


def png(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A grey PNG whose header says ``width`` x ``height`` (its data may be far shorter)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = (
        pixels
        if pixels is not None
        else b"".join(b"\x00" + bytes([(7 * y) % 256] * width) for y in range(height))
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def record_fsync_and_replace(monkeypatch) -> list[tuple]:
    """Record, in order, every ``os.fsync`` (the path of the synced file or folder) and
    ``os.replace`` (source, destination) while the real calls still run."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def train_argv(corpus, out, **options) -> list[str]:
    """``hw2 gpt train`` on ``corpus`` into ``out``, each of ``options`` as its flag
    (``block_size=8``: ``--block-size 8``; ``True``: the bare flag)."""
    argv = ["gpt", "train", "--txt-file", str(corpus), "--out", str(out)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def train_args(corpus, out) -> list[str]:
    """A 2-step run of gpt-nano on windows of 8 characters."""
    two_steps = dict(block_size=8, batch_size=2, max_steps=2, eval_interval=2, eval_steps=1)
    return train_argv(corpus, out, model_type="gpt-nano", **two_steps, device="cpu", quiet=True)


def write_corpus(folder: Path) -> Path:
    path = folder / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


#: The tiny run (gpt-nano for 12 steps, checkpoints at 6 and 12), as options and as flags.
TINY = dict(
    model_type="gpt-nano",
    block_size=16,
    batch_size=4,
    max_steps=12,
    eval_interval=6,
    eval_steps=2,
    log_interval=3,
    sample_interval=0,
    device="cpu",
)


def tiny(corpus, out, **kw):
    """The tiny run's options, with a closing greedy sample of 8 tokens (the default 100 took a
    third of the run; the flag has no CLI spelling); ``kw`` overrides."""
    from hw2cli.gpt.options import TrainOptions

    return TrainOptions(**{"txt_file": str(corpus), "out": str(out), **TINY, "sample_tokens": 8, **kw})


def weights(run_dir: Path) -> dict:
    """The run's weights (name -> tensor)."""
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model.safetensors"))


def with_three_dropouts(run_dir: Path) -> None:
    """Rewrite ``run_dir``'s config.json as hw2 wrote it before one dropout field: the model's
    dropout as ``embd_pdrop``, ``resid_pdrop`` and ``attn_pdrop`` (config.json is not hashed)."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    dropout = config["model"].pop("dropout")
    config["model"].update(embd_pdrop=dropout, resid_pdrop=dropout, attn_pdrop=dropout)
    path.write_text(json.dumps(config, indent=2) + "\n")
