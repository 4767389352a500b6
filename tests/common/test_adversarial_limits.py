"""Adversarial kinds of issue 27 (items 4-11): resource limits, output plumbing, locales,
paths and places, stray output, SIGTERM, inputs before outputs, and `gpt generate`'s default.

Every kind asserts a correct result, or one line ``error: ...`` with exit 2 (143 for SIGTERM),
no traceback, and nothing written beyond what the user named. Resource limits are set in the
child only (``preexec_fn``), so that a limit can never take pytest down.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TEXT
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
K5 = "".join(f"{i} {j}\n" for i in range(1, 6) for j in range(i + 1, 6))
WALKS = ["graph", "powers", "k5.txt", "--walks", "1", "2", "--length", "10", "--max-walks", "1000000"]
TINY = [
    "--model-type", "gpt-nano", "--block-size", "8", "--batch-size", "2", "--eval-steps", "1",
    "--device", "cpu", "--quiet",
]  # fmt: skip
GiB = 1 << 30


def limits(**caps: int):
    """A preexec_fn that sets resource limits (``as_=``, ``nofile=``, ``fsize=``) in the child."""
    names = {"as_": resource.RLIMIT_AS, "nofile": resource.RLIMIT_NOFILE, "fsize": resource.RLIMIT_FSIZE}

    def apply() -> None:
        for name, value in caps.items():
            resource.setrlimit(names[name], (value, value))

    return apply


def hw2(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300, **kwargs):
    """``python -m hw2cli ARGS`` in ``cwd``; ``env`` entries set to None are removed."""
    full = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run(
        [sys.executable, "-m", "hw2cli", *args], cwd=cwd, env=full, timeout=timeout, text=True, errors="replace",
        **kwargs,
    )  # fmt: skip


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "unexpected" not in lines[0], stderr
    return lines[0]


#: A 2-step GPT run on t.txt into run/, in the test's folder.
TWO_STEPS = [
    "gpt",
    "train",
    "--txt-file",
    "t.txt",
    *TINY,
    "--max-steps",
    "2",
    "--eval-interval",
    "2",
    "--out",
    "run",
]


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None: a folder or a special file)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def k5(tmp_path) -> Path:
    (tmp_path / "k5.txt").write_text(K5)
    return tmp_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder with a text and a finished 2-step GPT run at runs/gpt (gpt train's default)."""
    root = tmp_path_factory.mktemp("limits")
    (root / "t.txt").write_text(TEXT)
    args = [
        "gpt",
        "train",
        "--txt-file",
        str(root / "t.txt"),
        *TINY,
        "--max-steps",
        "2",
        "--eval-interval",
        "2",
    ]
    done = runner.invoke(app, [*args, "--out", str(root / "runs" / "gpt")])
    assert done.exit_code == 0, done.output
    return root


# ----------------------------------------------------------------------------- resource limits

TORCH_COMMANDS = {
    "gpt train": ["gpt", "train", "--txt-file", "t.txt", "--max-steps", "1"],
    "probe": ["probe", "receptive-field", "--quick"],
    "rotate-eval": ["rotate-eval", "--dataset", "digits", "--epochs", "1", "--angles", "0"],
    "padding-bench": ["padding-bench", "--rounds", "1", "--epochs", "1"],
}


@pytest.mark.kind("resource limits")
@pytest.mark.parametrize("command", TORCH_COMMANDS)
def test_an_address_space_too_small_for_torch_is_one_line(tmp_path, command):
    """Issue 27 item 4: under `ulimit -v 1000000` importing torch gave `unexpected ImportError`
    (and near 3 GiB its start-up aborts with std::bad_alloc): named before torch loads."""
    (tmp_path / "t.txt").write_text(TEXT)
    done = hw2(*TORCH_COMMANDS[command], cwd=tmp_path, preexec_fn=limits(as_=1_000_000 << 10))
    assert done.returncode == 2
    assert "ulimit -v" in one_error_line(done.stderr) and "raise it" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["t.txt"]


