"""keep_freed_memory: a training-like loop stops paying page faults for its tensors."""

import subprocess
import sys

import pytest

PROBE = """
import resource, torch
from hw2cli.common.device import keep_freed_memory
def step():  # tensors of tens of MB allocated and freed, as in a training step
    a = torch.ones(8 * 2**20)
    b = torch.ones(4 * 2**20) + a[: 4 * 2**20]
    return float(b[0])
def faults(steps):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(3)
default = faults(10)
assert keep_freed_memory()
faults(3)  # the heap grows to hold the freed tensors once
print(default, faults(10))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_memory_stops_page_faults():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    default, kept = map(int, out.stdout.split()[-2:])  # one process: torch loads once
    assert default > 10 * 32 * 2**20 // 4096 // 2  # glibc maps fresh pages for most tensors
    assert kept < default / 2  # measured 4-40x fewer


def test_device_errors_name_the_field_for_python_and_the_flag_on_the_command_line(tmp_path):
    import torch
    from typer.testing import CliRunner

    from hw2cli.cli import app
    from hw2cli.common.device import check_precision, resolve_device
    from hw2cli.common.options import OptionError

    with pytest.raises(OptionError) as info:
        check_precision("fp16", torch.device("cpu"))
    assert str(info.value) == "precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU"
    if not torch.cuda.is_available():
        with pytest.raises(
            OptionError, match="^device cuda: no CUDA GPU is available here; use device cpu or auto$"
        ):
            resolve_device("cuda")
        result = CliRunner().invoke(app, ["probe", "receptive-field", "--quick", "--device", "cuda"])
        assert result.exit_code == 2
        assert (
            result.stderr == "error: --device cuda: no CUDA GPU is available here; use --device cpu or auto\n"
        )
