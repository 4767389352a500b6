"""The Typer commands, one module per command family; ``hw2cli.cli`` assembles them.

Each command parses its options, calls one library function and hands the result to its
family's ``render`` module. Heavy imports (torch above all) stay inside the command bodies.
"""