@pytest.mark.kind("resource limits")
@pytest.mark.parametrize("kib", [1_000_000, 3_000_000])
def test_torch_free_commands_work_under_a_small_address_space(k5, kib):
    done = hw2("graph", "powers", "k5.txt", "--json", "out.json", cwd=k5, preexec_fn=limits(as_=kib << 10))
    assert done.returncode == 0, done.stderr
    assert json.loads((k5 / "out.json").read_text())["powers"]["2"][0][0] == 4


@pytest.mark.kind("resource limits")
@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        ImportError("libtorch_cpu.so: failed to map segment from shared object"),
    ],
    ids=["MemoryError", "cpu-allocator", "cuda-oom", "import-map-segment"],
)
def test_allocation_and_library_load_failures_are_one_line(k5, monkeypatch, exc):
    """An allocation that fails in the work (or a library that cannot be mapped): one line with
    the fix, exit 2, instead of `unexpected RuntimeError`."""
    from hw2cli.graph import walks

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(walks, "run_powers", fail)
    done = runner.invoke(app, ["graph", "powers", str(k5 / "k5.txt"), "--json", str(k5 / "out.json")])
    assert done.exit_code == 2
    line = one_error_line(done.stderr)
    assert ("out of memory" in line and "smaller" in line) or "raise it" in line, line
    assert not (k5 / "out.json").exists()


@pytest.mark.kind("resource limits")
@pytest.mark.parametrize(
    "sizes",
    [
        ("gpt-nano", "65536", "1024"),  # the issue's: `unexpected RuntimeError ... can't allocate memory`
        ("gpt-micro", "65536", "256"),
        ("gpt-mini", "16384", "512"),
    ],
    ids=lambda s: "-".join(s),
)
def test_a_batch_too_large_for_the_memory_is_refused_before_it_is_allocated(tmp_path, sizes):
    model, batch, block = sizes
    text = tmp_path / "long.txt"
    text.write_text(TEXT * 40)  # windows of 1,024 characters fit in it
    args = ["gpt", "train", "--txt-file", str(text), "--model-type", model, "--batch-size", batch]
    args += ["--block-size", block, "--max-steps", "1", "--device", "cpu", "--out", str(tmp_path / "run")]
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    line = one_error_line(done.stderr)
    assert re.search(rf"--batch-size {batch} with --block-size {block} needs at least [\d.]+ [GTP]iB", line)
    assert "lower --batch-size or --block-size" in line
    assert not (tmp_path / "run" / "state.json").exists()


