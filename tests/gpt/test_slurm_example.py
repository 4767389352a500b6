"""hw2cli/examples/slurm-gpt.sbatch under stand-ins for SLURM and torchrun: the launch it builds (one
torchrun per node, one process per GPU, c10d rendezvous on the first node, the global batch
split over the processes) and `hw2 gpt train` accepting every option it passes."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hw2cli" / "examples" / "slurm-gpt.sbatch"

STUBS = {
    # the allocation's nodes, as `scontrol show hostnames "$SLURM_JOB_NODELIST"` prints them
    "scontrol": 'printf "gpu-node-07\\ngpu-node-08\\n"',
    # srun: record its arguments, then run the command after its own options (one node's share)
    "srun": 'echo "$@" >"$LOG/srun"; while [[ "$1" == --* ]]; do shift; done; exec "$@"',
    # torchrun: record its arguments, then let hw2 parse what follows `-m` (--help: no training)
    "torchrun": 'echo "$@" >"$LOG/torchrun"; while [ "$1" != -m ]; do shift; done; shift; '
    'exec "$PYTHON" -m "$@" --help >"$LOG/help" 2>&1',
}


def _sbatch(tmp_path: Path, stubs: dict[str, str] | None = None, background: bool = False, **env: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in {**STUBS, **(stubs or {})}.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    full_env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "LOG": str(tmp_path),
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "gpu-node-[07-08]",
        "SLURM_JOB_ID": "4242",
        "TXT": "/shared/grimm.txt",
        "OUT": "/shared/runs/gpt",
        **env,
    }
    if background:  # the running job, to signal
        return subprocess.Popen(
            ["bash", str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
        )
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full_env, timeout=120)


def test_one_torchrun_per_node_with_a_c10d_rendezvous_on_the_first_node(tmp_path):
    proc = _sbatch(tmp_path)
    help_text = (tmp_path / "help").read_text() if (tmp_path / "help").exists() else "(no help written)"
    assert proc.returncode == 0, proc.stdout + proc.stderr + help_text
    assert "--kill-on-bad-exit=1" in (tmp_path / "srun").read_text().split()
    args = shlex.split((tmp_path / "torchrun").read_text())
    launcher = args[: args.index("-m")]
    assert launcher == [
        "--nnodes=2",
        "--nproc-per-node=4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=gpu-node-07:29500",
        "--rdzv-id=4242",
    ]
    train = args[args.index("-m") + 1 :]
    assert train[:3] == ["hw2cli", "gpt", "train"]
    # nanoGPT's global batch of 64 sequences over 2 nodes x 4 GPUs: 8 per process
    assert train[train.index("--batch-size") + 1] == "8"
    assert train[train.index("--txt-file") + 1] == "/shared/grimm.txt"
    assert train[train.index("--out") + 1] == "/shared/runs/gpt"
    # every option is one `hw2 gpt train` knows (an unknown one fails the parse, exit 2)
    assert "Usage:" in (tmp_path / "help").read_text()


def test_a_global_batch_that_does_not_split_is_refused(tmp_path):
    proc = _sbatch(tmp_path, GLOBAL_BATCH="60")
    assert proc.returncode == 2
    assert "GLOBAL_BATCH=60 is not a multiple of 8 processes" in proc.stderr
    assert not (tmp_path / "torchrun").exists()


def test_a_long_node_list_does_not_end_the_job_with_sigpipe(tmp_path):
    # 20,000 host names (far more than a pipe buffer): a reader that stops after the first
    # line would end scontrol with SIGPIPE, and `set -o pipefail` would fail the job (exit 141)
    many = 'for i in $(seq -w 1 20000); do echo "gpu-node-$i"; done'
    proc = _sbatch(tmp_path, stubs={"scontrol": many})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    args = shlex.split((tmp_path / "torchrun").read_text())
    assert "--rdzv-endpoint=gpu-node-00001:29500" in args


def test_sigterm_before_the_time_limit_reaches_the_run_and_requeues_the_job(tmp_path):
    """SLURM sends SIGTERM to the batch script before the time limit (``--signal=B:TERM@``);
    the script hands it to srun (and so to hw2, which saves and exits 143), then requeues."""
    header = SCRIPT.read_text()
    assert re.search(r"^#SBATCH --signal=B:TERM@\d+$", header, re.M)
    assert re.search(r"^#SBATCH --requeue$", header, re.M)
    stubs = {
        "scontrol": 'if [ "$1" = requeue ]; then echo "$@" >"$LOG/requeue"; '
        'else printf "gpu-node-07\\ngpu-node-08\\n"; fi',
        "srun": 'trap \'echo TERM >"$LOG/srun-got"; exit 143\' TERM; touch "$LOG/started"; '
        "while :; do sleep 0.05; done",
    }
    job = _sbatch(tmp_path, stubs=stubs, background=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, out + err
    assert (tmp_path / "srun-got").read_text() == "TERM\n"
    assert (tmp_path / "requeue").read_text().split() == ["requeue", "4242"]
    assert "requeued to continue" in err


def test_a_requeued_job_resumes_its_run(tmp_path):
    """Started again after a requeue, the job finds the run's checkpoint and continues it."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "state.json").write_text("{}")
    proc = _sbatch(tmp_path, OUT=str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    train = shlex.split((tmp_path / "torchrun").read_text())
    train = train[train.index("-m") + 1 :]
    assert train[:5] == ["hw2cli", "gpt", "train", "--resume", str(out)]
    assert "--out" not in train and "--txt-file" not in train
    assert "Usage:" in (tmp_path / "help").read_text()  # options `gpt train --resume` accepts
