"""Shared by tests/report: one `hw2 reproduce --profile full --parts graph` (seconds), which
several tests read; a test that changes the folder works on a copy."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app


@pytest.fixture(scope="session")
def full_graph_run(tmp_path_factory):
    """The folder and the CliRunner result of the full profile's graph part, run once."""
    out = tmp_path_factory.mktemp("full-graph")
    result = CliRunner().invoke(
        app, ["reproduce", "--profile", "full", "--out", str(out), "--parts", "graph"]
    )
    assert result.exit_code == 0, result.output
    return out, result
