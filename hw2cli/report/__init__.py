"""`hw2 report`: one Markdown report from the outputs of scripts/reproduce.sh."""
