"""`python -m hw2cli` runs the same entry point as the `hw2` console script."""

from hw2cli.main import main

main()
