"""The thread rule: one thread per core that other processes leave free, unless fixed."""

from __future__ import annotations

import pytest

from hw2cli.common.errors import Hw2Error
from hw2cli.common.threads import busy_from_samples, choose_threads, cpu_cores, omp_threads
from hw2cli.main import check_environment

# user nice system idle iowait irq softirq steal, per CPU
STAT0 = "cpu  0 0 0 0 0 0 0 0\ncpu0 100 0 0 900 0 0 0 0\ncpu1 500 0 0 500 0 0 0 0\nintr 1\n"
# cpu0: +10 busy of +100; cpu1: +90 busy (80 user + 10 system) of +100
STAT1 = "cpu  0 0 0 0 0 0 0 0\ncpu0 110 0 0 990 0 0 0 0\ncpu1 580 0 10 510 0 0 0 0\nintr 2\n"


def test_busy_cores_from_two_proc_stat_readings():
    assert busy_from_samples(STAT0, STAT1) == pytest.approx(2 * 100 / 200)  # 1.0 of 2 cores
    assert busy_from_samples(STAT0, STAT1, cpus={1}) == pytest.approx(0.9)
    assert busy_from_samples(STAT0, STAT0) == 0.0


@pytest.mark.parametrize(
    ("busy", "expected_free"), [(0.0, 0), (0.2, 0), (0.3, 1), (1.0, 1), (1.8, 2), (9.0, 99)]
)
def test_auto_drops_one_thread_per_busy_core(busy, expected_free):
    cores = cpu_cores()
    choice = choose_threads(None, environ={}, busy=busy)
    assert choice.source == "auto" and choice.busy_cores == busy
    assert choice.threads == max(1, cores - expected_free)


def test_explicit_counts_win():
    assert choose_threads(3, environ={"OMP_NUM_THREADS": "1"}).threads == 3
    env_choice = choose_threads(None, environ={"OMP_NUM_THREADS": "1"}, busy=0.0)
    assert (env_choice.threads, env_choice.source) == (1, "OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" in env_choice.describe()
    assert choose_threads(0, environ={}, busy=0.0).source == "auto"
    with pytest.raises(Hw2Error, match="^threads -1: use a count of at least 1"):  # the parameter, not a flag
        choose_threads(-1, environ={})


def test_torchrun_processes_share_the_free_cores():
    alone = choose_threads(None, environ={}, busy=0.0).threads
    shared = choose_threads(None, environ={"LOCAL_WORLD_SIZE": "2"}, busy=0.0).threads
    assert shared == max(1, alone // 2)


def test_commands_print_and_record_the_thread_count(tmp_path):
    """`--threads N` is applied, printed after the output and written to --json."""
    import json

    from typer.testing import CliRunner

    from hw2cli.cli import app

    out = tmp_path / "p.json"
    args = ["probe", "receptive-field", "--quick", "--threads", "1", "--json", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "threads: 1 thread (--threads)" in result.stdout
    assert json.loads(out.read_text())["threads"] == {
        "threads": 1,
        "cores": cpu_cores(),
        "source": "--threads",
        "busy_cores": None,
    }


@pytest.mark.kind("environment")
@pytest.mark.parametrize(
    ("value", "threads"),
    [
        ("3", 3),
        (" 2 ", 2),
        ("4,2", 4),  # OpenMP's nested levels: the first is ours
        ("4096", 4096),
        ("4097", None),
        ("100000", None),  # OpenMP crashed (SIGSEGV) starting that many threads
        ("99999999999999999999", None),  # was: ValueError, Overflow when unpacking long long
        ("²", None),  # str.isdigit() accepts it, int() does not
        ("٣", None),  # an Arabic-Indic three: a digit to Python, not to OpenMP
        ("0", None),
        ("-3", None),
        ("1.5", None),
        ("", None),
        ("4,", None),
    ],
)
def test_omp_num_threads_is_read_as_openmp_reads_it(value, threads):
    assert omp_threads({"OMP_NUM_THREADS": value}) == threads
    choice = choose_threads(None, environ={"OMP_NUM_THREADS": value}, busy=0.0)
    assert choice.source == ("OMP_NUM_THREADS" if threads else "auto")


def test_check_environment_removes_a_bad_value_before_openmp_reads_it():
    environ = {"OMP_NUM_THREADS": "²", "PATH": "/bin"}
    warning = check_environment(environ)
    assert environ == {"PATH": "/bin"} and warning.startswith("OMP_NUM_THREADS='²' is not a thread count")
    assert check_environment({"OMP_NUM_THREADS": "2"}) is None and check_environment({}) is None
