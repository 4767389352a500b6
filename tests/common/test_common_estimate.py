"""hw2cli.common.estimate: the one wall-time estimator (a cost model in, an announced Estimate out)."""

from __future__ import annotations

import pytest

from hw2cli.common import estimate as est
from hw2cli.common.progress import Reporter


class Notes(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message)


def test_a_cost_is_units_times_their_time_plus_the_fixed_part():
    assert est.Cost(0.25, units=400, fixed_s=20).seconds == 120.0
    assert est.Cost(7.0).seconds == 7.0


def test_announce_notes_long_work_only_and_warns_past_an_hour_with_the_way_out():
    notes = Notes()
    short = est.announce(est.Cost(1.0, 119, "timed"), "the run", "use fewer steps", notes)
    assert short == est.Estimate(119.0, "the run", "timed", "use fewer steps") and notes.lines == []
    assert short.message is None
    found = est.announce(est.Cost(2.0, 300, "300 steps timed"), "the run", "use fewer steps", notes)
    assert found.seconds == 600.0
    assert notes.lines == ["estimated wall time of the run: about 10.0 min (300 steps timed)"]
    long = est.announce(est.Cost(1.0, 7200, "timed"), "the run", "use fewer steps", notes)
    assert (
        notes.lines[-1]
        == long.message
        == ("warning: estimated wall time of the run: about 2.0 h (timed); for a shorter run use fewer steps")
    )
    assert est.announce(est.Cost(1.0, 200), "x").message is not None  # no reporter: nothing noted


@pytest.mark.parametrize(("busy", "processes", "factor"), [(0.0, 2, None), (1.0, 2, 1.5), (3.0, 4, 3.5)])
def test_shared_cpu_scales_by_the_cores_other_work_takes(monkeypatch, busy, processes, factor):
    monkeypatch.setattr("hw2cli.common.threads.cpu_cores", lambda: 2)
    alone = est.Estimate(600.0, "the bench", "timed alone")
    shared = alone.on_shared_cpu(processes, busy=busy)
    if factor is None:
        assert shared == alone
    else:
        assert shared.seconds == pytest.approx(600.0 * factor)
        assert shared.basis == (
            f"timed alone; times {factor:.1f}: {processes} workers share 2 cores with {busy:.1f} cores of other work"
        )


def test_shared_cpu_measures_the_load_only_when_it_could_reach_the_announcement(monkeypatch):
    monkeypatch.setattr("hw2cli.common.threads.cpu_cores", lambda: 2)
    measured = []
    monkeypatch.setattr("hw2cli.common.threads.measure_busy_cores", lambda: measured.append(1) or 1.0)
    assert est.announce(est.Cost(10.0), "x", cpu_processes=2).seconds == 10.0 and not measured
    found = est.announce(est.Cost(100.0), "x", cpu_processes=2)  # 2 processes on 2 cores, 1 busy: 1.5x
    assert measured == [1] and found.seconds == pytest.approx(150.0)


def test_seconds_per_call_times_the_calls_after_the_warm_up(monkeypatch):
    clock = [0.0]
    calls, syncs = [], []
    monkeypatch.setattr(est.time, "perf_counter", lambda: clock[0])

    def step() -> None:
        calls.append(1)
        clock[0] += 3.0 if len(calls) == 1 else 0.5  # the first call pays for start-up

    assert est.seconds_per_call(step, calls=4, warmup=1, sync=lambda: syncs.append(1)) == 0.5
    assert len(calls) == 5 and len(syncs) == 2


@pytest.mark.parametrize(
    ("seconds", "text"), [(45, "45 s"), (600, "10.0 min"), (7200, "2.0 h"), (6 * 86400, "6.0 days")]
)
def test_durations_read_in_the_unit_that_fits(seconds, text):
    assert est.duration(seconds) == text
