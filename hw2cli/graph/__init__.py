"""Graph matrices for homework Q3.1: adjacency powers and walks, degree and Laplacian
matrices, and a checker for hand-computed matrices.  Numpy/scipy/networkx only (no torch).

Library entry points: ``run_powers`` (walks.py), ``run_laplacian`` (laplacian.py) and
``run_check`` (check.py); ``render.py`` prints their results.
"""
