"""`hw2 report`'s section "The report's answers, measured", parsed back against the probes' JSON."""

from __future__ import annotations

import json

from hw2cli.common.io import write_json
from hw2cli.probe import render
from hw2cli.probe.attention_cost import attention_cost
from hw2cli.probe.options import AttentionCostOptions, ReceptiveFieldOptions
from hw2cli.probe.receptive_field import receptive_field
from hw2cli.probe.render import plot
from hw2cli.report.build import build_report


def test_the_probes_section_holds_one_row_per_verdict_and_the_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "hw2cli.probe.attention_cost.MIN_SECONDS", 0.0
    )  # 5 timed calls per point: the rows count
    part = tmp_path / "probes"
    results = {
        "attention-cost": attention_cost(AttentionCostOptions(n="16,32,64", device="cpu")),
        "receptive-field": receptive_field(ReceptiveFieldOptions(samples=2, seq_len=8, device="cpu")),
    }
    for name, result in results.items():
        write_json(part / f"{name}.json", render.to_json(result))
    plot(results["receptive-field"], part / "receptive-field.png")
    meta = {
        "part": "probes",
        "title": "t",
        "profile": "quick",
        "device": "cpu",
        "seconds": 1.0,
        "finished": "2026-12-07T12:00:00Z",
        "machine": "m",
        "cpus": 2,
        "hw2": "hw2",
    }
    (part / "part.json").write_text(json.dumps(meta))

    report = build_report(tmp_path)
    assert report.present == ["probes"]
    section = report.markdown.split("## The report's answers, measured", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| Q")]
    expected = [(r.verdicts, name) for name, r in results.items()]
    assert len(rows) == sum(len(v) for v, _ in expected)
    for verdicts, name in expected:
        for v in verdicts:
            assert any(f"`{name}`" in row and v.claim in row and f"**{v.verdict}**" in row for row in rows)
    assert "](probes/receptive-field.png)" in section
    assert "](probes/attention-cost.png)" not in section  # no PNG written for it
    assert "Not run: `softmax-scale`, `heads`, `positions`." in section


def test_a_probe_json_with_an_unknown_verdict_is_one_line_naming_the_file(tmp_path):
    import pytest

    from hw2cli.common.errors import Hw2Error

    part = tmp_path / "probes"
    part.mkdir()
    bad = {
        "probe": "heads",
        "question": "Q2.1d",
        "verdicts": [{"claim": "c", "measurement": "m", "verdict": "maybe"}],
    }
    (part / "heads.json").write_text(json.dumps(bad))
    meta = {
        "part": "probes",
        "title": "t",
        "profile": "quick",
        "device": "cpu",
        "seconds": 1.0,
        "finished": "2026-12-07T12:00:00Z",
        "machine": "m",
        "cpus": 2,
        "hw2": "hw2",
    }
    (part / "part.json").write_text(json.dumps(meta))
    with pytest.raises(Hw2Error, match="heads.json") as info:
        build_report(tmp_path)
    assert "\n" not in str(info.value)