@pytest.mark.kind("resource limits")
@pytest.mark.thorough
def test_the_memory_estimate_is_from_below():
    """The refusal never stops a run that fits: a measured step's peak (RSS) is at least the
    estimate of GPT.step_bytes (run in a child, so the measure is its own)."""
    code = (
        "import resource, torch\n"
        "from hw2cli.gpt.model import GPT, GPTConfig, PRESETS\n"
        "torch.manual_seed(0); torch.set_num_threads(1)\n"
        "m = GPT(GPTConfig(**PRESETS['gpt-nano'], vocab_size=65, block_size=256))\n"
        "opt = torch.optim.AdamW(m.parameters())\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "x = torch.randint(0, 65, (32, 256))\n"
        "m(x, targets=x).backward(); opt.step()\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before\n"
        "print(grown, m.step_bytes(32, 256))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    grown, estimate = map(int, done.stdout.split())
    assert grown >= estimate > 0, (grown, estimate)


@pytest.mark.kind("resource limits")
def test_a_txt_file_beyond_the_input_bound_is_refused_unread(tmp_path):
    """Issue 27 item 4: a 300 MB --txt-file was read whole (20 GB resident); now refused by its
    size, like every other input (a sparse file: nothing of it is ever read)."""
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:
        fh.truncate(300 << 20)
    done = runner.invoke(app, ["gpt", "train", "--txt-file", str(big), "--out", str(tmp_path / "run")])
    assert done.exit_code == 2
    assert one_error_line(done.stderr) == (
        f"error: --txt-file {big} is larger than 256 MiB, the most hw2 reads; give a smaller file"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.kind("resource limits")
def test_too_few_file_descriptors_for_the_worker_pool_is_one_line(tmp_path):
    """Issue 27 item 5: `padding-bench --workers 2` under `ulimit -n 12` gave `unexpected OSError`."""
    done = hw2(
        "padding-bench", "--workers", "2", "--rounds", "1", "--epochs", "1", "--quiet",
        cwd=tmp_path, preexec_fn=limits(nofile=12),
    )  # fmt: skip
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "error: too many open files (the limit is 12); raise it (ulimit -n 1024) or start fewer worker "
        "processes (--workers)"
    )


@pytest.mark.kind("resource limits")
def test_a_file_size_limit_before_the_first_checkpoint_gives_no_resume_hint(tmp_path, monkeypatch):
    """Issue 27 item 5: under `ulimit -f 100` the error said "continue with --resume run", which
    then failed (`run/config.json is missing`). Now it says to run the same command again, and
    that works once the limit is lifted."""
    (tmp_path / "t.txt").write_text(TEXT)
    done = hw2(*TWO_STEPS, cwd=tmp_path, preexec_fn=limits(fsize=100 << 10))
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "nothing was saved" in line and "run the same command again" in line and "--resume" not in line
    monkeypatch.chdir(tmp_path)
    again = runner.invoke(app, TWO_STEPS)
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 2


@pytest.mark.kind("resource limits")
@pytest.mark.parametrize("where", ["--json", "stdout"])
def test_a_file_size_limit_on_an_output_is_one_line(k5, where):
    """A --json file or a redirected listing that grows past `ulimit -f`: one line naming it."""
    walks = [*WALKS[:6], "--length", "6"]  # the walks of length 6: 37 kB listed, 77 kB of JSON
    if where == "--json":
        done = hw2(
            *walks,
            "--json",
            "out.json",
            cwd=k5,
            preexec_fn=limits(fsize=16 << 10),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert "--json out.json (File too large)" in one_error_line(done.stderr)
        assert not (k5 / "out.json").exists()
    else:
        with open(k5 / "listing.txt", "w") as out:
            done = hw2(*walks, cwd=k5, preexec_fn=limits(fsize=4 << 10), stdout=out, stderr=subprocess.PIPE)
        assert "cannot write to standard output (File too large)" in one_error_line(done.stderr)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- output plumbing

QUICK = {
    "powers": ["graph", "powers", "k5.txt"],
    "laplacian": ["graph", "laplacian", "k5.txt"],
    "walks": [*WALKS[:6], "--length", "6"],  # 37 kB listed: the stream fails mid-table, not at exit
    "help": ["graph", "powers", "--help"],
    "version": ["--version"],
}


@pytest.mark.kind("output plumbing")
@pytest.mark.parametrize("command", QUICK)
def test_a_full_standard_output_is_one_line(k5, command):
    """Issue 27 item 6: `> /dev/full` gave `unexpected OSError`; now one line, exit 2."""
    with open("/dev/full", "w") as full:
        done = hw2(*QUICK[command], cwd=k5, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == 2
    assert one_error_line(done.stderr).startswith("error: cannot write to standard output")
    assert "Exception ignored" not in done.stderr


@pytest.mark.kind("output plumbing")
def test_json_dash_into_a_full_standard_output_is_one_line(k5):
    with open("/dev/full", "w") as full:
        done = hw2("graph", "powers", "k5.txt", "--json", "-", cwd=k5, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: could not write --json - (No space left on device)"
    assert done.stderr.count("error:") == 1


@pytest.mark.kind("output plumbing")
@pytest.mark.parametrize(
    "args",
    [
        ["graph", "powers", "k5.txt", "--json", "-"],
        ["graph", "powers", "k5.txt", "--json", "/dev/stdout"],
        ["graph", "laplacian", "k5.txt", "--json", "-"],
        ["graph", "check", "k5.txt", "--matrix", "m.txt", "--kind", "adjacency", "--json", "-"],
    ],
    ids=["powers-dash", "powers-dev-stdout", "laplacian-dash", "check-dash"],
)
def test_json_to_a_closed_standard_output_fails_clearly(k5, args):
    """Issue 27 item 6: `--json -` with stdout closed (`>&-`) exited 0 and sent the JSON to
    stderr among the tables; now refused before any work, and nothing goes to stderr but that."""
    (k5 / "m.txt").write_text("0 1\n1 0\n")
    done = hw2(*args, cwd=k5, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    assert one_error_line(done.stderr).endswith(
        "standard output is closed; give a file path, or run hw2 with standard output open"
    )


@pytest.mark.kind("must work")
def test_a_closed_standard_output_without_json_dash_still_writes_the_files(k5):
    done = hw2("graph", "powers", "k5.txt", "--json", "out.json", cwd=k5, stderr=subprocess.PIPE,
               preexec_fn=lambda: os.close(1))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((k5 / "out.json").read_text())["n_nodes"] == 5


@pytest.mark.kind("output plumbing")
@pytest.mark.parametrize(
    "args",
    [
        ["graph", "powers", "missing.txt"],
        ["graph", "powers", "k5.txt", "--max-power", "99"],
        ["graph", "powers", "k5.txt", "--no-such-option"],
        ["graph", "check", "k5.txt", "--matrix", "k5.txt", "--kind", "adjacency"],
        ["gpt", "train", "--txt-file", "missing.txt"],
    ],
    ids=["missing-input", "out-of-range", "unknown-option", "bad-matrix", "gpt-missing-text"],
)
def test_bad_input_with_a_full_standard_error_still_exits_2(k5, args):
    """Issue 27 item 6: with stderr full, bad input exited 1 (the error line itself failed)."""
    with open("/dev/full", "w") as full:
        done = hw2(*args, cwd=k5, stdout=subprocess.PIPE, stderr=full)
    assert done.returncode == 2
    assert sorted(os.listdir(k5)) == ["k5.txt"]


# ----------------------------------------------------------------------------- locales

ASCII = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": None}


@pytest.mark.kind("locales")
@pytest.mark.parametrize(
    "args, expected",
    [
        (["graph", "powers", "k5.txt"], "A^2"),
        (["graph", "laplacian", "k5.txt", "--normalized"], "Laplacian"),
        (["graph", "powers", "k5.txt", "--walks", "1", "2", "--length", "2"], "1 -> "),
        (["graph", "check", "k5.txt", "--matrix", "a.txt", "--kind", "adjacency"], "are right ok"),
        (["graph", "powers", "--help"], "Usage"),
    ],
    ids=["powers", "laplacian", "walks", "check", "help"],
)
def test_an_ascii_only_locale_gets_plain_characters(k5, args, expected):
    """Issue 27 item 6: `LC_ALL=C` without UTF-8 coercion crashed on '²' (`unexpected
    UnicodeEncodeError`); now plain characters: A^2, ->, ok; Rich draws ASCII lines."""
    (k5 / "a.txt").write_text("\n".join(" ".join("0" if i == j else "1" for j in range(5)) for i in range(5)))
    done = hw2(*args, cwd=k5, env=ASCII)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.isascii() and expected in done.stdout, done.stdout


@pytest.mark.kind("locales")
@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252"])
def test_a_narrow_pythonioencoding_gets_plain_characters(k5, encoding):
    done = hw2("graph", "powers", "k5.txt", "--walks", "1", "2", "--length", "2", cwd=k5,
               env={"PYTHONIOENCODING": encoding})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "->" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.kind("locales")
def test_the_plain_spelling_of_hw2s_characters():
    from hw2cli.common.console import ERRORS, use_plain_fallback

    use_plain_fallback()  # registers the handler; streams of this process are UTF-8: unchanged
    assert "A² → i ✓ ≈ 1e−3 … é".encode("ascii", ERRORS) == b"A^2 -> i ok ~ 1e-3 ... e"
    assert "λ".encode("ascii", ERRORS) == b"?"


# ----------------------------------------------------------------------------- paths and places

LOOPED = {
    "json-in-loop": ["graph", "powers", "k5.txt", "--json", "loop/x.json"],
    "json-is-loop": ["graph", "powers", "k5.txt", "--json", "loop"],
    "npz-in-loop": ["graph", "powers", "k5.txt", "--npz", "loop/x.npz"],
    "gpt-out": ["gpt", "train", "--txt-file", "k5.txt", "--out", "loop/run"],
    "save-models": ["rotate-eval", "--dataset", "digits", "--save-models", "loop/m"],
    "reproduce-out": ["reproduce", "--out", "loop/r"],
    "report-out": ["report", "parts", "--out", "loop/r.md"],
}


@pytest.mark.kind("paths and places")
@pytest.mark.parametrize("name", LOOPED)
def test_an_output_through_a_symlink_loop_is_one_line(k5, monkeypatch, name):
    """Issue 27 item 7: a loop of links in an output path gave `unexpected RuntimeError`."""
    os.symlink("loop2", k5 / "loop")
    os.symlink("loop", k5 / "loop2")
    (k5 / "parts").mkdir()
    before = listing(k5)
    monkeypatch.chdir(k5)
    done = runner.invoke(app, LOOPED[name])
    assert done.exit_code == 2, done.output
    line = one_error_line(done.stderr)
    assert "loop" in line and ("symbolic links" in line or "Too many levels" in line), line
    assert listing(k5) == before


DELETED = {
    "relative": ["graph", "powers", "k5.txt"],
    "absolute": ["graph", "powers", "{abs}"],
    "torch-probe": ["probe", "receptive-field", "--quick"],
    "gpt-generate": ["gpt", "generate", "--prompt", "a"],
    "help": ["--help"],
}


@pytest.mark.kind("paths and places")
@pytest.mark.parametrize("name", DELETED)
def test_a_deleted_working_folder_is_one_line(k5, tmp_path, name):
    """Issue 27 item 7: `unexpected FileNotFoundError`, or oneMKL's fatal error while torch loads."""
    gone = tmp_path / "gone"
    gone.mkdir()
    args = [a.replace("{abs}", str(k5 / "k5.txt")) for a in DELETED[name]]

    def leave_a_deleted_folder() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    done = hw2(*args, cwd=tmp_path, preexec_fn=leave_a_deleted_folder)
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "error: the working folder no longer exists (No such file or directory); cd to a folder that "
        "exists and rerun"
    )
    assert "oneMKL" not in done.stdout + done.stderr


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return path


SPECIAL = {
    "fifo": (_fifo, "a pipe (FIFO)"),
    "dev-zero": (lambda p: Path("/dev/zero"), "a character device"),
    "dev-null": (lambda p: Path("/dev/null"), "a character device"),
    "socket": (_socket, "a socket"),
}


@pytest.mark.kind("paths and places")
@pytest.mark.parametrize("name", SPECIAL)
@pytest.mark.parametrize("command", ["gpt train", "probe"])
def test_a_txt_file_that_is_not_a_file_is_named_and_refused(tmp_path, monkeypatch, name, command):
    """Issue 27 item 7: a pipe or device as --txt-file was reported as "does not exist". It is
    refused naming what it is (the text is read again on --resume), without opening it: a
    FIFO without a writer cannot block."""
    make, kind = SPECIAL[name]
    path = make(tmp_path / "text")
    monkeypatch.chdir(tmp_path)
    args = (
        ["gpt", "train", "--txt-file", str(path), "--out", "run"]
        if command == "gpt train"
        else ["probe", "positions", "--quick", "--txt-file", str(path)]
    )
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    assert one_error_line(done.stderr) == (
        f"error: --txt-file {path} is {kind}, not a file hw2 can read again; save the text to a file and give that"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.kind("must work")
def test_an_edge_list_from_a_pipe_is_read(k5):
    """Where reading a pipe is the point, it is read, with the input bound."""
    done = hw2("graph", "powers", "/dev/stdin", "--json", "-", cwd=k5, input=K5)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_edges"] == 10


# ----------------------------------------------------------------------------- stray output


@pytest.mark.kind("stray output")
@pytest.mark.parametrize("home", ["a-file", pytest.param("missing", marks=pytest.mark.thorough)])
def test_an_unwritable_home_prints_nothing_from_matplotlib(tmp_path, home):
    """Issue 27 item 8: with HOME unusable, matplotlib printed two lines about its cache. (The
    tests run as any user, root included: HOME is a file, or a folder that does not exist
    under a file, which no user can create.)"""
    (tmp_path / "t.txt").write_text(TEXT)
    (tmp_path / "home").write_text("not a folder")
    env = {
        "HOME": str(tmp_path / "home" / ("" if home == "a-file" else "sub")).rstrip("/"),
        "MPLCONFIGDIR": None,
        "XDG_CONFIG_HOME": None,
        "XDG_CACHE_HOME": None,
    }
    done = hw2(*TWO_STEPS, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


# ----------------------------------------------------------------------------- signals


def _caught(pid: int, sig: int) -> bool | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return bool(int(re.search(r"SigCgt:\s*([0-9a-f]+)", status).group(1), 16) & (1 << (sig - 1)))


def _wait(child: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.kind("signals")
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
@pytest.mark.parametrize("ctrl_c", ["default", "ignored"])
def test_sigterm_during_the_work_is_like_ctrl_c_and_exit_143(k5, ctrl_c):
    """Item 9: from the moment the work starts, SIGTERM stops a command as Ctrl-C does (exit
    143, at most one line, nothing half-written), also where Ctrl-C is ignored (`hw2 ... &`)."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ctrl_c == "ignored" else None
    child = subprocess.Popen(
        [sys.executable, "-m", "hw2cli", *WALKS, "--json", "out.json"],
        cwd=k5, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, preexec_fn=ignore,
    )  # fmt: skip
    _wait(child, lambda: _caught(child.pid, signal.SIGTERM) is not False)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode in (143, 0), (child.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert sorted(p.name for p in k5.iterdir() if p.name != "out.json") == ["k5.txt"]
    if (k5 / "out.json").exists():
        assert json.loads((k5 / "out.json").read_text())["command"] == "graph powers"


# `hw2 graph powers` whose work is stuck in code run by exec(), as dataclasses and namedtuple
# build their methods (a lazy import during the work does that).
STUCK_IN_EXEC = """
import sys
import hw2cli.graph.walks

def stuck(opts, reporter=None):
    open("started", "w").close()
    exec("while True: pass")

hw2cli.graph.walks.run_powers = stuck
sys.argv = ["hw2", *sys.argv[1:]]
from hw2cli.main import main
main()
"""


@pytest.mark.kind("signals")
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_inside_code_run_by_exec_keeps_its_exit_status(k5, sig, status):
    """A KeyboardInterrupt raised inside exec'd code marks CPython's interpreter even once hw2
    handled it, and `python -m hw2cli` then died by SIGINT (-2) instead of exiting 143 (the
    flaky SIGTERM test above, under load). The stop's own status must come out, every time."""
    (k5 / "stuck.py").write_text(STUCK_IN_EXEC)
    child = subprocess.Popen(
        [sys.executable, "-m", "stuck", *WALKS, "--json", "out.json"], cwd=k5,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait(child, lambda: (k5 / "started").exists())
    child.send_signal(sig)
    _, err = child.communicate(timeout=120)
    assert child.returncode == status, (child.returncode, err)
    assert err.strip() == "interrupted before a result was ready; nothing was written"
    assert not (k5 / "out.json").exists()


@pytest.mark.kind("signals")
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_sigterm_in_gpt_train_saves_a_checkpoint_that_resumes(tmp_path):
    """Item 9: `gpt train` died at once on SIGTERM (the work since the last checkpoint lost).
    Now it ends the step, saves, says how to continue, exits 143; the printed resume works."""
    (tmp_path / "t.txt").write_text(TEXT)
    args = ["gpt", "train", "--txt-file", "t.txt", *TINY, "--max-steps", "100000", "--eval-interval", "5"]
    child = subprocess.Popen(
        [sys.executable, "-m", "hw2cli", *args, "--out", "run"], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a batch script's job
    )  # fmt: skip
    _wait(child, lambda: (tmp_path / "run" / "state.json").exists())
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    hint = re.search(
        r"interrupted at step (\d+): continue to step 100000 with `hw2 gpt train --resume run`",
        " ".join(out.split()),
    )
    assert hint, out
    step = json.loads((tmp_path / "run" / "state.json").read_text())["step"]
    assert step == int(hint.group(1)) >= 5
    more = hw2("gpt", "train", "--resume", "run", "--max-steps", str(step + 2), cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == step + 2


def test_sigterm_is_handed_to_the_ctrl_c_handler_of_the_moment():
    """In process: SIGTERM calls whatever handles SIGINT (here a recorder), and the exit status
    of a stopped command becomes 143; an ignored SIGTERM stays ignored."""
    from hw2cli.common import signals

    seen = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signals.sigterm_as_ctrl_c()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert seen == [signal.SIGINT] and signals.interrupted_exit() == 143
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signals.sigterm_as_ctrl_c()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, old_term)
        signals._received.clear()


# ----------------------------------------------------------------------------- inputs before outputs


@pytest.mark.kind("inputs before outputs")
def test_a_missing_text_is_reported_before_an_earlier_run(trained, monkeypatch):
    """Issue 27 item 10: `gpt train --txt-file missing.txt` beside an earlier run at runs/gpt
    said "--out run directory runs/gpt already holds an earlier run"; the missing text first."""
    monkeypatch.chdir(trained)
    before = listing(trained)
    done = runner.invoke(app, ["gpt", "train", "--txt-file", "missing.txt"])
    assert done.exit_code == 2
    assert one_error_line(done.stderr) == "error: --txt-file missing.txt does not exist; check the path"
    assert listing(trained) == before


MISSING_FIRST = {
    "powers": (["graph", "powers", "missing.txt", "--json", "/proc/x/out.json"], "edge list missing.txt"),
    "laplacian-features": (
        ["graph", "laplacian", "k5.txt", "--features", "missing.csv", "--json", "/proc/x/out.json"],
        "feature table missing.csv",
    ),
    "check-matrix": (
        [
            "graph",
            "check",
            "k5.txt",
            "--matrix",
            "missing.txt",
            "--kind",
            "adjacency",
            "--json",
            "/proc/x/o.json",
        ],
        "matrix missing.txt",
    ),
    "gpt-json": (
        ["gpt", "train", "--txt-file", "missing.txt", "--json", "/proc/x/out.json"],
        "--txt-file missing.txt",
    ),
    "load-models": (
        ["rotate-eval", "--dataset", "digits", "--load-models", "missing", "--json", "/proc/x/out.json"],
        "--load-models missing",
    ),
    "gpt-fifo-before-run": (["gpt", "train", "--txt-file", "fifo"], "--txt-file fifo is a pipe (FIFO)"),
    "generate-run-dir": (
        ["gpt", "generate", "missing", "--prompt", "a", "--json", "/proc/x/out.json"],
        "run directory missing does not exist",
    ),
    "report-run-dir": (["report", "missing", "--out", "/proc/x/r.md"], "missing is not a folder"),
    "report-default-out": (["report", "missing"], "missing is not a folder"),  # created it, empty
    "imagefolder": (
        ["rotate-eval", "--dataset", "imagefolder:missing", "--json", "/proc/x/out.json"],
        "data set folder missing does not exist",
    ),
}


@pytest.mark.kind("inputs before outputs")
@pytest.mark.parametrize("name", MISSING_FIRST)
def test_the_input_is_named_before_an_unwritable_output(k5, monkeypatch, name):
    """Every command checks its inputs before its outputs: a missing input and an output that
    cannot be written name the input."""
    args, named = MISSING_FIRST[name]
    os.mkfifo(k5 / "fifo")
    (k5 / "runs" / "gpt").mkdir(parents=True)
    (k5 / "runs" / "gpt" / "state.json").write_text("{}")  # an earlier run, as far as --out can tell
    monkeypatch.chdir(k5)
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    assert one_error_line(done.stderr).startswith(f"error: {named}"), done.stderr
    assert not (k5 / "missing").exists()


# ----------------------------------------------------------------------------- gpt generate's default


@pytest.mark.kind("must work")
def test_generate_without_a_run_directory_reads_runs_gpt(trained, monkeypatch):
    """Issue 27 item 11: `gpt generate` without a run directory, after a plain `gpt train`,
    said "give a run directory or --init-from MODEL"; now it reads runs/gpt and says so."""
    monkeypatch.chdir(trained)
    done = runner.invoke(app, ["gpt", "generate", "--prompt", "The", "--max-new-tokens", "5", "--greedy"])
    assert done.exit_code == 0, done.output
    assert done.stderr == "note: no run directory given; using runs/gpt, the finished run there\n"
    given = runner.invoke(
        app, ["gpt", "generate", "runs/gpt", "--prompt", "The", "--max-new-tokens", "5", "--greedy"]
    )

    def samples(output: str) -> list[str]:
        return [line for line in output.splitlines() if not line.startswith("threads:")]

    assert samples(given.stdout) == samples(done.stdout) and "The" in done.stdout


@pytest.mark.kind("usage errors")
@pytest.mark.parametrize("state", ["none", "unfinished", "damaged", "fifo"])
def test_generate_without_a_finished_default_run_asks_for_one(tmp_path, monkeypatch, state):
    run = tmp_path / "runs" / "gpt"
    run.mkdir(parents=True)
    if state == "unfinished":
        (run / "state.json").write_text(json.dumps({"step": 1, "finished": False}))
    elif state == "damaged":
        (run / "state.json").write_text('{"finished": tru')
    elif state == "fifo":
        os.mkfifo(run / "state.json")  # not read: a pipe would block
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["gpt", "generate", "--prompt", "The"])
    assert done.exit_code == 2
    assert one_error_line(done.stderr) == "error: give a run directory or --init-from MODEL, one of the two"


def test_a_sigterm_an_earlier_command_took_does_not_change_the_next_ones_ctrl_c_status():
    """In one process (a notebook, CliRunner) each command starts with no SIGTERM recorded:
    its Ctrl-C exits 130, not 143."""
    from hw2cli.commands._shared import catch_interrupts
    from hw2cli.common import signals

    signals.note_terminated()
    assert signals.interrupted_exit() == signals.TERMINATED_EXIT
    before = signal.getsignal(signal.SIGTERM)
    try:
        catch_interrupts()
        assert signals.interrupted_exit() == signals.INTERRUPTED_EXIT
    finally:
        signal.signal(signal.SIGTERM, before)
