"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The models under test are tiny: a second intra-op thread only adds synchronisation, and on
# a shared 2-core machine torch's spinning OpenMP threads made training 10x slower. Set
# before torch is imported; subprocesses (the CLI, torchrun) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def run_hw2():
    """Run ``python -m hw2cli ARGS`` in a subprocess (the way a shell user runs ``hw2``)."""

    def run(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.update(kwargs.pop("env", {}))
        return subprocess.run(
            [sys.executable, "-m", "hw2cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            **kwargs,
        )

    return run
