"""Shared test helpers, and the test session's environment.

The suite never writes outside temporary folders (issue 21 item 7): before any test module
imports hw2, matplotlib, torch or the Hugging Face libraries, every cache and configuration
folder they use is pointed at one temporary folder of this session (subprocesses inherit it),
and at the end of the session a check asserts that nothing in the user's ~/.cache and
~/.config/matplotlib changed meanwhile (no file or folder with a newer ctime).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

# The models under test are tiny: a second intra-op thread only adds synchronisation, and on
# a shared 2-core machine torch's spinning OpenMP threads made training 10x slower. Set
# before torch is imported; subprocesses (the CLI, torchrun) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A suite started as a script's background job (`pytest &`, `nohup ... &`) inherits SIGINT
# ignored, and hw2 rightly leaves an ignored Ctrl-C ignored; the tests that send Ctrl-C to
# themselves or to a child need Python's usual handler (children then start with SIGINT's
# default action, as from a terminal).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SESSION_DIR = Path(tempfile.mkdtemp(prefix="hw2-tests-"))
CACHES = {
    "HW2_CACHE_DIR": "hw2-cache",  # hw2's downloads and token caches
    "XDG_CACHE_HOME": "cache",  # everything that follows the XDG convention
    "XDG_CONFIG_HOME": "config",
    "MPLCONFIGDIR": "matplotlib",  # matplotlib's font cache and configuration
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",  # torch.compile (default: /tmp/torchinductor_USER)
    "TRITON_CACHE_DIR": "triton",  # default: ~/.triton
    "TORCH_HOME": "torch",  # torch.hub and kernel caches
    "HF_HOME": "huggingface",  # transformers, huggingface_hub, tokenizers
    "SCIKIT_LEARN_DATA": "scikit-learn",  # default: ~/scikit_learn_data
}
for variable, folder in CACHES.items():
    os.environ[variable] = str(SESSION_DIR / folder)


def _reuse_font_cache() -> None:
    """Copy matplotlib's font list, if the user has one, so the session need not rebuild it
    (seconds); reading the user's cache is fine, writing it is not."""
    for source in (Path.home() / ".cache" / "matplotlib").glob("fontlist-v*.json"):
        target = SESSION_DIR / "matplotlib" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


_reuse_font_cache()

#: The user's folders the suite must not touch. Package managers' caches (pip, uv) are left
#: out: the suite never runs them, while the user may, at the same time.
WATCHED = (Path.home() / ".cache", Path.home() / ".config" / "matplotlib")
NOT_WATCHED = {"pip", "uv", "pypoetry"}


def clock_tick() -> int:
    """A file-system time later than every change made before the call, and not later than
    any change made after it: a fresh file's ctime once the (coarse) kernel clock has moved on."""
    probe = SESSION_DIR / ".clock"
    probe.touch()
    first = probe.stat().st_ctime_ns
    while True:
        probe.touch()  # an existing file: its times (and so its ctime) set to now
        if (now := probe.stat().st_ctime_ns) != first:
            return now


def changed_since(since_ns: int, roots: tuple[Path, ...] = WATCHED) -> list[str]:
    """Every file or folder under ``roots`` whose inode changed at or after ``since_ns``: one
    written, touched or renamed, or a folder whose entries were added or removed (links not
    followed). One walk at the end of a session instead of a listing at each end to compare."""
    found = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            if Path(folder) == WATCHED[0]:
                dirs[:] = [d for d in dirs if d not in NOT_WATCHED]
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                try:
                    if os.lstat(name).st_ctime_ns >= since_ns:
                        found.append(name)
                except OSError:
                    continue
    return sorted(found)


STARTED = clock_tick()


@pytest.fixture(scope="session", autouse=True)
def users_folders_untouched():
    """After the last test: nothing in ~/.cache and ~/.config/matplotlib changed since the
    session started. (Another program of the same user writing there meanwhile would show up
    too: the message names every path.)"""
    yield
    found = changed_since(STARTED)
    assert not found, "the test session wrote into the user's folders: " + "; ".join(found[:10])


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)  # also after --collect-only, when no test ran


