"""`hw2 report -o PATH` links every figure relative to PATH's folder, so the images show
wherever the report is written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app

REPRODUCED = Path(__file__).resolve().parents[2] / "docs" / "reproduce-quick"
runner = CliRunner()


def links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


@pytest.fixture
def folder(tmp_path) -> Path:
    shutil.copytree(REPRODUCED, tmp_path / "repro")
    return tmp_path / "repro"


@pytest.mark.parametrize("where", ["repro/report.md", "elsewhere/deep/r.md", "r.md"])
def test_every_figure_link_resolves_from_the_reports_folder(folder, where, monkeypatch):
    monkeypatch.chdir(folder.parent)
    target = folder.parent / where
    result = runner.invoke(app, ["report", "repro", "-o", where])
    assert result.exit_code == 0, result.output
    found = links(target.read_text())
    assert len(found) == len(list(folder.glob("*/*.png"))) + 1  # and gpt/run/loss.png
    for link in found:
        assert not Path(link).is_absolute()
        assert (target.parent / link).resolve().is_file(), link
        assert (target.parent / link).resolve().is_relative_to(folder.resolve())


def test_the_default_report_and_standard_output_link_from_the_run_folder(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["report", str(folder)]).exit_code == 0
    default = (folder / "report.md").read_text()
    assert "](table1/table.png)" in default and "](gpt/run/loss.png)" in default
    result = runner.invoke(app, ["report", str(folder), "-o", "-"])
    assert result.exit_code == 0 and result.stdout == default
