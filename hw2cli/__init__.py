"""hw2: reproduce the experiments of a deep-learning homework from the shell."""

__version__ = "0.1.0"