# ----------------------------------------------------------------------------- the adversarial suite
# A *kind* is one class of bad input or fault (an edge list with a BOM, a --json name of 304
# bytes, SIGINT at start-up): a test marked ``@pytest.mark.kind("class")``, each table row its
# own. CI runs them all but those also marked ``thorough`` (slow ones); scripts/adversarial.py
# runs every kind (--all-kinds) with many more fuzzing examples and prints the counts per class.


def pytest_addoption(parser):
    parser.addoption(
        "--all-kinds", action="store_true", help="also run the slow adversarial kinds (marked thorough)"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "kind(cls): an adversarial kind of class CLS (docs/reliability.md)")
    config.addinivalue_line("markers", "thorough: a slow kind, run by scripts/adversarial.py (--all-kinds)")
    config.addinivalue_line("markers", "issue22(item, before): the issue 22 item a kind comes from")
    config.addinivalue_line("markers", "issue27(item, before): the issue 27 item a kind comes from")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all-kinds"):
        return
    skip = pytest.mark.skip(reason="slow kind: scripts/adversarial.py runs it")
    for item in items:
        if item.get_closest_marker("thorough"):
            item.add_marker(skip)


try:  # property-based fuzzing of the parsers (tests/common/test_fuzz_parsers.py)
    from hypothesis import HealthCheck, settings

    _common = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    settings.register_profile(
        "ci", max_examples=25, derandomize=True, **_common
    )  # the same examples each run
    settings.register_profile("thorough", max_examples=1000, **_common)  # scripts/adversarial.py
    settings.load_profile("ci")  # scripts/adversarial.py: --hypothesis-profile=thorough
except ImportError:  # the fuzzing tests skip themselves
    pass


@pytest.fixture
def corpus(tmp_path):
    """The suite's tiny training text (tests/helpers.py's ``TEXT``) as ``tmp_path/tiny.txt``."""
    from helpers import write_corpus

    return write_corpus(tmp_path)


@pytest.fixture
def run_hw2():
    """Run ``python -m hw2cli ARGS`` in a subprocess (tests/helpers.py's ``hw2``)."""
    from helpers import hw2

    return hw2


@pytest.fixture(scope="session")
def two_step_run(tmp_path_factory):
    """A finished 2-step GPT run (tests/helpers.py's ``train_args``), trained once per session
    for the modules that read one: each copies it first (``shutil.copytree`` keeps the file
    times that hw2's marker records), so none sees another's changes."""
    from helpers import TEXT, train_args
    from typer.testing import CliRunner

    from hw2cli.cli import app

    root = tmp_path_factory.mktemp("two-step-run")
    (root / "corpus.txt").write_text(TEXT)
    result = CliRunner().invoke(app, train_args(root / "corpus.txt", root / "run"))
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory):
    """Rotation models saved after one epoch of plain training on digits, once per session
    (copied before use, as ``two_step_run``)."""
    from typer.testing import CliRunner

    from hw2cli.cli import app

    models = tmp_path_factory.mktemp("digits-models") / "models"
    rotate = ["rotate-eval", "--dataset", "digits", "--epochs", "1", "--mode", "plain", "--angles", "0"]
    result = CliRunner().invoke(app, [*rotate, "--device", "cpu", "--quiet", "--save-models", str(models)])
    assert result.exit_code == 0, result.output
    return models


@pytest.fixture(scope="session")
def full_graph_run(tmp_path_factory):
    """The folder and the CliRunner result of one `hw2 reproduce --profile full --parts graph`
    (seconds), which several tests of tests/report read; a test that changes it works on a copy."""
    from typer.testing import CliRunner

    from hw2cli.cli import app

    out = tmp_path_factory.mktemp("full-graph")
    result = CliRunner().invoke(
        app, ["reproduce", "--profile", "full", "--out", str(out), "--parts", "graph"]
    )
    assert result.exit_code == 0, result.output
    return out, result
