"""Homework Q1.2: how a small CNN's accuracy falls with image rotation, and what training on
randomly rotated images buys (``hw2 rotate-eval``). Importing the modules here loads torch."""
