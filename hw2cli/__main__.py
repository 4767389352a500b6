"""`python -m hw2cli` runs the same app as the `hw2` console script."""

from hw2cli.cli import app

app(prog_name="hw2")
